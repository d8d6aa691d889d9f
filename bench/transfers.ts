/**
 * `npm run bench:transfers`: POST /transfers over real loopback sockets against a durable
 * bank (synchronous=FULL), many customers in parallel, in rounds alternating with a bare Hono
 * JSON POST route measured the same way. Prints per-round figures and their medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { closeServer, listen } from './loopback.ts';
import cliProgress from 'cli-progress';
import { Hono } from 'hono';
import { integerOption, parseCli, quietOnClosedPipe, UsageError } from '../src/lib/cli.ts';
import { createBank, type Bank } from '../src/bank.ts';
import { CONSUMER_NAME } from '../src/channel/log-consumer.ts';
import { createSystemClock } from '../src/lib/clock.ts';
import { cryptoRandom, randomToken } from '../src/lib/ids.ts';
import type { Synchronous } from '../src/lib/sqlite.ts';
import { createApp } from '../src/server/app.ts';
import { checkInvariants, type InvariantId } from '../src/sim/invariants.ts';
import { runLoad, startLoadWorker, type LoadResult, type LoadSpec, type RequestShape } from './http-load.ts';
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { createCoreStore, type CoreStore } from '../src/core/core-store.ts';
import { startNatsServer } from '../src/lib/nats-server.ts';
import { DEFAULT_JETSTREAM_SETTINGS, openJetStream } from '../src/net/jetstream-log.ts';
import type { LinkOptions } from '../src/net/link.ts';
import { channelLinkOverNats, remoteCoreOps, type RemoteCoreOps } from '../src/net/nats-link.ts';

const INVARIANTS: InvariantId[] = [1, 2, 3, 5, 6, 7];
const OPENING_BALANCE_WON = 1_000_000;
const AMOUNT_WON = 1;
const QUIET_WAIT_MS = 5_000;
const WARMUP_TIME_LIMIT_MS = 10_000;
/** What opening the customers, checking the invariants and closing may take, on top of the phases. */
const SETUP_LIMIT_MS = 60_000;
const MAX_ROUNDS = 50;
/** The bare warm-up runs for a time; this bounds its requests (and the latencies it keeps). */
const MAX_BARE_WARMUP = 1_000_000;

/** The whole run stops here whatever happens: a benchmark must never hang. */
function watchdogMs(o: Options): number {
  const perRound = 2 * o.timeLimitMs + QUIET_WAIT_MS;
  return SETUP_LIMIT_MS + 2 * WARMUP_TIME_LIMIT_MS + QUIET_WAIT_MS + o.rounds * perRound;
}

type Options = {
  rounds: number;
  customers: number;
  concurrency: number;
  requests: number;
  warmup: number;
  timeLimitMs: number;
  synchronous: Synchronous;
  inlineClient: boolean;
  client: LoadSpec['client'];
  /** The core on its own worker thread, as npm start runs it, or on the server's thread, as the tests and the simulator run it. */
  core: 'thread' | 'inline';
  /** The event log: the embedded one in log.db, or JetStream on a nats-server this run starts. */
  log: 'embedded' | 'nats';
  /** The split mode: the core is another process (src/core-main.ts), met only through NATS. */
  split: boolean;
};

const USAGE = `usage: npm run bench:transfers -- [--rounds N] [--customers N] [--concurrency C] [--requests R] [--warmup W]
       [--time-limit SECONDS] [--synchronous FULL|NORMAL|OFF] [--client http|fetch] [--inline-client]
       [--core thread|inline] [--log embedded|nats] [--split]

  After a warm-up (W transfers, default 300, then the bare route for as long as they took),
  N rounds (default 5) each measure R requests (default 5000) on the bare Hono route and R on
  POST /transfers, in alternating order; a phase stops early at the time limit (default 30 s).
  Medians over the rounds are reported; progress goes to stderr. The core runs on its own worker
  thread, as npm start runs it (--core inline: on the server's thread, as the tests run it).
  --log nats puts the event log on JetStream, on a nats-server (Debian's) this run starts on a
  free port; --split (implies --log nats) runs the core as a process of its own, as npm run
  start:core does, and this process as the channel server. The sync lag is then measured from
  the core's decision, which comes before its commit: an upper bound of the figure.

  exit codes: 0 done and the invariants hold, 1 an invariant broke or the run failed, 2 a bad argument`;

const wholeNumber = (name: string, value: string, max: number): number => integerOption(name, value, 0, max);

function parseOptions(argv: string[]): Options {
  return parseCli(argv, USAGE, {
      rounds: { type: 'string', default: '5' },
      customers: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '64' },
      requests: { type: 'string', default: '5000' },
      warmup: { type: 'string', default: '300' },
      'time-limit': { type: 'string', default: '30' },
      synchronous: { type: 'string', default: 'FULL' },
      'inline-client': { type: 'boolean', default: false },
      client: { type: 'string', default: 'http' },
      core: { type: 'string', default: 'thread' },
      log: { type: 'string', default: 'embedded' },
      split: { type: 'boolean', default: false },
  }, (v) => checkOptions(v as RawOptions));
}

type RawOptions = { [K in 'rounds' | 'customers' | 'concurrency' | 'requests' | 'warmup' | 'time-limit' | 'synchronous' | 'client' | 'core' | 'log']: string } & { 'inline-client': boolean; split: boolean };

function checkOptions(values: RawOptions): Options {
  const synchronous = values.synchronous.toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL' && synchronous !== 'OFF') throw new UsageError('--synchronous must be FULL, NORMAL or OFF');
  const client = values.client;
  if (client !== 'http' && client !== 'fetch') throw new UsageError('--client must be http or fetch');
  const core = values.core;
  if (core !== 'thread' && core !== 'inline') throw new UsageError('--core must be thread or inline');
  const log = values.split ? 'nats' : values.log;
  if (log !== 'embedded' && log !== 'nats') throw new UsageError('--log must be embedded or nats');
  if (values.split && values.log === 'embedded' && process.argv.includes('--log')) throw new UsageError('--split needs --log nats: the sides meet only through NATS');
  if (values.split && synchronous !== 'FULL') throw new UsageError('--split runs the core process durable (synchronous=FULL): leave --synchronous out');
  const o: Options = {
    rounds: wholeNumber('rounds', values.rounds, MAX_ROUNDS),
    customers: wholeNumber('customers', values.customers, 10_000),
    concurrency: wholeNumber('concurrency', values.concurrency, 1_000),
    requests: wholeNumber('requests', values.requests, 1_000_000),
    warmup: wholeNumber('warmup', values.warmup, 100_000),
    timeLimitMs: wholeNumber('time-limit', values['time-limit'], 100) * 1000,
    synchronous,
    inlineClient: values['inline-client'],
    client,
    core,
    log,
    split: values.split,
  };
  // An account holds at most one unfinished transfer: each client in flight needs its own senders.
  if (o.concurrency < 1 || o.customers < o.concurrency) throw new UsageError('need 1 <= --concurrency <= --customers');
  if (o.rounds < 1 || o.requests < 1) throw new UsageError('need --rounds and --requests of at least 1');
  return o;
}

type Opened = { token: string; accountId: number };

/** Opens customers through the admin API, as an operator would. */
async function openCustomers(url: string, adminToken: string, count: number, progress: () => void): Promise<Opened[]> {
  const opened: Opened[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${url}/admin/customers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `Bench Customer ${i + 1}`, openingBalance: OPENING_BALANCE_WON }),
    });
    const body = (await response.json()) as { token: string; account: { id: number } };
    if (response.status !== 201) throw new Error(`POST /admin/customers answered ${response.status}: ${JSON.stringify(body)}`);
    opened.push({ token: body.token, accountId: body.account.id });
    progress();
  }
  return opened;
}

/**
 * Client i owns customers i, i+C, i+2C, ... and only ever sends from them, so no account
 * has two transfers in flight. Each sends to the next customer around the ring.
 */
function transferClients(customers: Opened[], concurrency: number): RequestShape[][] {
  const clients: RequestShape[][] = Array.from({ length: concurrency }, () => []);
  customers.forEach((from, i) => {
    const to = customers[(i + 1) % customers.length]!;
    clients[i % concurrency]!.push({
      headers: { authorization: `Bearer ${from.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ fromAccountId: from.accountId, toAccountId: to.accountId, amount: AMOUNT_WON }),
    });
  });
  return clients;
}

function echoClients(concurrency: number): RequestShape[][] {
  return Array.from({ length: concurrency }, (_, i) => [
    { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fromAccountId: i + 1, toAccountId: i + 2, amount: AMOUNT_WON }) },
  ]);
}

/** Nearest-rank percentile of an ascending list. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

type Route = 'bare' | 'scrollbank';
type Phase = LoadResult & { serverLoopBusy: number };
/** What only a scrollbank round measures: commits of the three databases, transfers that succeeded, sync lags. */
type WritePath = { commits: number; transfers: number; syncLags: SyncLags };
type Row = {
  round: string;
  route: Route;
  requests: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverBusy: number;
  clientBusy: number;
  commitsPerTransfer: number | null;
  syncLagP99Ms: number | null;
  /** The same rows' lag from the core's decision, which waits for the rest of its batch before the commit. */
  decisionLagP99Ms: number | null;
  note: string;
};
type Round = { row: Row; phase: Phase; writePath: WritePath | null };

function summarize(round: number, route: Route, r: Phase, writePath: WritePath | null): Round {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  const seconds = r.elapsedMs / 1000;
  const lags = writePath === null ? null : [...writePath.syncLags.fromCommitMs].sort((a, b) => a - b);
  const fromDecision = writePath === null ? null : [...writePath.syncLags.fromDecisionMs].sort((a, b) => a - b);
  const row: Row = {
    round: String(round),
    route,
    requests: r.completed,
    seconds,
    perSecond: r.completed / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    serverBusy: r.serverLoopBusy,
    clientBusy: r.clientLoopBusy,
    commitsPerTransfer: writePath === null ? null : writePath.commits / writePath.transfers,
    syncLagP99Ms: lags === null ? null : percentile(lags, 99),
    decisionLagP99Ms: fromDecision === null ? null : percentile(fromDecision, 99),
    note: r.timeCapHit ? 'time cap hit' : '',
  };
  return { row, phase: r, writePath };
}

/** The median of every column over the rounds of one route. */
function medianRow(rounds: Round[], route: Route): Row {
  const rows = rounds.filter((r) => r.row.route === route).map((r) => r.row);
  const of = (pick: (r: Row) => number | null) => (rows[0] === undefined || pick(rows[0]) === null ? null : median(rows.map((r) => pick(r)!)));
  return {
    round: 'median',
    route,
    requests: of((r) => r.requests)!,
    seconds: of((r) => r.seconds)!,
    perSecond: of((r) => r.perSecond)!,
    p50Ms: of((r) => r.p50Ms)!,
    p99Ms: of((r) => r.p99Ms)!,
    serverBusy: of((r) => r.serverBusy)!,
    clientBusy: of((r) => r.clientBusy)!,
    commitsPerTransfer: of((r) => r.commitsPerTransfer),
    syncLagP99Ms: of((r) => r.syncLagP99Ms),
    decisionLagP99Ms: of((r) => r.decisionLagP99Ms),
    note: '',
  };
}

function printTable(rows: Row[]): void {
  const header = ['round', 'route', 'requests', 'seconds', 'req/s', 'p50 ms', 'p99 ms', 'server loop busy', 'client loop busy', 'commits/transfer', 'sync lag p99 ms', 'from decision p99 ms', ''];
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const cells = rows.map((r) => [
    r.round,
    r.route,
    String(r.requests),
    r.seconds.toFixed(2),
    r.perSecond.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    pct(r.serverBusy),
    pct(r.clientBusy),
    r.commitsPerTransfer === null ? '' : r.commitsPerTransfer.toFixed(3),
    r.syncLagP99Ms === null ? '' : r.syncLagP99Ms.toFixed(2),
    r.decisionLagP99Ms === null ? '' : r.decisionLagP99Ms.toFixed(2),
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((s, i) => (i < 2 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
  console.log(line(header));
  cells.forEach((c) => console.log(line(c)));
}

/** Every failure is printed; returns whether the phase was clean. */
function reportFailures(r: LoadResult): boolean {
  if (r.failureCount === 0) return true;
  console.error(`${r.label}: ${r.failureCount} of ${r.completed} responses failed; statuses ${JSON.stringify(r.statuses)}`);
  r.failures.forEach((f) => console.error(`  ${f}`));
  return false;
}

/**
 * After the last answer the event log may still be on its way to the channel's history: in the
 * split mode, also in the core process's publisher, which only the core can say.
 */
async function waitUntilQuiet(bank: Bank, remote?: RemoteCoreOps): Promise<void> {
  const giveUpAt = Date.now() + QUIET_WAIT_MS;
  while (remote !== undefined && (await remote.backlog()) > 0 && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, 10));
  const caughtUp = () => bank.channel.readModel().consumerOffset(CONSUMER_NAME) >= bank.log.endOffset() && bank.channel.unfinishedCount() === 0;
  while (!caughtUp() && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, 10));
  // A log with I/O of its own (JetStream) may still hold publishes the stream has not acknowledged.
  await bank.log.idle?.();
  while (!caughtUp() && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, 10));
}

/** Core commits, by wall-clock ms, in order: where each decided posting became durable in the core. */
function coreCommitTimes() {
  const times: number[] = [];
  return {
    note(atMs: number): void {
      times.push(atMs);
    },
    /** The first core commit at or after `ms`: the one that made a decision taken at `ms` durable (or a later one, never an earlier). */
    firstFrom(ms: number): number | null {
      let lo = 0;
      let hi = times.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (times[mid]! < ms) lo = mid + 1;
        else hi = mid;
      }
      return lo < times.length ? times[lo]! : null;
    },
  };
}

type SyncLags = { fromCommitMs: number[]; fromDecisionMs: number[] };

/**
 * While on, the lag of every receiver's row to the channel commit that made it durable: from the
 * core commit that made its posting durable (the issue's figure), and from the core's decision.
 */
function recordSyncLags(bank: Bank, commits: ReturnType<typeof coreCommitTimes>) {
  let lags: SyncLags | null = null;
  bank.channel.onHistoryApplied((postings, appliedAtMs) => {
    if (lags === null) return;
    for (const p of postings) {
      if (p.kind !== 'transfer-in') continue;
      lags.fromDecisionMs.push(appliedAtMs - p.occurredAt);
      lags.fromCommitMs.push(appliedAtMs - (commits.firstFrom(p.occurredAt) ?? p.occurredAt));
    }
  });
  return {
    start(): void {
      lags = { fromCommitMs: [], fromDecisionMs: [] };
    },
    stop(): SyncLags {
      const out = lags ?? { fromCommitMs: [], fromDecisionMs: [] };
      lags = null;
      return out;
    },
  };
}

function progressBar(format: string) {
  return new cliProgress.SingleBar({ format, hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
}

/**
 * --log nats: a nats-server of this run's own, and the JetStream log on it. --split: the core
 * as a process of its own on DATA_DIR/core (src/core-main.ts, as npm run start:core), this
 * process as the channel server.
 */
async function natsDeployment(dataDir: string, split: boolean) {
  const server = await startNatsServer();
  const settings = { ...DEFAULT_JETSTREAM_SETTINGS, url: server.url };
  const coreDir = join(dataDir, 'core');
  let core: ChildProcess | null = null;
  if (split) {
    const c = spawn(process.execPath, ['--import', 'tsx', 'src/core-main.ts'], {
      env: { ...process.env, DATA_DIR: coreDir, EVENT_LOG: server.url, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    core = c;
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      c.stdout!.on('data', (d: Buffer) => {
        seen = (seen + d.toString()).slice(-10_000);
        if (/scrollbank core ready/.test(seen)) resolve();
      });
      c.once('exit', (code) => reject(new Error(`the core process exited with ${code}: ${seen}`)));
    });
  }
  const jet = await openJetStream(settings, { role: split ? 'reader' : 'both' });
  const coreReads = split ? () => (reads ??= createCoreStore(new Database(join(coreDir, 'core.db'), { readonly: true, fileMustExist: true }))) : undefined;
  let reads: CoreStore | null = null;
  return {
    jet,
    version: server.version,
    coreReads,
    split: split ? { link: (options: LinkOptions) => channelLinkOverNats(jet.nats, settings.subjectPrefix, options), remoteCore: remoteCoreOps(jet.nats, settings.subjectPrefix) } : undefined,
    async close(): Promise<void> {
      reads?.db.close();
      await jet.close();
      if (core !== null && core.exitCode === null) {
        const gone = new Promise((r) => core!.once('exit', r));
        core.kill('SIGTERM');
        await gone;
      }
      server.dispose();
    },
  };
}

async function main(): Promise<number> {
  quietOnClosedPipe();
  const o = parseOptions(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-bench-'));
  const limitMs = watchdogMs(o);
  const watchdog = setTimeout(() => {
    console.error(`\nbench:transfers did not finish within ${limitMs / 1000} s; giving up`);
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(1);
  }, limitMs);
  watchdog.unref();

  const clock = createSystemClock();
  const commits = coreCommitTimes();
  const nats = o.log === 'nats' ? await natsDeployment(dataDir, o.split) : null;
  const bank = createBank({
    dataDir,
    coreClock: clock,
    channelClock: clock,
    random: cryptoRandom,
    synchronous: o.synchronous,
    onCoreCommitted: o.split ? undefined : commits.note,
    coreThread: o.core === 'thread',
    eventLog: nats === null ? undefined : (parts) => nats.jet.eventLog(parts),
    split: nats?.split,
  });
  await bank.ready();
  bank.start();
  /** Every commit of the run: here, and in the split mode's core process. */
  const commitCount = async () => bank.commitCount() + (nats?.split === undefined ? 0 : await nats.split.remoteCore.commitCount());
  /** The invariants read the core's committed state: in the split mode, from the core process's core.db. */
  const checked = nats?.coreReads === undefined ? bank : { core: { readModel: nats.coreReads }, channel: bank.channel };
  const syncLags = recordSyncLags(bank, commits);
  const adminToken = randomToken(cryptoRandom);
  const bankServer = await listen(createApp({ bank, adminToken }).fetch);
  const bare = new Hono();
  bare.post('/echo', async (c) => c.json(await c.req.json(), 201));
  const bareServer = await listen(bare.fetch);
  const load = o.inlineClient ? { run: runLoad, stop: async () => 0 } : startLoadWorker();

  try {
    console.log(
      `bench:transfers  node ${process.version}, ${availableParallelism()} cores, synchronous=${o.synchronous}, ` +
        `${o.customers} customers, concurrency ${o.concurrency}, ${o.rounds} rounds of ${o.requests} requests per route after ${o.warmup} warm-up, ` +
        `${o.client} client on ${o.inlineClient ? 'the server thread' : 'a worker thread'}, ` +
        `core ${o.split ? 'in a process of its own (split mode)' : o.core === 'thread' ? 'on its own thread' : 'on the server thread'}, ` +
        `event log ${o.log === 'nats' ? `on JetStream (nats-server ${nats!.version})` : 'embedded'}, loopback`,
    );
    const setupStarted = performance.now();
    const opening = progressBar('opening customers |{bar}| {value}/{total}');
    opening.start(o.customers, 0);
    const customers = await openCustomers(bankServer.url, adminToken, o.customers, () => opening.increment());
    opening.stop();
    console.log(`opened ${customers.length} customers over HTTP in ${((performance.now() - setupStarted) / 1000).toFixed(2)} s`);

    const transfers = transferClients(customers, o.concurrency);
    const echoes = echoClients(o.concurrency);
    const phase = async (label: string, route: Route, requests: number, timeLimitMs: number): Promise<Phase> => {
      const elu = performance.eventLoopUtilization();
      const result =
        route === 'bare'
          ? await load.run({ label, url: `${bareServer.url}/echo`, requests, timeLimitMs, clients: echoes, expect: 'echo', client: o.client })
          : await load.run({ label, url: `${bankServer.url}/transfers`, requests, timeLimitMs, clients: transfers, expect: 'transfer', client: o.client });
      return { ...result, serverLoopBusy: performance.eventLoopUtilization(elu).utilization };
    };
    /** A scrollbank round owns every commit and receiver's row up to the moment its log tail has landed. */
    const writeRound = async (label: string): Promise<[Phase, WritePath]> => {
      const commitsBefore = await commitCount();
      syncLags.start();
      const r = await phase(label, 'scrollbank', o.requests, o.timeLimitMs);
      await waitUntilQuiet(bank, nats?.split?.remoteCore);
      const writePath = { commits: (await commitCount()) - commitsBefore, transfers: r.completed - r.failureCount, syncLags: syncLags.stop() };
      return [r, writePath];
    };

    const rounds = progressBar('{phase} |{bar}| {value}/{total} phases');
    rounds.start(2 + 2 * o.rounds, 0, { phase: 'warm-up' });
    const warmLimitMs = Math.min(o.timeLimitMs, WARMUP_TIME_LIMIT_MS);
    const warm = [await phase('warm-up transfers', 'scrollbank', o.warmup, warmLimitMs)];
    await waitUntilQuiet(bank, nats?.split?.remoteCore);
    rounds.increment();
    // W bare requests are over before the JIT is done with the route and the client: the bare
    // route warms up for as long as the transfers did, so both start their rounds warm.
    const bareWarmMs = Math.max(1, Math.min(warmLimitMs, Math.round(warm[0]!.elapsedMs)));
    warm.push({ ...(await phase('warm-up bare', 'bare', MAX_BARE_WARMUP, bareWarmMs)), timeCapHit: false });
    rounds.increment();
    const measured: Round[] = [];
    for (let n = 1; n <= o.rounds; n++) {
      // ABBA order: whatever drifts over the run (disk, caches, the other process) falls on both routes alike.
      const order: Route[] = n % 2 === 1 ? ['bare', 'scrollbank'] : ['scrollbank', 'bare'];
      for (const route of order) {
        rounds.update({ phase: `round ${n}/${o.rounds} ${route}` });
        if (route === 'bare') {
          measured.push(summarize(n, route, await phase(`round ${n} bare Hono POST /echo`, 'bare', o.requests, o.timeLimitMs), null));
        } else {
          const [r, writePath] = await writeRound(`round ${n} scrollbank POST /transfers`);
          measured.push(summarize(n, route, r, writePath));
        }
        rounds.increment();
      }
    }
    rounds.stop();

    const bankMedian = medianRow(measured, 'scrollbank');
    const bareMedian = medianRow(measured, 'bare');
    console.log();
    printTable([...measured.map((r) => r.row), bankMedian, bareMedian]);

    const clean = [...warm, ...measured.map((r) => r.phase)].map(reportFailures).every(Boolean);
    await waitUntilQuiet(bank, nats?.split?.remoteCore);
    const violations = checkInvariants(checked, INVARIANTS);
    console.log(`\ninvariants ${INVARIANTS.join(', ')}: ${violations.length === 0 ? 'hold' : `${violations.length} violations`}`);
    violations.slice(0, 20).forEach((v) => console.error(`  invariant ${v.invariant} (${v.name}): ${v.detail}`));

    const writePaths = measured.flatMap((r) => (r.writePath === null ? [] : [r.writePath]));
    const commitsPerTransfer = sum(writePaths.map((w) => w.commits)) / sum(writePaths.map((w) => w.transfers));
    const syncLagP99Ms = percentile(writePaths.flatMap((w) => w.syncLags.fromCommitMs).sort((a, b) => a - b), 99);
    console.log(
      `transfers/s: ${bankMedian.perSecond.toFixed(0)}; bare hono req/s: ${bareMedian.perSecond.toFixed(0)}; ` +
        `ratio: ${(bankMedian.perSecond / bareMedian.perSecond).toFixed(3)}; p50 ms: ${bankMedian.p50Ms.toFixed(2)}; p99 ms: ${bankMedian.p99Ms.toFixed(2)}; ` +
        `commits per transfer: ${commitsPerTransfer.toFixed(3)}; sync lag p99 ms: ${syncLagP99Ms.toFixed(2)}`,
    );
    return clean && violations.length === 0 ? 0 : 1;
  } finally {
    await load.stop();
    await Promise.all([closeServer(bankServer.server), closeServer(bareServer.server)]);
    bank.close();
    await nats?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
