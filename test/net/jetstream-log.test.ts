/**
 * What only the JetStream log has: msgID de-duplication of the relay's retries, the relay's
 * position learned from the stream by a new process, retention that outruns an absent channel,
 * and a nats-server that restarts mid-stream. Each against a real nats-server; the scenario
 * tests (S1-S8, history sync) run on this log too.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONSUMER_NAME } from '../../src/channel/log-consumer.ts';
import { CORE_PRODUCER } from '../../src/core/core-banking.ts';
import { VirtualTime } from '../../src/lib/clock.ts';
import { FaultQueue } from '../../src/net/faults.ts';
import { openJetStream, type JetStreamLogSettings } from '../../src/net/jetstream-log.ts';
import type { LogRecord } from '../../src/net/messages.ts';
import { assertInvariants, capturingLogger, createdId, drive, drivenApp, openCustomer, openTestBank, run, stateOf, testStreamSettings, transfer, type TestBank, type TestCustomer } from '../helpers.ts';
import { createApp } from '../../src/server/app.ts';
import { sharedNatsServer, startNatsServer } from '../../src/lib/nats-server.ts';

const ALL_BUT_LIVENESS = [1, 2, 3, 5, 6, 7] as const;

async function streamState(url: string, stream: string) {
  const nc = await connect({ servers: url });
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state;
  } finally {
    await nc.close();
  }
}

const opened = (accountId: number): LogRecord => ({ type: 'account-opened', accountId, holderName: `holder ${accountId}`, openedAt: 0 });

const seqsOf = (bank: TestBank, c: TestCustomer) => bank.channel.readModel().allHistory(c.accountId).map((r) => r.seq);
const coreSeqsOf = (bank: TestBank, c: TestCustomer) => bank.core.readModel().postingsOf(c.accountId).map((p) => p.seq);

test('a relay that publishes the same outbox rows again is stored once: msgID de-duplication', async () => {
  const server = await sharedNatsServer();
  const settings = testStreamSettings(server.url);
  const connection = await openJetStream(settings);
  const log = connection.eventLog({ clock: new VirtualTime().clock(), faults: new FaultQueue() });
  try {
    log.publish([opened(1), opened(2), opened(3)], { producer: CORE_PRODUCER, position: 3, ids: [1, 2, 3] });
    await log.idle();
    // A relay that crashed before it learned its position publishes the same rows again, and one more.
    log.publish([opened(2), opened(3), opened(4)], { producer: CORE_PRODUCER, position: 4, ids: [2, 3, 4] });
    await log.idle();
    assert.is((await streamState(server.url, settings.stream)).messages, 4, 'rows 2 and 3 were not stored twice');
    assert.is(log.endOffset(), 5);
  } finally {
    await connection.close();
  }
});

test('without msgIDs (a retry past the duplicate window) the copy lands twice, and the consumer takes it once', async () => {
  const bank = await openTestBank({ log: 'nats' });
  try {
    const kim = openCustomer(bank, 'Kim', 1_000);
    bank.faults.add({ pipe: 'log', action: 'duplicate', count: 2, delayMs: 0 });
    bank.core.deposit({ accountId: kim.accountId, amountWon: 10, fromBank: 'KB', fromName: 'Park' });
    await run(bank, 10);
    const state = await streamState((await sharedNatsServer()).url, streamOf(bank));
    assert.is(state.messages, outboxRows(bank) + 1, 'one record stored twice');
    assert.equal(seqsOf(bank, kim), [1, 2]);
    assert.is(bank.channel.account(kim.accountId)!.balanceWon, 1_010);
    assertInvariants(bank, [...ALL_BUT_LIVENESS]);
  } finally {
    await bank.dispose();
  }
});

test('a new process learns the relay position from the stream, and from the producers stream once retention took the records', async () => {
  const server = await sharedNatsServer();
  const settings = testStreamSettings(server.url);
  const first = await openJetStream(settings);
  const log = first.eventLog({ clock: new VirtualTime().clock(), faults: new FaultQueue() });
  log.publish([opened(1), opened(2)], { producer: CORE_PRODUCER, position: 7, ids: [6, 7] });
  await log.idle();
  await first.close();

  const second = await openJetStream(settings, { role: 'writer' });
  assert.is(second.eventLog({ clock: new VirtualTime().clock(), faults: new FaultQueue() }).producerPosition(CORE_PRODUCER), 7, 'from the last record');
  await second.close();

  // The records are gone (a purge, as retention would): the producers stream still knows.
  const nc = await connect({ servers: server.url });
  await (await jetstreamManager(nc)).streams.purge(settings.stream);
  await nc.close();
  const third = await openJetStream(settings, { role: 'writer' });
  assert.is(third.eventLog({ clock: new VirtualTime().clock(), faults: new FaultQueue() }).producerPosition(CORE_PRODUCER), 7, 'from the producers stream');
  await third.close();
});

test('a channel away for longer than the retention says so, reconciles, and repairs its copy from the core', async () => {
  const capture = capturingLogger();
  const bank = await openTestBank({ log: 'nats', logger: capture.logger, jetstream: { maxAgeMs: 1_000, duplicateWindowMs: 1_000 } });
  try {
    const kim = openCustomer(bank, 'Kim', 100_000);
    const lee = openCustomer(bank, 'Lee', 0);
    createdId(transfer(bank, kim, lee, 1_000));
    await run(bank, 10);
    bank.channel.stop();
    const before = outboxRows(bank);
    for (let i = 0; i < 5; i++) bank.core.deposit({ accountId: lee.accountId, amountWon: i + 1, fromBank: 'KB', fromName: 'Park' });
    await run(bank, 10);
    const away = outboxRows(bank) - before;
    // Real time: the server expires the records the channel has not read.
    const deadline = Date.now() + 10_000;
    while ((await streamState((await sharedNatsServer()).url, streamOf(bank))).messages > 0) {
      assert.ok(Date.now() < deadline, 'the stream expired its records');
      await new Promise((r) => setTimeout(r, 100));
    }
    bank.channel.start();
    await run(bank, 60_000);
    const lost = capture.lines().find((l) => /no longer holds records/.test(l.msg));
    assert.ok(lost, 'the loss is logged');
    assert.is(lost!.records, away, 'every record published while it was away');
    assert.ok(capture.lines().some((l) => /reconciliation found the copy differing/.test(l.msg)), capture.lines().map((l) => l.msg).join('\n'));
    assert.equal(seqsOf(bank, lee), coreSeqsOf(bank, lee));
    assert.equal(seqsOf(bank, kim), coreSeqsOf(bank, kim));
    assert.ok(bank.channel.readModel().consumerOffset(CONSUMER_NAME) >= bank.log.endOffset());
    assertInvariants(bank, [...ALL_BUT_LIVENESS]);
  } finally {
    await bank.dispose();
  }
});

test('a stream deleted under the bank is made again, and a channel whose position is past its end says so, reads it again and repairs', async () => {
  const capture = capturingLogger();
  const bank = await openTestBank({ log: 'nats', logger: capture.logger });
  try {
    const kim = openCustomer(bank, 'Kim', 1_000);
    for (let i = 0; i < 5; i++) bank.core.deposit({ accountId: kim.accountId, amountWon: 1, fromBank: 'KB', fromName: 'Park' });
    await run(bank, 10);
    const positionBefore = bank.channel.readModel().consumerOffset(CONSUMER_NAME);
    assert.ok(positionBefore > 3);
    const nc = await connect({ servers: (await sharedNatsServer()).url });
    await (await jetstreamManager(nc)).streams.delete(streamOf(bank));
    await nc.close();
    bank.core.deposit({ accountId: kim.accountId, amountWon: 2, fromBank: 'KB', fromName: 'Park' });
    bank.core.deposit({ accountId: kim.accountId, amountWon: 3, fromBank: 'KB', fromName: 'Park' });
    // The publisher finds the stream gone and makes it again; the reader finds it shorter.
    for (let waited = 0; (await streamState((await sharedNatsServer()).url, streamOf(bank)).catch(() => ({ messages: 0 }))).messages < 2; waited += 50) {
      assert.ok(waited < 10_000, 'the stream was made again and took the new records');
      bank.time.advance(0);
      await new Promise((r) => setTimeout(r, 50));
    }
    // The running reader looks at the stream every second (real time) and finds it made again.
    const said = () => capture.lines().some((l) => /ends before the history copy's position/.test(l.msg));
    for (let waited = 0; !said(); waited += 50) {
      assert.ok(waited < 10_000, capture.lines().map((l) => l.msg).join('\n'));
      bank.time.advance(0);
      await new Promise((r) => setTimeout(r, 50));
    }
    await run(bank, 60_000);
    assert.equal(seqsOf(bank, kim), coreSeqsOf(bank, kim));
    assertInvariants(bank, [...ALL_BUT_LIVENESS]);
  } finally {
    await bank.dispose();
  }
});

test("a bank on a fresh DATA_DIR refuses another bank's stream instead of skipping its own first records", async () => {
  const first = await openTestBank({ log: 'nats' });
  try {
    const kim = openCustomer(first, 'Kim', 1_000);
    first.core.deposit({ accountId: kim.accountId, amountWon: 1, fromBank: 'KB', fromName: 'Park' });
    await run(first, 10);
    const connection = await openJetStream((first.log as unknown as { settings: JetStreamLogSettings }).settings);
    let refused: unknown = null;
    try {
      const second = await openTestBank({ log: 'nats', eventLogOn: connection });
      await second.dispose();
    } catch (error) {
      refused = error;
    }
    assert.match(String(refused), /another bank's log/);
  } finally {
    await first.dispose();
  }
});

test('a nats-server restarted mid-stream loses nothing: publishes wait, the reader carries on', async () => {
  const server = await startNatsServer();
  const settings = testStreamSettings(server.url);
  const connection = await openJetStream(settings);
  const time = new VirtualTime();
  const log = connection.eventLog({ clock: time.clock(), faults: new FaultQueue() });
  const seen: number[] = [];
  let from = 1;
  log.subscribe(() => {
    for (const e of log.read(from, 1_000)) {
      seen.push(e.offset);
      from = e.offset + 1;
    }
  });
  const pump = setInterval(() => time.advance(0), 2);
  try {
    log.read(from, 1_000);
    let id = 0;
    const batch = (n: number) => {
      const ids = Array.from({ length: n }, () => ++id);
      log.publish(ids.map(opened), { producer: CORE_PRODUCER, position: id, ids });
    };
    batch(50);
    await log.idle();
    batch(50);
    await server.stop('SIGKILL');
    batch(50);
    await server.start();
    batch(50);
    await log.idle();
    const deadline = Date.now() + 15_000;
    while (seen.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen, Array.from({ length: 200 }, (_, i) => i + 1), 'every record once, in order');
    assert.is((await streamState(server.url, settings.stream)).messages, 200);
  } finally {
    clearInterval(pump);
    await connection.close();
    server.dispose();
  }
});

test('a server away for long fills the publisher up to its bound, then the relay waits and the rows wait in the outbox', async () => {
  const server = await startNatsServer();
  const settings = testStreamSettings(server.url, { maxQueued: 10 });
  const connection = await openJetStream(settings);
  const bank = await openTestBank({ log: 'nats', eventLogOn: connection });
  try {
    const kim = openCustomer(bank, 'Kim', 1_000);
    await run(bank);
    await server.stop();
    for (let i = 0; i < 30; i++) {
      bank.core.deposit({ accountId: kim.accountId, amountWon: 1, fromBank: 'KB', fromName: 'Park' });
      bank.time.advance(200); // each deposit its own batch, and the relay's retry timer runs (the server is away: no run())
    }
    const backlog = (bank.log as unknown as { backlog(): number }).backlog();
    assert.is(backlog, 10, 'the publisher holds its bound and no more');
    await server.start();
    await run(bank, 1_000);
    assert.equal(seqsOf(bank, kim), Array.from({ length: 31 }, (_, i) => i + 1), 'every deposit reached the copy once the server was back');
    assertInvariants(bank, [...ALL_BUT_LIVENESS]);
  } finally {
    await bank.dispose();
    server.dispose();
  }
});

test('the log faults work on JetStream: a dropped decision and a lost answer still settle by asking the core', async () => {
  const bank = await openTestBank({ log: 'nats' });
  try {
    const kim = openCustomer(bank, 'Kim', 100_000);
    const lee = openCustomer(bank, 'Lee', 0);
    await run(bank);
    bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
    bank.faults.add({ pipe: 'log', action: 'drop', count: 3, delayMs: 0 });
    const id = createdId(transfer(bank, kim, lee, 10_000));
    await run(bank, 10_000);
    assert.is(stateOf(bank, id), 'succeeded');
    assert.ok(bank.channel.transfer(id)!.journal.some((j) => j.event === 'EXECUTED (query)'));
    assertInvariants(bank);
  } finally {
    await bank.dispose();
  }
});

test('POST /admin/faults puts a log fault on the JetStream log: the dropped record is missing until a reconciliation repairs it', async () => {
  const bank = await openTestBank({ log: 'nats' });
  try {
    const admin = 'jetstream-admin-token-0001';
    const app = drivenApp(bank, createApp({ bank, adminToken: admin }));
    const kim = openCustomer(bank, 'Kim', 1_000);
    await run(bank);
    const queued = await app.request('/admin/faults', { method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ pipe: 'log', action: 'drop' }) });
    assert.is(queued.status, 201, await queued.clone().text());
    bank.core.deposit({ accountId: kim.accountId, amountWon: 10, fromBank: 'KB', fromName: 'Park' });
    await run(bank, 10);
    assert.is(bank.faults.size, 0, 'the fault was used');
    assert.equal(seqsOf(bank, kim), [1], 'the deposit record was dropped on its way to the stream');
    assert.is(await (await streamState((await sharedNatsServer()).url, streamOf(bank))).messages, outboxRows(bank) - 1);
    const report = await drive(bank, bank.channel.reconcile());
    assert.is(report.repaired, 1);
    assert.equal(seqsOf(bank, kim), [1, 2]);
    assertInvariants(bank, [...ALL_BUT_LIVENESS]);
  } finally {
    await bank.dispose();
  }
});

function outboxRows(bank: TestBank): number {
  return bank.core.readModel().db.prepare('SELECT COUNT(*) FROM log_outbox').pluck().get() as number;
}

function streamOf(bank: TestBank): string {
  return (bank.log as unknown as { settings: JetStreamLogSettings }).settings.stream;
}

test.run();
