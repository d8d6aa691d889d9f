/**
 * The deterministic simulator over the whole bank: the full protocol survives hundreds of
 * fault schedules from a fixed seed and twenty from a random one, and a seed replays exactly.
 */
import { randomInt } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FULL_PROTOCOL } from '../../src/lib/protocol.ts';
import { violationLines } from '../../src/sim/cli.ts';
import { runSeed } from '../../src/sim/simulator.ts';

async function sweep(firstSeed: number, seeds: number, transfers: number): Promise<{ lines: string[]; transfers: number }> {
  const lines: string[] = [];
  let made = 0;
  for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
    const result = await runSeed({ seed, transfers, protocol: FULL_PROTOCOL });
    made += result.stats.transfers;
    lines.push(...violationLines(result, transfers, 'full'));
  }
  return { lines, transfers: made };
}

test('the full protocol breaks no invariant over 200 seeds of 200 transfers each, from seed 1', async () => {
  const { lines, transfers } = await sweep(1, 200, 200);
  assert.equal(lines, [], lines.join('\n'));
  assert.ok(transfers > 200 * 150, `the workload made ${transfers} transfers`);
});

test('the full protocol breaks no invariant over 20 seeds from a random first seed', async () => {
  const first = randomInt(1_000_000, 1_000_000_000);
  console.log(`  random first seed ${first}: replay with npm run sim -- --seed ${first} --seeds 20 --transfers 200`);
  const { lines } = await sweep(first, 20, 200);
  assert.equal(lines, [], lines.join('\n'));
});

test('the same seed produces the same trace, line for line, and the same outcome', async () => {
  const traceOf = async (seed: number) => {
    const lines: string[] = [];
    const result = await runSeed({ seed, transfers: 60, protocol: FULL_PROTOCOL, trace: (l) => lines.push(l) });
    return { lines, stats: result.stats };
  };
  const a = await traceOf(7);
  const b = await traceOf(7);
  assert.ok(a.lines.length > 200, `a trace of ${a.lines.length} lines`);
  assert.equal(a.lines, b.lines);
  assert.equal(a.stats, b.stats);
  assert.not.equal((await traceOf(8)).lines, a.lines, 'another seed is another run');
});

test('a run exercises what it claims: crashes, redeliveries, retries, refusals, deposits and scrolling, by the store and over HTTP', async () => {
  const totals = { crashes: 0, redeliveries: 0, retries: 0, replays: 0, inFlightRefusals: 0, deposits: 0, pagesRead: 0, httpPages: 0, failed: 0, succeeded: 0 };
  for (let seed = 1; seed <= 10; seed++) {
    const { stats } = await runSeed({ seed, transfers: 200, protocol: FULL_PROTOCOL });
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += stats[k];
  }
  for (const [k, n] of Object.entries(totals)) assert.ok(n > 0, `${k}: ${n}`);
});

test('crashes land between a batch\'s commit and its effects, on both sides, and nothing breaks', async () => {
  const crashes = { channel: 0, core: 0 };
  let seeds = 0;
  for (let seed = 1; seed <= 60 && (crashes.channel === 0 || crashes.core === 0); seed++, seeds++) {
    const lines: string[] = [];
    const result = await runSeed({ seed, transfers: 100, protocol: FULL_PROTOCOL, trace: (l) => lines.push(l) });
    assert.equal(violationLines(result, 100, 'full'), []);
    for (const side of ['channel', 'core'] as const) crashes[side] += lines.filter((l) => l.includes(`${side} crashes after a commit, before its effects leave`)).length;
  }
  assert.ok(crashes.channel > 0 && crashes.core > 0, `${JSON.stringify(crashes)} over ${seeds} seeds`);
});

test('both orders happen: some transfers are settled by the link\'s answer (the sender\'s posting applied from it), others by the log', async () => {
  const by = { response: 0, log: 0, query: 0 };
  for (let seed = 1; seed <= 10; seed++) {
    const { stats } = await runSeed({ seed, transfers: 200, protocol: FULL_PROTOCOL });
    by.response += stats.executedByResponse;
    by.log += stats.executedByLog;
    by.query += stats.executedByQuery;
  }
  const all = by.response + by.log + by.query;
  // Neither path is a rarity: each settles at least a fifth of the succeeded transfers.
  assert.ok(by.response > all / 5, `EXECUTED (response): ${by.response} of ${all}`);
  assert.ok(by.log > all / 5, `EXECUTED (log): ${by.log} of ${all}`);
  assert.ok(by.query > 0, `EXECUTED (query): ${by.query} of ${all}`);
});

test.run();
