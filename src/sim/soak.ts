/**
 * `npm run sim:soak`: thousands of seeds (10,000 by default) under one protocol, with a
 * progress bar and a summary: what ran, what the faults did, and every violation found.
 */
import cliProgress from 'cli-progress';
import { quietOnClosedPipe } from '../lib/cli.ts';
import { parseSimArgs, violationLines } from './cli.ts';
import { emptyStats, runSeed, type SimStats } from './simulator.ts';

async function main(): Promise<void> {
  quietOnClosedPipe();
  const cli = parseSimArgs(process.argv.slice(2), 'soak');
  const bar = new cliProgress.SingleBar(
    { format: 'soak [{bar}] {percentage}% | {value}/{total} seeds | {failing} failing | ETA {eta_formatted}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const { virtualMs: _virtual, ...totals }: SimStats = emptyStats();
  const failures: string[] = [];
  const failingSeeds: number[] = [];
  const startedAt = performance.now();
  bar.start(cli.seeds, 0, { failing: 0 });
  for (let i = 0; i < cli.seeds; i++) {
    const result = await runSeed({ seed: cli.seed + i, transfers: cli.transfers, protocol: cli.protocol });
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += result.stats[k];
    const lines = violationLines(result, cli.transfers, cli.protocolName);
    if (lines.length > 0) {
      failingSeeds.push(result.seed);
      failures.push(...lines);
    }
    bar.update(i + 1, { failing: failingSeeds.length });
  }
  bar.stop();
  const seconds = (performance.now() - startedAt) / 1000;
  for (const l of failures) console.log(l);
  console.log(
    `soak: ${cli.seeds} seeds from ${cli.seed}, ${cli.transfers} transfers each, protocol ${cli.protocolName}: ` +
      `${failingSeeds.length === 0 ? 'no violation' : `${failingSeeds.length} failing seeds (first ${failingSeeds[0]})`}`,
  );
  console.log(`  ${Object.entries(totals).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  console.log(`  ${seconds.toFixed(0)} s, ${((cli.seeds / seconds) * 60).toFixed(0)} seeds/min`);
  process.exitCode = failingSeeds.length === 0 ? 0 : 1;
}

void main();
