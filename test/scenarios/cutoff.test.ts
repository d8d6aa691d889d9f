/**
 * The cutoff against the failure declaration, in both orders: a late request that reaches
 * the core just before the channel's decisive query, and just after it. Whatever the order,
 * the channel and the core agree. Every test runs on both event logs: the embedded one and
 * JetStream on a real nats-server.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { without } from '../../src/lib/protocol.ts';
import { assertInvariants, balanceOf, capturingLogger, createdId, LOG_KINDS, openCustomer, openTestBank, run, stateOf, transfer, type LogKind, type TestBank, type TestBankOptions } from '../helpers.ts';

/** A transfer whose answer is lost and whose request reaches the core `delayMs` late. */
function lateTransfer(bank: TestBank, delayMs: number) {
  const kim = openCustomer(bank, 'Kim', 100_000);
  const lee = openCustomer(bank, 'Lee', 0);
  bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs });
  const id = createdId(transfer(bank, kim, lee, 10_000));
  return { kim, id };
}

async function withBank(options: TestBankOptions, body: (bank: TestBank) => Promise<void>): Promise<void> {
  const bank = await openTestBank(options);
  try {
    await body(bank);
  } finally {
    await bank.dispose();
  }
}

function cutoff(log: LogKind): void {
  const test = suite(`cutoff and fence on the ${log} log`);

  // With the fence (S6), the decisive query goes out at the response timeout (3 s).
  test('fence: a late request reaching the core just before the query executes, and the query reports it', () =>
    withBank({ log }, async (bank) => {
      const { kim, id } = lateTransfer(bank, 2_999);
      bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
      bank.faults.add({ pipe: 'log', action: 'drop', count: 3, delayMs: 0 });
      await run(bank, 30_000);
      assert.is(stateOf(bank, id), 'succeeded');
      assert.is(bank.channel.transfer(id)!.journal.at(-1)!.event, 'EXECUTED (query)');
      assert.is(balanceOf(bank, kim).core, 90_000);
      assertInvariants(bank);
    }));

  test('fence: a late request reaching the core just after the query is fenced and moves nothing', () =>
    withBank({ log }, async (bank) => {
      const { kim, id } = lateTransfer(bank, 3_001);
      await run(bank, 3_000);
      assert.is(stateOf(bank, id), 'failed');
      await run(bank, 10);
      assert.equal(bank.core.readModel().decisionOf(id), { kind: 'rejected', reason: 'fenced' });
      await run(bank, 120_000);
      assert.is(stateOf(bank, id), 'failed');
      assert.equal(balanceOf(bank, kim), { core: 100_000, channel: 100_000 });
      assertInvariants(bank);
    }));

  test('the talk\'s late request leaves a trace: a log line from the core, and an audit entry on the transfer that changes nothing', () => {
    // Commit, then effect: when the channel's audit line is written, its entry is already committed
    // (seen from a connection of its own, which sees only what is committed).
    let committedAtLine: number | null = null;
    let dataDir = '';
    const capture = capturingLogger((line) => {
      if (!String(line.msg).startsWith('audit:')) return;
      const other = new Database(join(dataDir, 'channel.db'), { readonly: true });
      committedAtLine = other.prepare('SELECT COUNT(*) FROM transfer_audit WHERE transfer_id = ?').pluck().get(line.transferId) as number;
      other.close();
    });
    return withBank({ log, logger: capture.logger }, async (bank) => {
      dataDir = bank.dataDir;
      const { id } = lateTransfer(bank, 3_001);
      await run(bank, 3_000);
      const failed = bank.channel.transfer(id)!;
      assert.equal({ state: failed.state, reason: failed.reason, audit: failed.audit }, { state: 'failed', reason: 'not-received', audit: [] });
      await run(bank, 1_000); // the late request lands, is fenced, and the log carries the refusal
      const after = bank.channel.transfer(id)!;
      assert.equal(after.audit.map((a) => ({ event: a.event, reason: a.reason })), [{ event: 'late-request-refused', reason: 'fenced' }]);
      assert.equal({ state: after.state, reason: after.reason, journal: after.journal }, { state: failed.state, reason: failed.reason, journal: failed.journal });
      const line = capture.lines().find((l) => l.side === 'core' && l.transferId === id);
      assert.ok(line !== undefined && line.reason === 'fenced' && line.level === 40, JSON.stringify(line));
      assert.is(committedAtLine, 1, 'the audit line left after the commit that holds the entry');
      // The log's redelivery of that record adds nothing.
      bank.channel.redeliverFrom(1);
      await run(bank, 1_000);
      assert.is(bank.channel.transfer(id)!.audit.length, 1);
      assertInvariants(bank);
    });
  });

  test('a late copy of a request the core already decided is refused as already-decided, on the transfer\'s audit', () =>
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 100_000);
      const lee = openCustomer(bank, 'Lee', 0);
      bank.faults.add({ pipe: 'request', action: 'duplicate', count: 1, delayMs: 500 });
      const id = createdId(transfer(bank, kim, lee, 10_000));
      await run(bank, 2_000);
      const t = bank.channel.transfer(id)!;
      assert.is(t.state, 'succeeded');
      assert.equal(t.audit.map((a) => a.reason), ['already-decided']);
      assert.equal(balanceOf(bank, kim), { core: 90_000, channel: 90_000 });
      assertInvariants(bank);
    }));

  // Without the fence (the talk's rule), the query waits for requestedAt + cutoff + margin (65 s),
  // so what decides is whether the request beat the cutoff (60 s).
  test('cutoff: a late request reaching the core just inside the cutoff executes, and the later query reports it', () =>
    withBank({ log, protocol: without('S6') }, async (bank) => {
      const { kim, id } = lateTransfer(bank, 60_000);
      bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
      bank.faults.add({ pipe: 'log', action: 'drop', count: 3, delayMs: 0 });
      await run(bank, 64_999);
      assert.is(stateOf(bank, id), 'timedOut');
      assert.is(bank.core.readModel().decisionOf(id)?.kind, 'executed');
      await run(bank, 30_000);
      assert.is(stateOf(bank, id), 'succeeded');
      assert.is(bank.channel.transfer(id)!.journal.at(-1)!.event, 'EXECUTED (query)');
      assert.is(balanceOf(bank, kim).core, 90_000);
      assertInvariants(bank);
    }));

  test('cutoff: a late request reaching the core just past the cutoff is refused, and the query reports it', () =>
    withBank({ log, protocol: without('S6') }, async (bank) => {
      const { kim, id } = lateTransfer(bank, 60_001);
      bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      await run(bank, 61_000);
      assert.equal(bank.core.readModel().decisionOf(id), { kind: 'rejected', reason: 'past-cutoff' });
      assert.is(stateOf(bank, id), 'timedOut');
      await run(bank, 30_000);
      assert.is(stateOf(bank, id), 'failed');
      assert.is(bank.channel.transfer(id)!.reason, 'past-cutoff');
      assert.equal(balanceOf(bank, kim), { core: 100_000, channel: 100_000 });
      assertInvariants(bank);
    }));

  test('a request dated ahead of the core clock by more than the allowed skew is refused as future-dated', () =>
    withBank({ log, coreSkewMs: -6_000 }, async (bank) => {
      const { kim, id } = lateTransfer(bank, 0);
      await run(bank, 10);
      assert.is(stateOf(bank, id), 'failed');
      assert.is(bank.channel.transfer(id)!.reason, 'future-dated');
      assert.is(balanceOf(bank, kim).core, 100_000);
      assertInvariants(bank);
    }));

  test('pruning forgets rejections and tombstones past the cutoff, keeps executions, and still refuses a replay', () =>
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 100_000);
      const lee = openCustomer(bank, 'Lee', 0);
      const done = createdId(transfer(bank, kim, lee, 1_000));
      await run(bank);
      bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
      const lost = createdId(transfer(bank, kim, lee, 1_000));
      await run(bank, 10_000);
      assert.is(stateOf(bank, lost), 'failed');
      const core = bank.core.readModel();
      assert.ok(core.isTombstoned(lost));
      await run(bank, 200_000);
      assert.not.ok(core.isTombstoned(lost), 'the tombstone was pruned');
      assert.is(core.decisionOf(done)?.kind, 'executed', 'executions are kept for queries');
      // A replay of the lost request now meets the cutoff instead of the tombstone.
      const t = bank.channel.transfer(lost)!;
      bank.link.request({ type: 'execute', senderKnownSeq: 0, request: { requestId: lost, fromAccountId: t.fromAccountId, toAccountId: t.toAccountId, amountWon: t.amountWon, memo: null, requestedAt: t.requestedAt } });
      await run(bank);
      assert.equal(core.decisionOf(lost), { kind: 'rejected', reason: 'past-cutoff' });
      assert.is(balanceOf(bank, kim).core, 99_000);
      assertInvariants(bank);
    }));

  test.run();
}

for (const log of LOG_KINDS) cutoff(log);
