/**
 * History sync (S8): every fault of the event log ends with the channel's copy equal to the
 * core's postings row for row (DESIGN.md invariant 6), and without S8 the same faults leave
 * the copy wrong. Every test runs on both event logs: the embedded one and JetStream on a
 * real nats-server.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CONSUMER_NAME } from '../../src/channel/log-consumer.ts';
import { without } from '../../src/lib/protocol.ts';
import type { LinkRequest } from '../../src/net/messages.ts';
import { checkInvariants } from '../../src/sim/invariants.ts';
import { assertInvariants, capturingLogger, createdId, LOG_KINDS, openCustomer, run, stateOf, transfer, type LogKind, type TestBank, type TestCustomer, withBank } from '../helpers.ts';

const ALL_BUT_LIVENESS = [1, 2, 3, 5, 6, 7] as const;

function deposit(bank: TestBank, c: TestCustomer, amountWon: number) {
  const p = bank.core.deposit({ accountId: c.accountId, amountWon, fromBank: 'Shinhan', fromName: 'Park' });
  assert.ok(p !== 'unknown-account');
  return p;
}

const seqsOf = (bank: TestBank, c: TestCustomer) => bank.channel.readModel().allHistory(c.accountId).map((r) => r.seq);
const coreSeqsOf = (bank: TestBank, c: TestCustomer) => bank.core.readModel().postingsOf(c.accountId).map((p) => p.seq);

/** Counts the link requests the channel sends, by type. */
function spyOnRequests(bank: TestBank): Map<LinkRequest['type'], number> {
  const counts = new Map<LinkRequest['type'], number>();
  const send = bank.link.request.bind(bank.link);
  bank.link.request = (m) => {
    counts.set(m.type, (counts.get(m.type) ?? 0) + 1);
    send(m);
  };
  return counts;
}

function historySync(log: LogKind): void {
  const test = suite(`history sync on the ${log} log`);

  test(
    'a dropped posting is found by the next one for the account and repaired from the core',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      const requests = spyOnRequests(bank);
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 10); // seq 2, lost
      await run(bank);
      assert.equal(seqsOf(bank, kim), [1], 'nothing reveals the hole yet');
      deposit(bank, kim, 20); // seq 3 reveals it
      await run(bank);
      assert.equal(seqsOf(bank, kim), [1, 2, 3]);
      assert.is(requests.get('postings-after'), 1, 'one repair request');
      assert.is(bank.channel.account(kim.accountId)!.balanceWon, 1_030);
      assert.is(bank.channel.repairsPending(), 0);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test('the gap-repair log line and metric leave only after the commit that holds the repaired rows', () => {
    let dataDir = '';
    let accountId = 0;
    const committedAtLine: number[] = [];
    const capture = capturingLogger((line) => {
      if (line.msg !== 'gap repaired from the core') return;
      const other = new Database(join(dataDir, 'channel.db'), { readonly: true });
      committedAtLine.push(other.prepare('SELECT COUNT(*) FROM history WHERE account_id = ?').pluck().get(accountId) as number);
      other.close();
    });
    const repaired: number[] = [];
    return withBank({ log, logger: capture.logger, observer: { repaired: (_a, rows) => repaired.push(rows) } }, async (bank) => {
      dataDir = bank.dataDir;
      const kim = openCustomer(bank, 'Kim', 1_000);
      accountId = kim.accountId;
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 10); // seq 2, lost
      deposit(bank, kim, 20); // seq 3 reveals it
      await run(bank);
      assert.equal(seqsOf(bank, kim), [1, 2, 3]);
      assert.equal(committedAtLine, [3], 'every row was committed when the line was written');
      assert.equal(repaired, [2], 'one repair, counted once: the lost row and the one held back behind it');
    })();
  });

  test(
    'rows past a hole wait for the repair: a customer never sees a hole',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 10); // seq 2, lost
      // The repair's answer is slow, though not so slow that the repair asks again (at 4 s).
      bank.faults.add({ pipe: 'response', action: 'delay', count: 1, delayMs: 3_900 });
      deposit(bank, kim, 20);
      deposit(bank, kim, 30);
      await run(bank, 3_899);
      assert.equal(seqsOf(bank, kim), [1], 'seq 3 and 4 are held back, not shown past a hole');
      assert.is(bank.channel.account(kim.accountId)!.balanceWon, 1_000, 'the balance is the last whole row\'s');
      await run(bank, 1);
      assert.equal(seqsOf(bank, kim), [1, 2, 3, 4]);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'a run of dropped records across accounts and transfers is repaired account by account',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 100_000);
      const lee = openCustomer(bank, 'Lee', 50_000);
      bank.faults.add({ pipe: 'log', action: 'drop', count: 7, delayMs: 0 });
      // Two transfers (three records each) and a deposit: seven records lost.
      createdId(transfer(bank, kim, lee, 1_000));
      await run(bank, 10);
      createdId(transfer(bank, lee, kim, 2_000));
      await run(bank, 10);
      deposit(bank, lee, 5);
      await run(bank, 10);
      // Later traffic on both accounts reveals both holes.
      deposit(bank, kim, 1);
      deposit(bank, lee, 1);
      await run(bank, 10);
      assert.equal(seqsOf(bank, kim), coreSeqsOf(bank, kim));
      assert.equal(seqsOf(bank, lee), coreSeqsOf(bank, lee));
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'a lost repair request or answer is asked again until the copy is whole',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 10);
      bank.faults.add({ pipe: 'request', action: 'drop', count: 2, delayMs: 0 });
      bank.faults.add({ pipe: 'response', action: 'drop', count: 2, delayMs: 0 });
      deposit(bank, kim, 20);
      await run(bank, 10);
      assert.equal(seqsOf(bank, kim), [1], 'still waiting while the repair is lost');
      assert.is(bank.channel.repairsPending(), 1);
      await run(bank, 120_000);
      assert.equal(seqsOf(bank, kim), [1, 2, 3]);
      assert.is(bank.channel.repairsPending(), 0);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'a delayed record overtaken by later ones is repaired, and applies as a no-op when it lands',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      bank.faults.add({ pipe: 'log', action: 'delay', count: 1, delayMs: 30_000 });
      deposit(bank, kim, 10);
      deposit(bank, kim, 20);
      await run(bank, 10);
      assert.equal(seqsOf(bank, kim), [1, 2, 3], 'repaired before the late record lands');
      await run(bank, 30_000);
      assert.equal(seqsOf(bank, kim), [1, 2, 3]);
      assert.is(bank.channel.account(kim.accountId)!.balanceWon, 1_030);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'duplicated records change nothing the second time',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 100_000);
      const lee = openCustomer(bank, 'Lee', 0);
      // Three transfers of three records each and three deposits: every record twice.
      bank.faults.add({ pipe: 'log', action: 'duplicate', count: 12, delayMs: 0 });
      for (let i = 0; i < 3; i++) {
        assert.is(stateOf(bank, createdId(transfer(bank, kim, lee, 1_000))) !== undefined, true);
        await run(bank, 10);
        deposit(bank, kim, 7);
      }
      await run(bank, 10);
      assert.is(bank.faults.size, 0, 'every duplicate fault was used');
      assert.is(bank.channel.account(kim.accountId)!.balanceWon, bank.core.readModel().getAccount(kim.accountId)!.balanceWon);
      assert.is(bank.channel.readModel().historyCount(kim.accountId), 7);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'redelivery from an older offset, even from the first, changes nothing',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 100_000);
      const lee = openCustomer(bank, 'Lee', 0);
      createdId(transfer(bank, kim, lee, 1_000));
      await run(bank, 10);
      deposit(bank, lee, 3);
      await run(bank, 10);
      const before = { kim: bank.channel.account(kim.accountId), lee: bank.channel.account(lee.accountId) };
      const end = bank.log.endOffset();
      for (const offset of [1, Math.floor(end / 2), end - 1]) {
        bank.channel.redeliverFrom(offset);
        await run(bank, 10);
        assert.is(bank.channel.readModel().consumerOffset(CONSUMER_NAME), end, `read up to the end again from ${offset}`);
        assert.equal({ kim: bank.channel.account(kim.accountId), lee: bank.channel.account(lee.accountId) }, before);
      }
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'a consumer restarted between records carries on from its committed offset',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      for (let round = 0; round < 5; round++) {
        deposit(bank, kim, round + 1);
        bank.channel.restartConsumer(); // before the log's notification reaches it
        deposit(bank, kim, 100);
        await run(bank, 10);
      }
      assert.equal(seqsOf(bank, kim), Array.from({ length: 11 }, (_, i) => i + 1));
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'a channel restarted in the middle of the stream loses nothing and duplicates nothing',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      const lee = openCustomer(bank, 'Lee', 1_000);
      // Records land over ten seconds; the channel crashes three times while they do.
      for (let i = 0; i < 60; i++) {
        bank.faults.add({ pipe: 'log', action: 'delay', count: 1, delayMs: (i * 167) % 10_000 });
        deposit(bank, i % 2 === 0 ? kim : lee, i + 1);
      }
      for (let crash = 0; crash < 3; crash++) {
        await run(bank, 2_500);
        bank.restart('channel');
      }
      await run(bank, 60_000);
      assert.equal(seqsOf(bank, kim), coreSeqsOf(bank, kim));
      assert.equal(seqsOf(bank, lee), coreSeqsOf(bank, lee));
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'a repair noted before a crash carries on after the restart',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 10);
      bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 20);
      await run(bank, 10);
      assert.is(bank.channel.repairsPending(), 1, 'the repair row is durable');
      bank.restart('channel');
      await run(bank, 10);
      assert.equal(seqsOf(bank, kim), [1, 2, 3]);
      assert.is(bank.channel.repairsPending(), 0);
    }),
  );

  test(
    'a batch that fails half way commits neither its rows nor its offset, and is applied once on redelivery',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      await run(bank); // seq 1 is in the copy before the batch that fails
      const store = bank.channel.readModel();
      const offsetBefore = store.consumerOffset(CONSUMER_NAME);
      const apply = store.applyPosting;
      let calls = 0;
      store.applyPosting = (p) => {
        if (++calls === 2) throw new Error('the disk failed under the second posting');
        return apply(p);
      };
      deposit(bank, kim, 10);
      deposit(bank, kim, 20);
      let failure: unknown = null;
      await Promise.resolve()
        .then(() => run(bank, 10))
        .catch((e: unknown) => (failure = e));
      assert.match(String(failure), /disk failed/);
      assert.equal(seqsOf(bank, kim), [1], 'the first posting of the batch rolled back with the second');
      assert.is(store.consumerOffset(CONSUMER_NAME), offsetBefore, 'the offset did not move');
      store.applyPosting = apply;
      bank.restart('channel');
      await run(bank, 10);
      assert.equal(seqsOf(bank, kim), [1, 2, 3]);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    'the history and balance reads send nothing to the core',
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      deposit(bank, kim, 10);
      await run(bank);
      const requests = spyOnRequests(bank);
      for (let i = 0; i < 5; i++) {
        bank.channel.account(kim.accountId);
        bank.channel.pageHistoryBefore(kim.accountId, Number.MAX_SAFE_INTEGER, 20);
        bank.channel.pageItemsBefore(kim.accountId, Number.MAX_SAFE_INTEGER, 20);
        bank.channel.pageItemsAfter(kim.accountId, 0, 20);
      }
      await run(bank, 10);
      assert.equal([...requests.entries()], []);
    }),
  );

  // Read your writes while the log is behind: a success never shows before its row does.

  /** The sender's history at the moment the transfer settled, and how it settled. */
  function watchSettlement(bank: TestBank, c: TestCustomer) {
    const seen: { event: string; seqs: number[] }[] = [];
    bank.channel.onTransition((_id, step) => {
      if (step.to === 'succeeded') seen.push({ event: step.event, seqs: seqsOf(bank, c) });
    });
    return seen;
  }

  test(
    "an answer brings the sender's rows the copy lacks, so the history shows the transfer the moment it succeeds",
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 100_000);
      const lee = openCustomer(bank, 'Lee', 0);
      bank.faults.add({ pipe: 'log', action: 'delay', count: 1, delayMs: 60_000 }); // Kim's deposit, seq 2, is late
      deposit(bank, kim, 5);
      bank.faults.add({ pipe: 'request', action: 'drop', count: 100, delayMs: 0, messages: 'sync' }); // and repair cannot help
      const seen = watchSettlement(bank, kim);
      createdId(transfer(bank, kim, lee, 1_000));
      await run(bank, 10);
      assert.equal(seen, [{ event: 'EXECUTED (response)', seqs: [1, 2, 3] }]);
      await run(bank, 60_000);
      bank.faults.clear();
      await run(bank, 60_000);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  test(
    "an outcome from the log waits for the sender's row to be repaired before it settles the transfer",
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 100_000);
      const lee = openCustomer(bank, 'Lee', 0);
      bank.faults.add({ pipe: 'log', action: 'delay', count: 1, delayMs: 60_000 }); // seq 2 is late
      deposit(bank, kim, 5);
      bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 }); // the answer is lost: the log must settle it
      bank.faults.add({ pipe: 'response', action: 'delay', count: 1, delayMs: 500, messages: 'sync' }); // the repair takes a while
      const seen = watchSettlement(bank, kim);
      const id = createdId(transfer(bank, kim, lee, 1_000));
      await run(bank, 100);
      assert.is(stateOf(bank, id), 'sent', 'the outcome has arrived but waits for the row');
      await run(bank, 1_000);
      assert.equal(seen, [{ event: 'EXECUTED (log)', seqs: [1, 2, 3] }]);
      await run(bank, 60_000);
      assertInvariants(bank, [...ALL_BUT_LIVENESS]);
    }),
  );

  // Without S8: the same faults leave the copy wrong. This is what the safeguard prevents.

  test(
    'without S8, a duplicated record is counted twice and the balance parts from the core',
    withBank({ log, protocol: without('S8') }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      bank.faults.add({ pipe: 'log', action: 'duplicate', count: 1, delayMs: 0 });
      deposit(bank, kim, 10);
      await run(bank, 10);
      assert.is(bank.channel.account(kim.accountId)!.balanceWon, 1_020);
      const violations = checkInvariants(bank, [6]);
      assert.ok(violations.some((v) => v.detail.includes('balance')), JSON.stringify(violations));
    }),
  );

  test(
    'without S8, a dropped record leaves a hole in the history for good',
    withBank({ log, protocol: without('S8') }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 10);
      deposit(bank, kim, 20);
      await run(bank, 120_000);
      assert.equal(seqsOf(bank, kim), [1, 3]);
      assert.ok(checkInvariants(bank, [6]).length > 0);
    }),
  );

  test.run();
}

for (const log of LOG_KINDS) historySync(log);
