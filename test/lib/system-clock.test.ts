/**
 * The system clock's delay 0: one pass after this turn's I/O runs every such callback,
 * including the ones they arm, in arming order; a pass yields to I/O once it has run for
 * TURN_BUDGET_MS, and a cancelled or throwing callback does not hold up the rest.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSystemClock } from '../../src/lib/clock.ts';

const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 5));

test('what a delay-0 callback arms at delay 0 runs in the same pass, in arming order', async () => {
  const clock = createSystemClock();
  const ran: string[] = [];
  let ioInBetween = false;
  clock.setTimeout(() => {
    ran.push('a');
    // An I/O-phase callback: it may only run once the pass is over.
    setImmediate(() => (ioInBetween = ran.length < 4));
    clock.setTimeout(() => {
      ran.push('c');
      clock.setTimeout(() => ran.push('d'), 0);
    }, 0);
  }, 0);
  clock.setTimeout(() => ran.push('b'), 0);
  assert.equal(ran, [], 'nothing runs inside the call');
  await nextTurn();
  assert.equal(ran, ['a', 'b', 'c', 'd']);
  assert.is(ioInBetween, false, 'the whole chain ran before anything else got the loop');
});

test('a chain that keeps re-arming itself at delay 0 does not starve a timer', async () => {
  const clock = createSystemClock();
  // Without a budget the chain below would hold the loop until its own limit.
  const CHAIN_LIMIT = 5_000;
  let runs = 0;
  let stoppedBy: 'timer' | 'limit' | null = null;
  const busy = () => {
    if (stoppedBy !== null) return;
    if (++runs >= CHAIN_LIMIT) {
      stoppedBy = 'limit';
      return;
    }
    const t = performance.now();
    while (performance.now() - t < 1) {
      // one millisecond of work per callback: a pass crosses its budget after a few
    }
    clock.setTimeout(busy, 0);
  };
  clock.setTimeout(busy, 0);
  setTimeout(() => (stoppedBy ??= 'timer'), 1);
  while (stoppedBy === null) await new Promise((r) => setTimeout(r, 5));
  assert.is(stoppedBy, 'timer', `the timer ran while the chain went on (after ${runs} callbacks)`);
  assert.ok(runs < CHAIN_LIMIT);
});

test('a cancelled delay-0 callback never runs; the others do', async () => {
  const clock = createSystemClock();
  const ran: string[] = [];
  const b = clock.setTimeout(() => ran.push('b'), 0);
  clock.setTimeout(() => {
    ran.push('a');
    clock.clearTimeout(b);
  }, 0);
  // Armed before `a` runs, cancelled by it: the pass must skip it.
  const handle = clock.setTimeout(() => ran.push('x'), 0);
  clock.clearTimeout(handle);
  clock.setTimeout(() => ran.push('c'), 0);
  await nextTurn();
  assert.equal(ran, ['b', 'a', 'c']);
  const late = clock.setTimeout(() => ran.push('late'), 0);
  clock.clearTimeout(late);
  await nextTurn();
  assert.equal(ran, ['b', 'a', 'c']);
});

test('a callback that throws does not strand the ones after it', async () => {
  const clock = createSystemClock();
  const ran: string[] = [];
  const errors: unknown[] = [];
  const listeners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', (e) => errors.push(e));
  try {
    clock.setTimeout(() => {
      throw new Error('boom');
    }, 0);
    clock.setTimeout(() => ran.push('after'), 0);
    await nextTurn();
    await nextTurn();
  } finally {
    process.removeAllListeners('uncaughtException');
    listeners.forEach((l) => process.on('uncaughtException', l));
  }
  assert.equal(ran, ['after']);
  assert.is(errors.length, 1);
  assert.match(String(errors[0]), /boom/);
});

test.run();
