/**
 * One scenario per safeguard S1-S7 over the real services (SQLite in a temp dir, virtual
 * clocks, injected faults). For S3-S6 the same scenario runs with the safeguard switched
 * off and shows the failure it prevents. Every scenario runs on both event logs: the
 * embedded one and JetStream on a real nats-server.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { without } from '../../src/lib/protocol.ts';
import { checkAgreement, checkOneInFlight } from '../../src/sim/invariants.ts';
import { assertInvariants, balanceOf, createdId, LOG_KINDS, openCustomer, openTestBank, run, stateOf, transfer, type TestBank, type TestBankOptions } from '../helpers.ts';

function scenario(name: string, body: (bank: TestBank) => Promise<void>, options: TestBankOptions = {}) {
  for (const log of LOG_KINDS) {
    test(`${name} [${log} log]`, async () => {
      const bank = await openTestBank({ ...options, log });
      try {
        await body(bank);
      } finally {
        await bank.dispose();
      }
    });
  }
}

const journalEvents = (bank: TestBank, id: string) => bank.channel.transfer(id)!.journal.map((j) => j.event);

// S1 ---------------------------------------------------------------------------------

scenario('S1: a deposit from another bank reaches the history through the event log alone', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 0);
  bank.core.deposit({ accountId: kim.accountId, amountWon: 50_000, fromBank: 'KB', fromName: 'Park' });
  await run(bank);
  const rows = bank.channel.pageHistoryBefore(kim.accountId, Number.MAX_SAFE_INTEGER, 10);
  assert.is(rows.length, 1);
  assert.is(rows[0]!.kind, 'deposit');
  assert.is(rows[0]!.counterparty, 'Park (KB)');
  assert.equal(balanceOf(bank, kim), { core: 50_000, channel: 50_000 });
  assertInvariants(bank, [1, 2, 3, 5, 6, 7]);
});

scenario('S1: with the log record dropped, the channel never learns of the deposit (the log is the only path)', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 0);
  bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
  bank.core.deposit({ accountId: kim.accountId, amountWon: 50_000, fromBank: 'KB', fromName: 'Park' });
  await run(bank, 60_000);
  assert.equal(balanceOf(bank, kim), { core: 50_000, channel: 0 });
  assertInvariants(bank);
});

// S2 ---------------------------------------------------------------------------------

scenario('S2: a lost response is not a lost outcome: the log settles the transfer and its history', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
  const id = createdId(transfer(bank, kim, lee, 10_000));
  await run(bank);
  assert.is(stateOf(bank, id), 'succeeded');
  assert.ok(journalEvents(bank, id).includes('EXECUTED (log)'), journalEvents(bank, id).join(', '));
  const [row] = bank.channel.pageHistoryBefore(kim.accountId, Number.MAX_SAFE_INTEGER, 1);
  assert.is(row!.transferId, id);
  assert.is(row!.kind, 'transfer-out');
  assertInvariants(bank, [1, 2, 3, 5, 6, 7]);
});

scenario('S2: with both the response and the log lost, the transfer still settles by asking the core', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
  bank.faults.add({ pipe: 'log', action: 'drop', count: 3, delayMs: 0 });
  const id = createdId(transfer(bank, kim, lee, 10_000));
  await run(bank, 10_000);
  assert.is(stateOf(bank, id), 'succeeded');
  assert.ok(journalEvents(bank, id).includes('EXECUTED (query)'));
  // Read your writes: the sender's row came with the answer, though the log lost it.
  assert.is(bank.channel.pageHistoryBefore(kim.accountId, Number.MAX_SAFE_INTEGER, 1)[0]!.transferId, id);
  assertInvariants(bank);
});

// S3 ---------------------------------------------------------------------------------

async function retryAfterTimeout(bank: TestBank): Promise<{ kim: ReturnType<typeof openCustomer>; second: ReturnType<typeof transfer> }> {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  // The request is slow: the customer's app gives up waiting and sends the transfer again.
  bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs: 2_000 });
  createdId(transfer(bank, kim, lee, 30_000));
  await run(bank, 1_000);
  const second = transfer(bank, kim, lee, 30_000);
  await run(bank, 120_000);
  return { kim, second };
}

scenario('S3: a customer who retries while the first transfer is unfinished is refused, and money moves once', async (bank) => {
  const { kim, second } = await retryAfterTimeout(bank);
  assert.is(second.kind, 'in-flight');
  assert.equal(balanceOf(bank, kim), { core: 70_000, channel: 70_000 });
  assertInvariants(bank);
});

scenario('S3 off: the same retry sends the money twice', async (bank) => {
  const { kim, second } = await retryAfterTimeout(bank);
  assert.is(second.kind, 'created');
  assert.equal(balanceOf(bank, kim).core, 40_000, 'both transfers executed');
}, { protocol: without('S3') });

scenario('S3 off: two unfinished transfers from one account break invariant 5', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'request', action: 'drop', count: 2, delayMs: 0 });
  createdId(transfer(bank, kim, lee, 1));
  createdId(transfer(bank, kim, lee, 1));
  assert.is(checkOneInFlight(bank).length, 1);
}, { protocol: without('S3') });

// S4 ---------------------------------------------------------------------------------

async function lostRequest(bank: TestBank) {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const id = createdId(transfer(bank, kim, lee, 10_000));
  await run(bank, 600_000);
  return { kim, lee, id };
}

scenario('S4: a transfer whose request was lost fails as not-received and frees the account', async (bank) => {
  const { kim, lee, id } = await lostRequest(bank);
  assert.is(stateOf(bank, id), 'failed');
  assert.is(bank.channel.transfer(id)!.reason, 'not-received');
  const next = transfer(bank, kim, lee, 10_000);
  await run(bank);
  assert.is(next.kind, 'created');
  assert.equal(balanceOf(bank, kim), { core: 90_000, channel: 90_000 });
  assertInvariants(bank, [1, 2, 3, 4, 5, 6, 7]);
});

scenario('S4 off: the same transfer stays pending forever and locks the account', async (bank) => {
  const { kim, lee, id } = await lostRequest(bank);
  assert.is(stateOf(bank, id), 'timedOut');
  const next = transfer(bank, kim, lee, 10_000);
  assert.equal(next, { kind: 'in-flight', inFlightTransferId: id });
}, { protocol: without('S4') });

// S5 (with the fence off, so the cutoff is the only guard) ----------------------------

function lateRequest(bank: TestBank, delayMs: number) {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs });
  const id = createdId(transfer(bank, kim, lee, 10_000));
  return { kim, lee, id };
}

scenario('S5: a request that arrives after the cutoff is refused, so "failed" stays true', async (bank) => {
  const { kim, id } = lateRequest(bank, 70_000);
  await run(bank, 69_000);
  assert.is(stateOf(bank, id), 'failed', 'the customer was told it failed before the request arrived');
  await run(bank, 2_000);
  assert.equal(bank.core.readModel().decisionOf(id), { kind: 'rejected', reason: 'past-cutoff' });
  await run(bank, 120_000);
  assert.equal(balanceOf(bank, kim), { core: 100_000, channel: 100_000 });
  assertInvariants(bank);
}, { protocol: without('S6') });

scenario('S5 off: the same late request executes after the customer was told it failed', async (bank) => {
  const { kim, id } = lateRequest(bank, 70_000);
  await run(bank, 69_000);
  assert.is(stateOf(bank, id), 'failed');
  await run(bank, 60_000);
  assert.is(bank.core.readModel().decisionOf(id)?.kind, 'executed');
  assert.is(balanceOf(bank, kim).core, 90_000);
  assert.is(checkAgreement(bank).length, 1);
}, { protocol: without('S5', 'S6') });

// S6 (the core's clock 10 s behind the channel's: more than the 5 s margin) -------------

const coreBehind = -10_000;

scenario('S6: with a core clock behind, the fence still keeps a late request from executing after "failed"', async (bank) => {
  const { kim, id } = lateRequest(bank, 66_000);
  await run(bank, 10_000);
  assert.is(stateOf(bank, id), 'failed', 'the fence lets the channel decide right after its timeout');
  await run(bank, 57_000);
  assert.equal(bank.core.readModel().decisionOf(id), { kind: 'rejected', reason: 'fenced' });
  await run(bank, 120_000);
  assert.is(balanceOf(bank, kim).core, 100_000);
  assertInvariants(bank);
}, { coreSkewMs: coreBehind });

scenario('S6 off: with the same clocks, the late request executes after the customer was told it failed', async (bank) => {
  const { kim, id } = lateRequest(bank, 66_000);
  await run(bank, 10_000);
  assert.is(stateOf(bank, id), 'timedOut', 'without the fence the account stays locked until the cutoff has passed');
  await run(bank, 55_100);
  assert.is(stateOf(bank, id), 'failed');
  await run(bank, 60_000);
  assert.is(bank.core.readModel().decisionOf(id)?.kind, 'executed');
  assert.is(balanceOf(bank, kim).core, 90_000);
  assert.is(checkAgreement(bank).length, 1);
}, { protocol: without('S6'), coreSkewMs: coreBehind });

// S7 ---------------------------------------------------------------------------------

scenario('S7: a retry with the same Idempotency-Key gets the original transfer back, and money moves once', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
  const first = createdId(transfer(bank, kim, lee, 10_000, 'rent-2026-11'));
  await run(bank, 1_000);
  const retry = transfer(bank, kim, lee, 10_000, 'rent-2026-11');
  assert.is(retry.kind, 'replayed');
  if (retry.kind === 'replayed') assert.is(retry.transfer.id, first);
  const later = transfer(bank, kim, lee, 10_000, 'rent-2026-11');
  assert.is(later.kind, 'replayed');
  await run(bank, 60_000);
  assert.equal(balanceOf(bank, kim), { core: 90_000, channel: 90_000 });
  assertInvariants(bank);
});

scenario('S7: the same Idempotency-Key with another body is refused and moves nothing', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  const first = createdId(transfer(bank, kim, lee, 10_000, 'k-1'));
  await run(bank);
  const other = transfer(bank, kim, lee, 20_000, 'k-1');
  assert.equal(other, { kind: 'key-reused', transferId: first });
  await run(bank);
  assert.equal(balanceOf(bank, kim), { core: 90_000, channel: 90_000 });
  assertInvariants(bank);
});

scenario('S7: without a key, the same retry is only refused while the first is unfinished, never answered', async (bank) => {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs: 2_000 });
  const first = createdId(transfer(bank, kim, lee, 10_000));
  assert.equal(transfer(bank, kim, lee, 10_000), { kind: 'in-flight', inFlightTransferId: first });
  await run(bank, 10_000);
  assertInvariants(bank);
});

test.run();
