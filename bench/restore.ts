/**
 * `npm run bench:restore`: a child process builds N unfinished transfers on a durable bank
 * (synchronous=FULL) with the core's link cut and is SIGKILLed; this process then reopens the
 * bank on the same data directory with the link back, serves HTTP, and measures how soon it
 * answers, its longest event-loop stall, how soon every transfer is settled, and its heap.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { integerOption, parseCli, quietOnClosedPipe } from '../src/lib/cli.ts';
import { Worker } from 'node:worker_threads';
import type { ServerType } from '@hono/node-server';
import { listen } from './loopback.ts';
import { createBank, type Bank } from '../src/bank.ts';
import { createSystemClock } from '../src/lib/clock.ts';
import { cryptoRandom, randomToken } from '../src/lib/ids.ts';
import { createApp } from '../src/server/app.ts';
import { checkInvariants, type InvariantId } from '../src/sim/invariants.ts';
import type { BuiltMessage } from './restore-build.ts';

const INVARIANTS: InvariantId[] = [1, 2, 3, 4, 5, 6, 7];
const MAX_TRANSFERS = 1_000_000;
/** How long the child may take to build, beyond this much per transfer. */
const BUILD_BASE_MS = 120_000;
const BUILD_PER_TRANSFER_MS = 3;
/** Reopening until the first answer, then checking the invariants and cleaning up, on top of the settle limit. */
const SERVE_LIMIT_MS = 300_000;
const CHECK_LIMIT_MS = 300_000;
const PROBE_MS = 1;
const POLL_MS = 20;
const FIRST_REQUEST_RETRY_MS = 5;
const UNFINISHED = "('requested', 'sent', 'timedOut', 'querying')";

type Options = { transfers: number; settleLimitMs: number };

const USAGE = `usage: npm run bench:restore -- [--transfers N] [--settle-limit SECONDS]

  Builds N unfinished transfers (default 100000) in a child process with the core's link cut,
  SIGKILLs it, reopens the bank in this process and measures the restore. The wait for every
  transfer to settle gives up after --settle-limit seconds (default 600).

  exit codes: 0 done and every transfer settled with the invariants holding, 1 they did not or the run failed, 2 a bad argument`;

function parseOptions(argv: string[]): Options {
  return parseCli(argv, USAGE, { transfers: { type: 'string', default: '100000' }, 'settle-limit': { type: 'string', default: '600' } }, (values) => ({
    transfers: integerOption('transfers', String(values.transfers), 1, MAX_TRANSFERS),
    settleLimitMs: integerOption('settle-limit', String(values['settle-limit']), 1, 86_400) * 1000,
  }));
}

/** Forks the builder and resolves once it has committed the last transfer; it is still alive then. */
function build(dataDir: string, transfers: number, child: { process: ChildProcess | null }): Promise<BuiltMessage> {
  return new Promise((resolve, reject) => {
    const builder = fork(fileURLToPath(new URL('./restore-build.ts', import.meta.url)), [dataDir, String(transfers)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.process = builder;
    builder.on('message', (m: BuiltMessage) => {
      if (m.type === 'built') resolve(m);
    });
    builder.on('error', reject);
    builder.on('exit', (code, signal) => reject(new Error(`the builder exited (code ${code}, signal ${signal}) before it had built the transfers`)));
  });
}

/** A crash: SIGKILL, no clean stop. Resolves once the process is gone. */
function crash(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.removeAllListeners('exit');
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the builder ended by ${signal}, not SIGKILL`))));
    child.kill('SIGKILL');
  });
}

/** The longest gap between ticks of a 1 ms interval, less the interval: how long the event loop was held. */
function stallProbe() {
  let last = performance.now();
  let longestMs = 0;
  let stopped = false;
  const tick = () => {
    const now = performance.now();
    longestMs = Math.max(longestMs, now - last - PROBE_MS);
    last = now;
  };
  const timer = setInterval(tick, PROBE_MS);
  return {
    /** After something the benchmark itself held the loop for (a forced gc): that gap is not the bank's. */
    skip(): void {
      last = performance.now();
    },
    stop(): number {
      if (!stopped) tick();
      stopped = true;
      clearInterval(timer);
      return longestMs;
    },
  };
}

/**
 * Counts unfinished transfers every POLL_MS on a read-only connection in a worker thread, so
 * that the polling never holds the event loop being measured. Reports the first time (ms on
 * the wall clock, performance.timeOrigin-based) it read none.
 */
function watchUnfinished(channelDbPath: string) {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const Database = require(workerData.driver);
    const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
    const count = db.prepare("SELECT COUNT(*) FROM transfers WHERE state IN ${UNFINISHED}").pluck();
    const poll = () => {
      const n = count.get();
      parentPort.postMessage({ unfinished: n, atMs: performance.timeOrigin + performance.now() });
      if (n > 0) setTimeout(poll, workerData.everyMs); else db.close();
    };
    poll();`;
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(source, { eval: true, workerData: { driver, path: channelDbPath, everyMs: POLL_MS } });
  let latest = Number.NaN;
  const settled = new Promise<number>((resolve, reject) => {
    worker.on('message', (m: { unfinished: number; atMs: number }) => {
      latest = m.unfinished;
      if (m.unfinished === 0) resolve(m.atMs);
    });
    worker.on('error', reject);
  });
  return { settled, unfinished: () => latest, stop: () => worker.terminate() };
}

/** Asks for a sender's history until it is answered with its page. */
async function firstAnswer(url: string, probe: BuiltMessage['probe']): Promise<void> {
  const giveUpAt = performance.now() + SERVE_LIMIT_MS;
  let last = '';
  while (performance.now() < giveUpAt) {
    try {
      const response = await fetch(`${url}/accounts/${probe.accountId}/transactions?limit=20`, { headers: { authorization: `Bearer ${probe.token}` } });
      const body = await response.text();
      if (response.status === 200 && (JSON.parse(body) as { items: unknown[] }).items.length > 0) return;
      last = `${response.status} ${body.slice(0, 200)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((r) => setTimeout(r, FIRST_REQUEST_RETRY_MS));
  }
  throw new Error(`GET /accounts/${probe.accountId}/transactions was not answered within ${SERVE_LIMIT_MS / 1000} s; last: ${last}`);
}

function heapUsedAfterGc(): number {
  global.gc?.();
  return process.memoryUsage().heapUsed;
}

const withTimeout = <T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([promise, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);

type Restore = { startMs: number; servingMs: number; stallMs: number; settledMs: number | null; heapBeforeBytes: number; heapAfterBytes: number; unfinishedLeft: number; bank: Bank };

/** Reopens the bank on `dataDir` with the link back and serves; every time is from the start of reopening. */
async function restore(dataDir: string, probe: BuiltMessage['probe'], settleLimitMs: number, servers: ServerType[]): Promise<Restore> {
  const heapBeforeBytes = heapUsedAfterGc();
  const stalls = stallProbe();
  const startedAt = performance.now();
  const clock = createSystemClock();
  // As npm start runs it: the core on its own thread.
  const bank = createBank({ dataDir, coreClock: clock, channelClock: clock, random: cryptoRandom, synchronous: 'FULL', coreThread: true });
  await bank.ready();
  bank.start();
  const startMs = performance.now() - startedAt;
  const watcher = watchUnfinished(join(dataDir, 'channel.db'));
  let done = false;
  try {
    const { server, url } = await listen(createApp({ bank, adminToken: randomToken(cryptoRandom) }).fetch);
    servers.push(server);
    await firstAnswer(url, probe);
    const servingMs = performance.now() - startedAt;
    const heapAfterBytes = heapUsedAfterGc();
    stalls.skip();
    const settledAt = await withTimeout(watcher.settled, Math.max(0, settleLimitMs - (performance.now() - startedAt)));
    const stallMs = stalls.stop();
    const settledMs = settledAt === 'timeout' ? null : settledAt - (performance.timeOrigin + startedAt);
    done = true;
    return { startMs, servingMs, stallMs, settledMs, heapBeforeBytes, heapAfterBytes, unfinishedLeft: settledAt === 'timeout' ? watcher.unfinished() : 0, bank };
  } finally {
    stalls.stop();
    await watcher.stop();
    if (!done) bank.close();
  }
}

function outcomes(bank: Bank): string {
  const rows = bank.channel.readModel().db.prepare("SELECT state || COALESCE(' ' || reason, '') AS outcome, COUNT(*) AS n FROM transfers GROUP BY outcome ORDER BY n DESC").all() as { outcome: string; n: number }[];
  return rows.map((r) => `${r.n} ${r.outcome}`).join(', ');
}

function printTable(rows: [string, string][]): void {
  const widths = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  const line = (a: string, b: string) => `| ${a.padEnd(widths[0]!)} | ${b.padStart(widths[1]!)} |`;
  console.log(line('measure', 'value'));
  console.log(`|${'-'.repeat(widths[0]! + 2)}|${'-'.repeat(widths[1]! + 1)}:|`);
  rows.forEach(([a, b]) => console.log(line(a, b)));
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function main(): Promise<number> {
  quietOnClosedPipe();
  const o = parseOptions(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-bench-restore-'));
  const child: { process: ChildProcess | null } = { process: null };
  const servers: ServerType[] = [];
  const cleanUp = () => {
    child.process?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  };
  const limitMs = BUILD_BASE_MS + BUILD_PER_TRANSFER_MS * o.transfers + SERVE_LIMIT_MS + o.settleLimitMs + CHECK_LIMIT_MS;
  const watchdog = setTimeout(() => {
    console.error(`\nbench:restore did not finish within ${limitMs / 1000} s; giving up`);
    cleanUp();
    process.exit(1);
  }, limitMs);
  watchdog.unref();
  process.on('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });

  let bank: Bank | null = null;
  try {
    console.log(
      `bench:restore  node ${process.version}, ${availableParallelism()} cores, synchronous=FULL, ${o.transfers} unfinished transfers, ` +
        `heap ${global.gc === undefined ? 'without gc (run with node --expose-gc for a settled heap)' : 'after gc'}`,
    );
    const built = await build(dataDir, o.transfers, child);
    await crash(child.process!);
    child.process = null;
    console.log(`built ${o.transfers + 1} accounts in ${built.customersSeconds.toFixed(1)} s and ${o.transfers} transfers in ${built.transfersSeconds.toFixed(1)} s; builder SIGKILLed holding ${mb(built.heapUsedBytes)} heap, ${mb(built.rssBytes)} rss`);

    const r = await restore(dataDir, built.probe, o.settleLimitMs, servers);
    bank = r.bank;
    for (const s of servers) s.close();
    if (r.settledMs === null) console.error(`\n${r.unfinishedLeft} transfers were still unfinished after ${o.settleLimitMs / 1000} s`);
    const violations = checkInvariants(bank, INVARIANTS);
    const heapPerTransfer = (r.heapAfterBytes - r.heapBeforeBytes) / o.transfers;
    const settled = r.settledMs === null ? `>${o.settleLimitMs}` : r.settledMs.toFixed(0);

    console.log();
    printTable([
      ['core thread loaded and bank.start() returned after', `${r.startMs.toFixed(0)} ms`],
      ['serving after (first GET /accounts/:id/transactions answered)', `${r.servingMs.toFixed(0)} ms`],
      ['longest event-loop stall until all settled', `${r.stallMs.toFixed(1)} ms`],
      ['all settled after', `${settled} ms`],
      ['heap before opening the bank', mb(r.heapBeforeBytes)],
      ['heap once serving', mb(r.heapAfterBytes)],
      ['heap per unfinished transfer', `${heapPerTransfer.toFixed(0)} B`],
      ['outcomes', outcomes(bank)],
    ]);
    console.log(`\ninvariants ${INVARIANTS.join(', ')}: ${violations.length === 0 ? 'hold' : `${violations.length} violations`}`);
    violations.slice(0, 20).forEach((v) => console.error(`  invariant ${v.invariant} (${v.name}): ${v.detail}`));
    console.log(
      `restore: ${o.transfers} unfinished; serving after ${r.servingMs.toFixed(0)} ms; longest stall ${r.stallMs.toFixed(0)} ms; ` +
        `all settled after ${settled} ms; heap per unfinished transfer ${heapPerTransfer.toFixed(0)} B`,
    );
    return violations.length === 0 && r.settledMs !== null ? 0 : 1;
  } finally {
    for (const s of servers) s.close();
    bank?.close();
    cleanUp();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
