/**
 * `npm run bench:history`: an account a million rows deep, paged by keyset at the store, by
 * OFFSET for contrast, and over HTTP through the real Hono app next to a bare Hono route.
 * Everything is measured in the same run; the last line carries the three ratios.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { integerOption, parseCli, quietOnClosedPipe } from '../src/lib/cli.ts';
import type { ServerType } from '@hono/node-server';
import { listen } from './loopback.ts';
import cliProgress from 'cli-progress';
import { Hono } from 'hono';
import { createBank } from '../src/bank.ts';
import { createSystemClock } from '../src/lib/clock.ts';
import { cryptoRandom, randomToken } from '../src/lib/ids.ts';
import type { Posting } from '../src/net/messages.ts';
import { createApp, CURSOR_KEY_FILE } from '../src/server/app.ts';
import { createCursorCodec } from '../src/server/cursor.ts';
import { loadOrCreateSecretKey } from '../src/lib/secret-key.ts';
import { historyItemJson } from '../src/server/serialize.ts';

const PAGE = 20;
const DEPTH = 1_000_000;
const BUILD_BATCH = 50_000;
const WARMUP_CALLS = 200;

type Options = { rows: number; calls: number; offsetCalls: number; httpCalls: number };

const USAGE = `usage: npm run bench:history -- [--calls N] [--offset-calls N] [--http-calls N]

  Builds an account ${DEPTH.toLocaleString('en')} rows deep, then pages it N times by keyset at the store
  (--calls, default 2000), by OFFSET for contrast (--offset-calls, default 1000), and over HTTP
  through the real app next to a bare Hono route (--http-calls, default 2000), at the top and a
  million rows down. Progress goes to stderr; the last line carries the three ratios.

  exit codes: 0 done, 1 the run failed, 2 a bad argument`;

function parseOptions(argv: string[]): Options {
  const options = { calls: { type: 'string', default: '2000' }, 'offset-calls': { type: 'string', default: '1000' }, 'http-calls': { type: 'string', default: '2000' } } as const;
  return parseCli(argv, USAGE, options, (values) => {
    const n = (name: string) => integerOption(name, String(values[name]), 1, 1_000_000);
    // Enough rows for a full page that starts a million rows below the newest.
    return { rows: DEPTH + 2 * PAGE, calls: n('calls'), offsetCalls: n('offset-calls'), httpCalls: n('http-calls') };
  });
}

type Stats = { label: string; calls: number; p50Ms: number; p99Ms: number };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

function stats(label: string, samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return { label, calls: samples.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

function timeSync(label: string, calls: number, fn: () => unknown): Stats {
  for (let i = 0; i < Math.min(WARMUP_CALLS, calls); i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  return stats(label, samples);
}

async function timeAsync(label: string, calls: number, fn: () => Promise<unknown>): Promise<Stats> {
  for (let i = 0; i < Math.min(WARMUP_CALLS, calls); i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return stats(label, samples);
}

async function timeInterleaved(a: [string, () => Promise<unknown>], b: [string, () => Promise<unknown>], calls: number): Promise<[Stats, Stats]> {
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < WARMUP_CALLS + calls; i++) {
    for (const [k, [, fn]] of [a, b].entries()) {
      const t = performance.now();
      await fn();
      if (i >= WARMUP_CALLS) samples[k]!.push(performance.now() - t);
    }
  }
  return [stats(a[0], samples[0]), stats(b[0], samples[1])];
}

/** One GET over a keep-alive connection; resolves with the body after checking the status. */
function fetchJson(agent: Agent, port: number, path: string, token: string | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    get({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`GET ${path} answered ${res.statusCode}: ${body.slice(0, 200)}`));
        else resolve(body);
      });
    }).on('error', reject);
  });
}

/** Writes `rows` postings to the channel's copy through its real apply path, in batched transactions. */
function buildHistory(bank: ReturnType<typeof createBank>, accountId: number, rows: number): number {
  const store = bank.channel.readModel();
  const bar = new cliProgress.SingleBar({ format: 'building history |{bar}| {percentage}% {value}/{total} rows {eta}s left', hideCursor: true }, cliProgress.Presets.shades_classic);
  const started = performance.now();
  bar.start(rows, 0);
  let balance = 0;
  const start = store.account(accountId)!.lastSeq + 1;
  const applyBatch = store.db.transaction((from: number, to: number) => {
    for (let seq = from; seq <= to; seq++) {
      const amountWon = seq % 7 === 0 ? -(seq % 1000) - 1 : (seq % 5_000) + 1;
      balance = Math.max(0, balance + amountWon);
      const p: Posting = { accountId, seq, amountWon, balanceAfterWon: balance, kind: amountWon > 0 ? 'deposit' : 'transfer-out', counterparty: 'Park (Shinhan)', memo: seq % 3 === 0 ? 'lunch' : null, transferId: null, occurredAt: 1_767_225_600_000 + seq * 1000 };
      if (store.applyPosting(p) !== 'applied') throw new Error(`posting ${seq} did not apply`);
    }
  });
  for (let from = start; from < start + rows; from += BUILD_BATCH) {
    const to = Math.min(start + rows - 1, from + BUILD_BATCH - 1);
    applyBatch(from, to);
    bar.update(to - start + 1);
  }
  bar.stop();
  return (performance.now() - started) / 1000;
}

function printTable(rows: Stats[]): void {
  const header = ['measure', 'calls', 'p50 ms', 'p99 ms'];
  const cells = rows.map((r) => [r.label, String(r.calls), r.p50Ms.toFixed(4), r.p99Ms.toFixed(4)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  cells.forEach((c) => console.log(line(c)));
}

async function main(): Promise<void> {
  quietOnClosedPipe();
  const o = parseOptions(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-bench-history-'));
  const clock = createSystemClock();
  // Reconciliation off: the rows are written straight into the channel's copy, which the core never saw.
  const bank = createBank({ dataDir, coreClock: clock, channelClock: clock, random: cryptoRandom, settings: { reconcileIntervalMs: 0 } });
  bank.start();
  const servers: ServerType[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const bareAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    console.log(`bench:history  node ${process.version}, ${availableParallelism()} cores, synchronous=FULL, ${o.rows} rows, page ${PAGE}`);
    const { token, accountId } = bank.openCustomer('Deep Scroller', 0);
    const seconds = buildHistory(bank, accountId, o.rows);
    console.log(`built ${o.rows} rows in ${seconds.toFixed(1)} s (${Math.round(o.rows / seconds)} rows/s)`);

    const store = bank.channel.readModel();
    const newest = store.account(accountId)!.lastSeq;
    const deepBefore = newest - DEPTH + 1; // the page holds the rows DEPTH below the newest
    // The query the route serves pages with, and the same rows by OFFSET for contrast.
    const offsetPage = store.db.prepare('SELECT seq, item_json FROM history WHERE account_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?').raw();
    const first = store.pageItemsBefore(accountId, Number.MAX_SAFE_INTEGER, PAGE);
    const deep = store.pageItemsBefore(accountId, deepBefore, PAGE);
    const viaOffset = offsetPage.all(accountId, PAGE, DEPTH) as [number, string][];
    if (first.length !== PAGE || deep.length !== PAGE || deep[0]![0] !== newest - DEPTH || viaOffset[0]![0] !== deep[0]![0]) {
      throw new Error('the pages measured are not the pages meant');
    }

    const results: Stats[] = [];
    results.push(timeSync('store: first page (keyset)', o.calls, () => store.pageItemsBefore(accountId, Number.MAX_SAFE_INTEGER, PAGE)));
    results.push(timeSync(`store: ${DEPTH} rows deep (keyset)`, o.calls, () => store.pageItemsBefore(accountId, deepBefore, PAGE)));
    results.push(timeSync('store: first page (OFFSET 0)', o.calls, () => offsetPage.all(accountId, PAGE, 0)));
    results.push(timeSync(`store: ${DEPTH} rows deep (OFFSET)`, o.offsetCalls, () => offsetPage.all(accountId, PAGE, DEPTH)));

    const app = createApp({ bank, adminToken: randomToken(cryptoRandom) });
    const cursors = createCursorCodec(loadOrCreateSecretKey(join(dataDir, CURSOR_KEY_FILE), cryptoRandom));
    const deepRows = store.pageHistoryBefore(accountId, deepBefore, PAGE);
    // The bare route is a plain Hono JSON route: c.json of a fixed page object, the same page.
    const fixedPage = { items: deepRows.map(historyItemJson), nextCursor: cursors.encode(accountId, deepRows[PAGE - 1]!.seq), headCursor: cursors.encode(accountId, deepRows[0]!.seq) };
    const bare = new Hono();
    bare.get('/page', (c) => c.json(fixedPage));
    const bankServer = await listen(app.fetch);
    const bareServer = await listen(bare.fetch);
    servers.push(bankServer.server, bareServer.server);
    const deepPath = `/accounts/${accountId}/transactions?limit=${PAGE}&cursor=${encodeURIComponent(cursors.encode(accountId, deepBefore))}`;
    const sample = JSON.parse(await fetchJson(agent, bankServer.port, deepPath, token)) as { items: { seq: number }[] };
    if (sample.items.length !== PAGE || sample.items[0]!.seq !== deep[0]![0]) throw new Error('the HTTP page is not the deep page');
    if (JSON.stringify(sample) !== JSON.stringify(fixedPage)) throw new Error('the bare route does not serve the same page');

    // Interleaved, one call of each in turn, so that whatever else the machine does falls on both alike.
    const [httpPaging, httpBare] = await timeInterleaved(
      [`http: scrollbank page ${DEPTH} rows deep`, () => fetchJson(agent, bankServer.port, deepPath, token)],
      [`http: bare Hono fixed page of ${PAGE}`, () => fetchJson(bareAgent, bareServer.port, '/page', null)],
      o.httpCalls,
    );
    results.push(httpPaging, httpBare);

    console.log();
    printTable(results);
    const [firstKeyset, deepKeyset, firstOffset, deepOffset] = results as [Stats, Stats, Stats, Stats];
    const x = deepKeyset.p50Ms / firstKeyset.p50Ms;
    const y = deepOffset.p50Ms / firstOffset.p50Ms;
    const z = httpBare.p50Ms / httpPaging.p50Ms;
    console.log();
    console.log(`targets: keyset deep/first <= 1.5 (${x <= 1.5 ? 'met' : 'MISSED'}); first page p50 < 0.3 ms (${firstKeyset.p50Ms < 0.3 ? 'met' : 'MISSED'}); http paging/bare >= 0.5, as bare p50 / paging p50 (${z >= 0.5 ? 'met' : 'MISSED'})`);
    console.log(`keyset deep/first p50 ratio: ${x.toFixed(2)}; offset deep/first p50 ratio: ${y.toFixed(2)}; http paging/bare hono ratio: ${z.toFixed(2)}`);
  } finally {
    agent.destroy();
    bareAgent.destroy();
    for (const s of servers) s.close();
    bank.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
