/**
 * `npm run bench:transfers`: POST /transfers over real loopback sockets against a durable
 * bank (synchronous=FULL), many customers in parallel, next to a bare Hono JSON POST route
 * measured the same way in the same run. Prints req/s, p50/p99 and their ratio.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { createBank, type Bank } from '../src/bank.ts';
import { CONSUMER_NAME } from '../src/channel/log-consumer.ts';
import { createSystemClock } from '../src/lib/clock.ts';
import { cryptoRandom, randomToken } from '../src/lib/ids.ts';
import type { Synchronous } from '../src/lib/sqlite.ts';
import { createApp } from '../src/server/app.ts';
import { checkInvariants, type InvariantId } from '../src/sim/invariants.ts';
import { runLoad, startLoadWorker, type LoadResult, type LoadSpec, type RequestShape } from './http-load.ts';

const INVARIANTS: InvariantId[] = [1, 2, 3, 5, 6, 7];
const OPENING_BALANCE_WON = 1_000_000;
const AMOUNT_WON = 1;
/** The whole run stops here whatever happens: a benchmark must never hang. */
const WATCHDOG_MS = 110_000;
const QUIET_WAIT_MS = 5_000;
const WARMUP_TIME_LIMIT_MS = 10_000;

type Options = {
  customers: number;
  concurrency: number;
  requests: number;
  warmup: number;
  timeLimitMs: number;
  synchronous: Synchronous;
  inlineClient: boolean;
  client: LoadSpec['client'];
};

const USAGE = `usage: npm run bench:transfers -- [--customers N] [--concurrency C] [--requests R] [--warmup W]
       [--time-limit SECONDS] [--synchronous FULL|NORMAL|OFF] [--client http|fetch] [--inline-client]`;

function wholeNumber(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`--${name} must be an integer from 0 to ${max}, got ${value}\n${USAGE}`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      customers: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '64' },
      requests: { type: 'string', default: '5000' },
      warmup: { type: 'string', default: '300' },
      'time-limit': { type: 'string', default: '30' },
      synchronous: { type: 'string', default: 'FULL' },
      'inline-client': { type: 'boolean', default: false },
      client: { type: 'string', default: 'http' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const synchronous = values.synchronous.toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL' && synchronous !== 'OFF') throw new Error(`--synchronous must be FULL, NORMAL or OFF\n${USAGE}`);
  const client = values.client;
  if (client !== 'http' && client !== 'fetch') throw new Error(`--client must be http or fetch\n${USAGE}`);
  const o: Options = {
    customers: wholeNumber('customers', values.customers, 10_000),
    concurrency: wholeNumber('concurrency', values.concurrency, 1_000),
    requests: wholeNumber('requests', values.requests, 1_000_000),
    warmup: wholeNumber('warmup', values.warmup, 100_000),
    timeLimitMs: wholeNumber('time-limit', values['time-limit'], 100) * 1000,
    synchronous,
    inlineClient: values['inline-client'],
    client,
  };
  // An account holds at most one unfinished transfer: each client in flight needs its own senders.
  if (o.concurrency < 1 || o.customers < o.concurrency) throw new Error(`need 1 <= --concurrency <= --customers\n${USAGE}`);
  return o;
}

function listen(fetch: (request: Request) => Response | Promise<Response>): Promise<{ server: ServerType; url: string }> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server, url: `http://127.0.0.1:${info.port}` }));
  });
}

function closeServer(server: ServerType): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

type Opened = { token: string; accountId: number };

/** Opens customers through the admin API, as an operator would. */
async function openCustomers(url: string, adminToken: string, count: number): Promise<Opened[]> {
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

type Phase = LoadResult & { serverLoopBusy: number };
type Row = { label: string; requests: number; seconds: number; perSecond: number; p50Ms: number; p99Ms: number; serverBusy: number; clientBusy: number; note: string };

function summarize(r: Phase): Row {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  const seconds = r.elapsedMs / 1000;
  return {
    label: r.label,
    requests: r.completed,
    seconds,
    perSecond: r.completed / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    serverBusy: r.serverLoopBusy,
    clientBusy: r.clientLoopBusy,
    note: r.timeCapHit ? 'time cap hit' : '',
  };
}

function printTable(rows: Row[]): void {
  const header = ['', 'requests', 'seconds', 'req/s', 'p50 ms', 'p99 ms', 'server loop busy', 'client loop busy', ''];
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const cells = rows.map((r) => [
    r.label,
    String(r.requests),
    r.seconds.toFixed(2),
    r.perSecond.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    pct(r.serverBusy),
    pct(r.clientBusy),
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
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

/** After the last answer the event log may still be on its way to the channel's history. */
async function waitUntilQuiet(bank: Bank): Promise<void> {
  const giveUpAt = Date.now() + QUIET_WAIT_MS;
  const caughtUp = () => bank.channel.readModel().consumerOffset(CONSUMER_NAME) >= bank.log.endOffset() && bank.channel.unfinishedCount() === 0;
  while (!caughtUp() && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, 10));
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-bench-'));
  const watchdog = setTimeout(() => {
    console.error(`bench:transfers did not finish within ${WATCHDOG_MS / 1000} s; giving up`);
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();

  const clock = createSystemClock();
  const bank = createBank({ dataDir, coreClock: clock, channelClock: clock, random: cryptoRandom, synchronous: o.synchronous });
  bank.start();
  const adminToken = randomToken(cryptoRandom);
  const bankServer = await listen(createApp({ bank, adminToken }).fetch);
  const bare = new Hono();
  bare.post('/echo', async (c) => c.json(await c.req.json(), 201));
  const bareServer = await listen(bare.fetch);
  const load = o.inlineClient ? { run: runLoad, stop: async () => 0 } : startLoadWorker();

  try {
    console.log(
      `bench:transfers  node ${process.version}, ${availableParallelism()} cores, synchronous=${o.synchronous}, ` +
        `${o.customers} customers, concurrency ${o.concurrency}, ${o.requests} requests after ${o.warmup} warm-up, ` +
        `${o.client} client on ${o.inlineClient ? 'the server thread' : 'a worker thread'}, loopback`,
    );
    const setupStarted = performance.now();
    const customers = await openCustomers(bankServer.url, adminToken, o.customers);
    console.log(`opened ${customers.length} customers over HTTP in ${((performance.now() - setupStarted) / 1000).toFixed(2)} s`);

    const phase = async (label: string, url: string, requests: number, clients: RequestShape[][], expect: LoadSpec['expect']): Promise<Phase> => {
      const elu = performance.eventLoopUtilization();
      const timeLimitMs = label.startsWith('warm-up') ? Math.min(o.timeLimitMs, WARMUP_TIME_LIMIT_MS) : o.timeLimitMs;
      const result = await load.run({ label, url, requests, timeLimitMs, clients, expect, client: o.client });
      return { ...result, serverLoopBusy: performance.eventLoopUtilization(elu).utilization };
    };
    const transfers = transferClients(customers, o.concurrency);
    const echoes = echoClients(o.concurrency);

    const warm = [
      await phase('warm-up bare', `${bareServer.url}/echo`, o.warmup, echoes, 'echo'),
      await phase('warm-up transfers', `${bankServer.url}/transfers`, o.warmup, transfers, 'transfer'),
    ];
    const bareRun = await phase('bare Hono POST /echo', `${bareServer.url}/echo`, o.requests, echoes, 'echo');
    const bankRun = await phase('scrollbank POST /transfers', `${bankServer.url}/transfers`, o.requests, transfers, 'transfer');

    const rows = [summarize(bankRun), summarize(bareRun)];
    console.log();
    printTable(rows);
    const [bankRow, bareRow] = rows as [Row, Row];
    console.log(`\ntransfers/s: ${bankRow.perSecond.toFixed(0)}; bare hono req/s: ${bareRow.perSecond.toFixed(0)}; ratio: ${(bankRow.perSecond / bareRow.perSecond).toFixed(4)}`);

    const clean = [...warm, bareRun, bankRun].map(reportFailures).every(Boolean);
    await waitUntilQuiet(bank);
    const violations = checkInvariants(bank, INVARIANTS);
    console.log(`invariants ${INVARIANTS.join(', ')}: ${violations.length === 0 ? 'hold' : `${violations.length} violations`}`);
    violations.slice(0, 20).forEach((v) => console.error(`  invariant ${v.invariant} (${v.name}): ${v.detail}`));
    return clean && violations.length === 0 ? 0 : 1;
  } finally {
    await load.stop();
    await Promise.all([closeServer(bankServer.server), closeServer(bareServer.server)]);
    bank.close();
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
