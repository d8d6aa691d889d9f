/**
 * The core on its own worker thread (src/core/core-thread.ts), as src/main.ts runs it: the
 * same bank on wall-clock time, with the link's faults and the log's applied on the channel's
 * thread, a core restart that loses what reaches it while down, and the invariants at the end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBank, type Bank } from '../../src/bank.ts';
import { createSystemClock } from '../../src/lib/clock.ts';
import { seededRandom } from '../../src/lib/ids.ts';
import { checkInvariants } from '../../src/sim/invariants.ts';
import { CONSUMER_NAME } from '../../src/channel/log-consumer.ts';

const SETTLE_LIMIT_MS = 10_000;

async function withThreadedBank(body: (bank: Bank) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-core-thread-'));
  const clock = createSystemClock();
  const bank = createBank({
    dataDir,
    coreClock: clock,
    channelClock: clock,
    random: seededRandom(11),
    synchronous: 'OFF',
    coreThread: true,
    // Short enough that a lost request is queried, fenced and failed within the test.
    settings: { responseTimeoutMs: 150, queryTimeoutMs: 150, backoffBaseMs: 50, backoffMaxMs: 200, reconcileIntervalMs: 0 },
  });
  await bank.ready();
  bank.start();
  try {
    await body(bank);
  } finally {
    bank.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Waits on wall-clock time until every transfer is settled and the history copy has caught up with the log. */
async function quiet(bank: Bank): Promise<void> {
  const giveUpAt = Date.now() + SETTLE_LIMIT_MS;
  const done = () => bank.channel.unfinishedCount() === 0 && bank.channel.readModel().consumerOffset(CONSUMER_NAME) >= bank.log.endOffset();
  while (!done()) {
    assert.ok(Date.now() < giveUpAt, `still ${bank.channel.unfinishedCount()} unfinished after ${SETTLE_LIMIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function send(bank: Bank, from: { customerId: number; accountId: number }, to: { accountId: number }, amountWon: number) {
  const outcome = bank.channel.requestTransfer({ customerId: from.customerId, fromAccountId: from.accountId, toAccountId: to.accountId, amountWon, memo: null, idempotencyKey: null });
  assert.is(outcome.kind, 'created');
  return (outcome as { transfer: { id: string } }).transfer.id;
}

test('on its own thread the core decides, answers and publishes: transfers settle and the copy converges', () =>
  withThreadedBank(async (bank) => {
    const people = Array.from({ length: 6 }, (_, i) => bank.openCustomer(`Customer ${i + 1}`, 50_000));
    await bank.durable();
    const ids: string[] = [];
    for (let round = 0; round < 5; round++) {
      for (const [i, from] of people.entries()) ids.push(send(bank, from, people[(i + 1) % people.length]!, 1_000 + round));
      await quiet(bank);
    }
    assert.equal(new Set(ids.map((id) => bank.channel.transfer(id)?.state)), new Set(['succeeded']));
    const deposit = bank.core.deposit({ accountId: people[0]!.accountId, amountWon: 7_000, fromBank: 'Other Bank', fromName: 'Park' });
    assert.ok(deposit !== 'unknown-account');
    assert.is(bank.core.deposit({ accountId: 999_999, amountWon: 1, fromBank: 'Other Bank', fromName: 'Park' }), 'unknown-account');
    await bank.durable();
    await quiet(bank);
    assert.is(bank.core.readModel().getAccount(people[0]!.accountId)?.balanceWon, 50_000 + 7_000);
    assert.ok(bank.commitCount() > 0, 'the core thread reports its commits');
    assert.equal(checkInvariants(bank, [1, 2, 3, 5, 6, 7]), []);
  }));

test('across the thread the link keeps its faults, and a core restart loses only what reached it while down', () =>
  withThreadedBank(async (bank) => {
    const kim = bank.openCustomer('Kim', 100_000);
    const lee = bank.openCustomer('Lee', 0);
    await bank.durable();

    // The EXECUTE is dropped on the way to the core's thread: timed out, queried, fenced, failed.
    bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0, messages: 'transfers' });
    const lost = send(bank, kim, lee, 10_000);
    await quiet(bank);
    assert.is(bank.channel.transfer(lost)?.state, 'failed');
    assert.is(bank.channel.transfer(lost)?.reason, 'not-received');

    // The answer is dropped on its way back: the query finds the executed decision.
    bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0, messages: 'transfers' });
    const unanswered = send(bank, kim, lee, 20_000);
    await quiet(bank);
    assert.is(bank.channel.transfer(unanswered)?.state, 'succeeded');

    // The core is down when a request arrives, then back: the request is lost and the transfer fails.
    bank.core.stop();
    const whileDown = send(bank, kim, lee, 30_000);
    await new Promise((r) => setTimeout(r, 20));
    bank.core.start();
    await quiet(bank);
    assert.is(bank.channel.transfer(whileDown)?.state, 'failed');

    const after = send(bank, kim, lee, 5_000);
    bank.restart('core');
    await quiet(bank);
    assert.ok(['succeeded', 'failed'].includes(bank.channel.transfer(after)!.state));
    const expectedLee = 20_000 + (bank.channel.transfer(after)!.state === 'succeeded' ? 5_000 : 0);
    assert.is(bank.core.readModel().getAccount(lee.accountId)?.balanceWon, expectedLee);
    assert.equal(checkInvariants(bank, [1, 2, 3, 5, 6, 7]), []);
  }));

/** Ten transfers sent, then the channel's thread held while the core's decides, commits and posts its answers and relay batches. */
async function sendWhileBusy(bank: Bank): Promise<void> {
  const people = Array.from({ length: 10 }, (_, i) => bank.openCustomer(`C${i}`, 50_000));
  await bank.durable();
  await quiet(bank);
  people.forEach((p, i) => send(bank, p, people[(i + 1) % people.length]!, 100));
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  const heldFrom = performance.now();
  while (performance.now() - heldFrom < 100) {
    // the channel's thread is busy; the core's is not
  }
}

test('a core restart with relay batches still on their way publishes nothing twice', () =>
  withThreadedBank(async (bank) => {
    await sendWhileBusy(bank);
    bank.restart('core');
    await quiet(bank);
    const outboxRows = bank.core.readModel().db.prepare('SELECT COUNT(*) FROM log_outbox').pluck().get() as number;
    assert.is(bank.log.endOffset() - 1, outboxRows, 'one log record per outbox row');
    assert.equal(checkInvariants(bank, [1, 2, 3, 5, 6, 7]), []);
  }));

test('closing with answers and relay batches still on their way throws nothing later', async () => {
  const errors: unknown[] = [];
  const onError = (e: unknown) => errors.push(e);
  process.on('uncaughtException', onError);
  try {
    await withThreadedBank(async (bank) => {
      await sendWhileBusy(bank);
    });
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    process.off('uncaughtException', onError);
  }
  assert.equal(errors.map(String), []);
});

test.run();
