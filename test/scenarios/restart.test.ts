/**
 * Crash and restart with the disk intact: transfers caught in every unfinished state are
 * restored from their snapshots and settle correctly, with their deadlines where they were.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DUE_BATCH } from '../../src/channel/transfers/durable-transfers.ts';
import { assertInvariants, balanceOf, createdId, makeBank, openCustomer, run, stateOf, transfer, type TestBank } from '../helpers.ts';

/** A bank whose channel can be made to die right after its next commit, before that commit's effects leave. */
function withBank(body: (bank: TestBank, crashAfterNextCommit: (why: string) => void) => void) {
  let crashWith: string | null = null;
  const bank = makeBank({
    onCommitted: (side) => {
      if (side !== 'channel' || crashWith === null) return;
      const why = crashWith;
      crashWith = null;
      throw new Error(why);
    },
  });
  try {
    body(bank, (why) => {
      crashWith = why;
    });
  } finally {
    bank.dispose();
  }
}

test('a channel restart with transfers in requested, sent, timedOut and querying settles every one correctly', () =>
  withBank((bank, crashAfterNextCommit) => {
    const [a, b, c, d, payee] = ['A', 'B', 'C', 'D', 'Payee'].map((n) => openCustomer(bank, n, n === 'Payee' ? 0 : 100_000)) as [
      ReturnType<typeof openCustomer>, ReturnType<typeof openCustomer>, ReturnType<typeof openCustomer>, ReturnType<typeof openCustomer>, ReturnType<typeof openCustomer>,
    ];
    const t0 = bank.time.now();

    // C: request lost and its first query lost -> timedOut, next query at 7 s.
    bank.faults.add({ pipe: 'request', action: 'drop', count: 2, delayMs: 0 });
    const cId = createdId(transfer(bank, c, payee, 1_000));
    run(bank, 3_000);

    // D: executes, but the answer and its log records are lost -> querying from 6 s, answer late.
    bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
    bank.faults.add({ pipe: 'log', action: 'drop', count: 3, delayMs: 0 });
    const dId = createdId(transfer(bank, d, payee, 2_000));
    run(bank);
    bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs: 2_000 });
    run(bank, 3_000);

    // B: its request is slow -> still sent at the crash.
    bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs: 1_000 });
    const bId = createdId(transfer(bank, b, payee, 3_000));
    run(bank, 400);

    // A: the process dies between committing the request and sending it -> requested.
    transfer(bank, a, payee, 4_000);
    crashAfterNextCommit('crash after the requested commit');
    assert.throws(() => bank.time.advance(0), /crash after the requested commit/);
    const aId = bank.channel.readModel().inFlightFrom(a.accountId)!;
    run(bank, 100);

    assert.equal([aId, bId, cId, dId].map((id) => stateOf(bank, id)), ['requested', 'sent', 'timedOut', 'querying']);
    bank.restart('channel');
    assert.is(bank.channel.unfinishedCount(), 4, 'every unfinished transfer has its actor back');
    run(bank, 120_000);

    assert.equal([aId, bId, cId, dId].map((id) => stateOf(bank, id)), ['succeeded', 'succeeded', 'failed', 'succeeded']);
    assert.is(bank.channel.transfer(cId)!.reason, 'not-received');
    assert.is(bank.channel.unfinishedCount(), 0, 'finished actors are released');
    // C's retry query went out at its original time (7 s), not restarted from zero at the crash.
    const cQuery = bank.channel.transfer(cId)!.journal.filter((j) => j.event === 'QUERY_DUE').map((j) => j.at - t0);
    assert.equal(cQuery, [3_000, 7_000]);
    // B's deadline was 9 s; its answer came at 7 s, through the restarted channel.
    assert.is(bank.channel.transfer(bId)!.settledAt! - t0, 7_000);
    assert.is(balanceOf(bank, payee).core, 4_000 + 3_000 + 2_000);
    assertInvariants(bank, [1, 2, 3, 4, 5, 7]);
  }));

test('a restored transfer whose deadline passed while the channel was down times out at once and settles', () =>
  withBank((bank) => {
    const kim = openCustomer(bank, 'Kim', 10_000);
    const lee = openCustomer(bank, 'Lee', 0);
    bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
    const id = createdId(transfer(bank, kim, lee, 1_000));
    run(bank); // the turn commits: the request is stored, then sent (and lost)
    bank.channel.stop();
    run(bank, 30_000);
    bank.channel.start();
    assert.is(stateOf(bank, id), 'sent');
    run(bank, 10);
    assert.is(stateOf(bank, id), 'failed');
    assert.is(bank.channel.transfer(id)!.reason, 'not-received');
    assertInvariants(bank, [1, 2, 3, 4, 5, 6, 7]);
  }));

test('a request still in the open batch when the channel dies was never acknowledged: it is gone, and the account is free', async () => {
  const bank = makeBank();
  try {
    const kim = openCustomer(bank, 'Kim', 10_000);
    const lee = openCustomer(bank, 'Lee', 0);
    const sentToCore: string[] = [];
    const spy = bank.channel.onTransition((_id, step) => sentToCore.push(step.event));
    const id = createdId(transfer(bank, kim, lee, 1_000));
    const acknowledged = bank.channel.durable().then(
      () => 'durable',
      (error: Error) => error.message,
    );
    bank.channel.stop(); // before the turn's commit
    bank.channel.start();
    run(bank, 10_000);
    assert.match(await acknowledged, 'stopped before this batch was committed', 'a lost batch is never reported durable');
    assert.is(stateOf(bank, id), undefined, 'nothing of the request was durable');
    assert.equal(sentToCore, [], 'no transition of it ever left');
    assert.is(bank.channel.readModel().inFlightFrom(kim.accountId), undefined, 'the account is free');
    spy();
    const again = createdId(transfer(bank, kim, lee, 1_000));
    run(bank);
    assert.is(stateOf(bank, again), 'succeeded');
    assert.equal(balanceOf(bank, lee), { core: 1_000, channel: 1_000 });
    assertInvariants(bank, [1, 2, 3, 4, 5, 6, 7]);
  } finally {
    bank.dispose();
  }
});

test('a core restart keeps the ledger, and transfers in flight across it still settle', () =>
  withBank((bank) => {
    const kim = openCustomer(bank, 'Kim', 10_000);
    const lee = openCustomer(bank, 'Lee', 0);
    bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs: 500 });
    const id = createdId(transfer(bank, kim, lee, 1_000));
    bank.restart('core');
    run(bank, 1_000);
    assert.is(stateOf(bank, id), 'succeeded');
    bank.restart('core');
    assert.equal(balanceOf(bank, kim), { core: 9_000, channel: 9_000 });
    assert.equal(balanceOf(bank, lee), { core: 1_000, channel: 1_000 });
    assertInvariants(bank, [1, 2, 3, 4, 5, 6, 7]);
  }));

test('a request that reaches a core that is down is lost, and the transfer fails as not-received', () =>
  withBank((bank) => {
    const kim = openCustomer(bank, 'Kim', 10_000);
    const lee = openCustomer(bank, 'Lee', 0);
    bank.core.stop();
    const id = createdId(transfer(bank, kim, lee, 1_000));
    run(bank, 100);
    bank.core.start();
    run(bank, 10_000);
    assert.is(stateOf(bank, id), 'failed');
    assert.is(bank.channel.transfer(id)!.reason, 'not-received');
    assertInvariants(bank, [1, 2, 3, 4, 5, 6, 7]);
  }));

test('a restore of more unfinished transfers than one due batch works them a bounded batch at a time, and every one settles correctly', () =>
  withBank((bank) => {
    const count = 2 * DUE_BATCH + 7;
    const senders = Array.from({ length: count }, (_, i) => openCustomer(bank, `Sender ${i + 1}`, 10_000));
    const lee = openCustomer(bank, 'Lee', 0);
    // The core is down: every request is lost, and every transfer waits in `sent` for its timeout.
    bank.core.stop();
    const ids = senders.map((s) => createdId(transfer(bank, s, lee, 1_000)));
    run(bank);
    assert.is(bank.channel.unfinishedCount(), count);
    assert.ok(ids.every((id) => stateOf(bank, id) === 'sent'));

    // The channel dies and comes back; the core comes back. Nothing is loaded or sent yet.
    bank.restart('channel');
    bank.core.start();
    assert.ok(ids.every((id) => stateOf(bank, id) === 'sent'), 'a restore changes nothing by itself');

    // The one timer of the deadline index fires for the earliest deadline: one bounded batch moves.
    const due = bank.time.nextDueAt()!;
    run(bank, due - bank.time.now() - 1);
    assert.ok(ids.every((id) => stateOf(bank, id) === 'sent'));
    bank.time.fireNext();
    const timedOut = ids.filter((id) => stateOf(bank, id) !== 'sent').length;
    assert.is(timedOut, DUE_BATCH, 'the first turn works exactly one due batch');

    run(bank, 60_000);
    for (const id of ids) {
      assert.is(stateOf(bank, id), 'failed');
      assert.is(bank.channel.transfer(id)!.reason, 'not-received');
    }
    assert.is(bank.channel.unfinishedCount(), 0);
    assert.equal(balanceOf(bank, lee), { core: 0, channel: 0 });
    assertInvariants(bank, [1, 2, 3, 4, 5, 6, 7]);
  }));

test('a core restarted on a database from before db/006 resumes its relay after the rows it had marked published', () =>
  withBank((bank) => {
    const kim = openCustomer(bank, 'Kim', 100_000);
    const lee = openCustomer(bank, 'Lee', 0);
    const id = createdId(transfer(bank, kim, lee, 1_000));
    run(bank);
    assert.is(stateOf(bank, id), 'succeeded');
    const end = bank.log.endOffset();
    bank.restart('core');
    run(bank);
    assert.is(bank.log.endOffset(), end, 'with its position in the log, a restarted relay publishes nothing twice');

    /** What a log from before db/006 lacks: the relay's position. */
    const forgetRelayPosition = () => {
      const logDb = new Database(join(bank.dataDir, 'log.db'));
      try {
        logDb.prepare('DELETE FROM producer_positions').run();
      } finally {
        logDb.close();
      }
    };

    // A database from before db/006: the relay marked rows published in core.db and kept no position.
    forgetRelayPosition();
    const marked = bank.core.readModel().db.prepare('UPDATE log_outbox SET published = 1').run().changes;
    assert.ok(marked > 0);
    bank.restart('core');
    run(bank);
    assert.is(bank.log.endOffset(), end, 'the marked rows are not published again');

    // Without the marks (and no position) the relay starts from the top: the check above can fail.
    forgetRelayPosition();
    bank.core.readModel().db.prepare('UPDATE log_outbox SET published = 0').run();
    bank.restart('core');
    run(bank);
    assert.is(bank.log.endOffset(), end + marked, 'at least once: everything again, which the consumer takes as duplicates');
    assertInvariants(bank, [1, 2, 3, 5, 6, 7]);
  }));

test.run();
