/**
 * The system clock's delay 0: one pass after this turn's I/O runs every such callback,
 * including the ones they arm, in arming order; a pass yields to I/O once it has run for
 * TURN_BUDGET_MS, and a cancelled or throwing callback does not hold up the rest.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSystemClock, TURN_BUDGET_MS } from '../../src/lib/clock.ts';

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

test('a pass that keeps re-arming itself yields to the event loop after its budget', async () => {
  const clock = createSystemClock();
  let runs = 0;
  let stop = false;
  let longestMs = 0;
  let passStarted = performance.now();
  const busy = () => {
    if (stop) return;
    runs++;
    const t = performance.now();
    while (performance.now() - t < 1) {
      // one millisecond of work per callback
    }
    longestMs = Math.max(longestMs, performance.now() - passStarted);
    clock.setTimeout(busy, 0);
  };
  let ticks = 0;
  const ticker = setInterval(() => {
    ticks++;
    passStarted = performance.now();
  }, 1);
  clock.setTimeout(busy, 0);
  await new Promise((resolve) => setTimeout(resolve, 200));
  stop = true;
  clearInterval(ticker);
  assert.ok(runs > 20, `the chain kept running (${runs} callbacks)`);
  assert.ok(ticks > 5, `timers still fired between passes (${ticks} ticks)`);
  // One pass: the budget, plus the callback that crossed it, plus scheduling slack.
  assert.ok(longestMs < TURN_BUDGET_MS + 40, `no pass ran on (longest ${longestMs.toFixed(1)} ms since a timer got the loop)`);
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
