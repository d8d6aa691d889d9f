/**
 * Test fixtures: a bank on virtual time in a temp dir, customers with accounts, and
 * helpers that let the network and timers run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createBank, type Bank, type BankDeps, type BankObserver, type BankSettings, type Side } from '../src/bank.ts';
import { DEFAULT_JETSTREAM_SETTINGS, openJetStream, type JetStreamConnection, type JetStreamLogSettings } from '../src/net/jetstream-log.ts';
import { sharedNatsServer } from '../src/lib/nats-server.ts';
import { VirtualTime } from '../src/lib/clock.ts';
import { seededRandom } from '../src/lib/ids.ts';
import type { Inspect } from '../src/lib/inspect.ts';
import { createLogger, testLogger, type Logger } from '../src/lib/logger.ts';
import { FULL_PROTOCOL, type Protocol } from '../src/lib/protocol.ts';
import { checkInvariants, type InvariantId } from '../src/sim/invariants.ts';

export type TestBank = Bank & { time: VirtualTime; dataDir: string; dispose: () => void | Promise<void> };

/** The event logs every test of the log runs against: the same test code, two adapters. */
export const LOG_KINDS = ['embedded', 'nats'] as const;
export type LogKind = (typeof LOG_KINDS)[number];

export type TestBankOptions = {
  protocol?: Protocol;
  settings?: Partial<BankSettings>;
  /** The core's clock minus the channel's, in ms (negative: the core is behind). */
  coreSkewMs?: number;
  seed?: number;
  /** Sees every actor, as INSPECT=1's inspector would. */
  inspect?: Inspect;
  /** After each commit of a side, before its effects leave (a test crashes a side here by throwing). */
  onCommitted?: (side: Side) => void;
  /** Where the bank's log lines go (quiet by default; TEST_LOG_LEVEL=debug shows them). */
  logger?: Logger;
  /** The metrics' hooks (src/server/metrics.ts). */
  observer?: BankObserver;
  /** The event log: the embedded one (log.db), or JetStream on the test process's nats-server (openTestBank only). */
  log?: LogKind;
  /** With log 'nats': the stream's settings other than its name (retention). */
  jetstream?: Partial<Omit<JetStreamLogSettings, 'url' | 'stream' | 'subjectPrefix'>>;
  /** With log 'nats': a connection of the test's own (another server), closed with the bank; its streams are left. */
  eventLogOn?: JetStreamConnection;
};

/**
 * A logger whose lines a test can read back, one parsed object each. `onLine` sees each line
 * as it is written (a test may look at what is committed at that very moment).
 */
export function capturingLogger(onLine?: (line: Record<string, any>) => void): { logger: Logger; lines: () => Record<string, any>[]; text: () => string } {
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (chunk: string) => {
        chunks.push(chunk);
        onLine?.(JSON.parse(chunk));
      },
    },
  });
  const text = () => chunks.join('');
  return { logger, text, lines: () => text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) };
}

export function makeBank(options: TestBankOptions = {}): TestBank {
  assert.is.not(options.log, 'nats', 'a bank on JetStream is made by openTestBank');
  return assemble(options, undefined, () => undefined);
}

let streams = 0;

/** Settings for a stream of the test's own on `url` (a name no other test in this process uses). */
export function testStreamSettings(url: string, extra: Partial<Omit<JetStreamLogSettings, 'url' | 'stream' | 'subjectPrefix'>> = {}): JetStreamLogSettings {
  const name = `T${process.pid}_${++streams}`;
  return { ...DEFAULT_JETSTREAM_SETTINGS, ...extra, url, stream: name, subjectPrefix: name.toLowerCase() };
}

/** A bank on either log; on 'nats', a stream of its own on the shared nats-server, deleted after. */
export async function openTestBank(options: TestBankOptions = {}): Promise<TestBank> {
  if (options.log !== 'nats') return makeBank(options);
  const own = options.eventLogOn;
  if (own !== undefined) return assemble(options, (parts) => own.eventLog(parts), () => own.close());
  const server = await sharedNatsServer();
  const settings = testStreamSettings(server.url, options.jetstream);
  const connection = await openJetStream(settings, { logger: options.logger ?? testLogger() });
  return assemble(options, (parts) => connection.eventLog(parts), async () => {
    await connection.close();
    await deleteStreams(server.url, settings);
  });
}

async function deleteStreams(url: string, settings: JetStreamLogSettings): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of [settings.stream, `${settings.stream}_PRODUCERS`]) await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

function assemble(options: TestBankOptions, eventLog: BankDeps['eventLog'], afterClose: () => void | Promise<void>): TestBank {
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-test-'));
  const time = new VirtualTime();
  const bank = createBank({
    dataDir,
    coreClock: time.clock(options.coreSkewMs ?? 0),
    channelClock: time.clock(0),
    random: seededRandom(options.seed ?? 1),
    protocol: options.protocol ?? FULL_PROTOCOL,
    // Periodic reconciliation sends link messages of its own, which would take faults queued
    // for a scenario's messages: it is on only where a test asks for it.
    settings: { reconcileIntervalMs: 0, ...options.settings },
    synchronous: 'OFF',
    inspect: options.inspect, // tests do not survive power cuts; the durable default is FULL
    onCommitted: options.onCommitted,
    logger: options.logger ?? testLogger(),
    observer: options.observer,
    eventLog,
  });
  try {
    bank.start();
  } catch (error) {
    bank.close();
    rmSync(dataDir, { recursive: true, force: true });
    return Promise.resolve(afterClose()).then(() => Promise.reject(error)) as never;
  }
  return Object.assign(bank, {
    time,
    dataDir,
    dispose() {
      bank.close();
      rmSync(dataDir, { recursive: true, force: true });
      return afterClose();
    },
  });
}

/** A test body that gets a fresh bank and always disposes of it. */
export function withBank(options: TestBankOptions, body: (bank: TestBank) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const bank = await openTestBank(options);
    try {
      await body(bank);
    } finally {
      await bank.dispose();
    }
  };
}

/**
 * Lets pending messages and timers due within `ms` run. On the embedded log all of it happens
 * inside this call (awaiting it changes nothing). A log with I/O of its own (JetStream) is
 * let settle before each timer fires, so the run is the same run on either log.
 */
export function run(bank: TestBank, ms = 0): void | Promise<void> {
  const idle = bank.log.idle?.bind(bank.log);
  // Synchronous on the embedded log: a timer that throws fails the test at this line, awaited or not.
  if (idle === undefined) return bank.time.advance(ms);
  return steps(bank, idle, ms);
}

async function steps(bank: TestBank, idle: () => Promise<void>, ms: number): Promise<void> {
  const end = bank.time.now() + Math.max(0, ms);
  for (;;) {
    await idle();
    // What the last timer set going in promises (a reconciliation's report) finishes first.
    await new Promise((r) => setImmediate(r));
    await idle();
    const next = bank.time.nextDueAt();
    if (next === undefined || next > end) break;
    bank.time.fireNext();
  }
  bank.time.advance(end - bank.time.now());
}

export type TestCustomer = { customerId: number; token: string; accountId: number };

export function openCustomer(bank: TestBank, name: string, openingBalanceWon: number): TestCustomer {
  const opened = bank.openCustomer(name, openingBalanceWon);
  // What is due now runs; on JetStream the account's record reaches the copy at the next run.
  bank.time.advance(0);
  return opened;
}

export function transfer(bank: TestBank, from: TestCustomer, to: TestCustomer, amountWon: number, idempotencyKey: string | null = null) {
  return bank.channel.requestTransfer({
    customerId: from.customerId,
    fromAccountId: from.accountId,
    toAccountId: to.accountId,
    amountWon,
    memo: null,
    idempotencyKey,
  });
}

export function createdId(outcome: ReturnType<typeof transfer>): string {
  assert.is(outcome.kind, 'created');
  if (outcome.kind !== 'created') throw new Error('unreachable');
  return outcome.transfer.id;
}

export function stateOf(bank: TestBank, id: string) {
  return bank.channel.transfer(id)?.state;
}

/** DESIGN.md invariants 1, 2, 3, 5 and 7, asserted after every scenario of issue 3. */
export const SCENARIO_INVARIANTS: InvariantId[] = [1, 2, 3, 5, 7];

export function assertInvariants(bank: TestBank, which: InvariantId[] = SCENARIO_INVARIANTS): void {
  const violations = checkInvariants(bank, which);
  assert.equal(violations, [], violations.map((v) => `invariant ${v.invariant} (${v.name}): ${v.detail}`).join('\n'));
}

export function balanceOf(bank: TestBank, c: TestCustomer): { core: number; channel: number } {
  return {
    core: bank.core.readModel().getAccount(c.accountId)!.balanceWon,
    channel: bank.channel.account(c.accountId)!.balanceWon,
  };
}

/**
 * Awaits a promise whose completion needs virtual time to pass (an HTTP call that waits
 * for an outcome): lets I/O callbacks run, then advances time by `stepMs`, until it settles.
 */
export async function drive<T>(bank: TestBank, promise: Promise<T>, stepMs = 100, maxMs = 600_000): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  for (let waited = 0; !done; waited += stepMs) {
    if (waited > maxMs) throw new Error(`still not settled after ${maxMs} ms of virtual time`);
    await new Promise((r) => setImmediate(r));
    if (!done) await run(bank, stepMs);
  }
  return tracked;
}

/**
 * An app whose requests let the bank's turn end on virtual time: an answer waits for the
 * commit of what it shows (commit, then effect), and that commit is armed on the test's clock.
 * Time does not move: only what is due now runs.
 */
export function drivenApp<A extends { request: (...args: any[]) => Response | Promise<Response> }>(bank: TestBank, app: A): A {
  const request = app.request.bind(app);
  const driven = (...args: Parameters<A['request']>) => {
    let done = false;
    const answer = Promise.resolve(request(...args)).finally(() => {
      done = true;
    });
    const pump = async () => {
      for (let turns = 0; !done; turns++) {
        if (turns > 100_000) throw new Error('a request that never finishes its turn');
        await new Promise((r) => setImmediate(r));
        if (!done) bank.time.advance(0);
      }
    };
    void pump();
    return answer;
  };
  return Object.assign(Object.create(app) as A, { request: driven });
}
