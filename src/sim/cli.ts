/**
 * `npm run sim -- --seed <n> --seeds <count> --transfers <per seed> [--protocol full|without:S3,S4] [--trace]`:
 * runs seeds one after another; prints one line per violation with the command that replays it.
 */
import { integerOption, parseCli, type CliOptions, quietOnClosedPipe, UsageError } from '../lib/cli.ts';
import { FULL_PROTOCOL, without, type Protocol, type Safeguard } from '../lib/protocol.ts';
import { runSeed, type SimResult } from './simulator.ts';

export const USAGE = `usage: npm run sim -- [--seed N] [--seeds COUNT] [--transfers PER_SEED] [--protocol full|without:S3,S4,...] [--trace] [--fail-fast]

  Runs COUNT seeds (default 1) from seed N (default 1), PER_SEED payments each (default 300),
  under the full protocol or with safeguards switched off. Prints one line per violation with
  the command that replays it; --trace prints every seed's schedule and transitions (the same
  bytes on every run); --fail-fast stops at the first failing seed. Timing goes to stderr.

  exit codes: 0 no violation, 1 a violation was found, 2 a bad argument`;

export const SOAK_USAGE = `usage: npm run sim:soak -- [--seed N] [--seeds COUNT] [--transfers PER_SEED] [--protocol full|without:S3,S4,...]

  Runs COUNT seeds (default 10000) from seed N (default 1), PER_SEED payments each (default
  100), with a progress bar on a terminal, then prints every violation and a summary.

  exit codes: 0 no violation, 1 a violation was found, 2 a bad argument`;
const SAFEGUARDS: readonly Safeguard[] = ['S3', 'S4', 'S5', 'S6', 'S8'];
/** Lines printed per seed and check before the rest are counted instead. */
const LINES_PER_CHECK = 3;

export type SimCli = { seed: number; seeds: number; transfers: number; protocolName: string; protocol: Protocol; trace: boolean; failFast: boolean };

export { UsageError };

export function parseProtocol(raw: string): Protocol {
  if (raw === 'full') return FULL_PROTOCOL;
  const m = /^without:(.+)$/.exec(raw);
  const off = m?.[1]!.split(',') ?? [];
  if (off.length === 0 || off.some((s) => !SAFEGUARDS.includes(s as Safeguard))) {
    throw new UsageError(`--protocol must be "full" or "without:" and a list of ${SAFEGUARDS.join(', ')}, got "${raw}"`);
  }
  return without(...(off as Safeguard[]));
}

/** The sim's options (the soak's are the same, with other defaults): prints the usage and exits on --help or a bad one. */
export function parseSimArgs(argv: string[], tool: 'sim' | 'soak' = 'sim'): SimCli {
  const defaults = tool === 'sim' ? { seeds: 1, transfers: 300 } : { seeds: 10_000, transfers: 100 };
  const options: CliOptions = {
    seed: { type: 'string', default: '1' },
    seeds: { type: 'string', default: String(defaults.seeds) },
    transfers: { type: 'string', default: String(defaults.transfers) },
    protocol: { type: 'string', default: 'full' },
    // The soak has a progress bar and a summary instead of a trace, and always runs every seed.
    ...(tool === 'sim' ? { trace: { type: 'boolean', default: false }, 'fail-fast': { type: 'boolean', default: false } } : {}),
  };
  return parseCli(argv, tool === 'sim' ? USAGE : SOAK_USAGE, options, (values) => ({
    seed: integerOption('seed', String(values.seed), 0, Number.MAX_SAFE_INTEGER - 1_000_000),
    seeds: integerOption('seeds', String(values.seeds), 1, 1_000_000),
    transfers: integerOption('transfers', String(values.transfers), 1, 100_000),
    protocolName: String(values.protocol),
    protocol: parseProtocol(String(values.protocol)),
    trace: values.trace === true,
    failFast: values['fail-fast'] === true,
  }));
}

export function replayCommand(seed: number, transfers: number, protocolName: string): string {
  return `npm run sim -- --seed ${seed} --seeds 1 --transfers ${transfers} --protocol ${protocolName}`;
}

/** One line per violation (the first few of each check on a seed, then a count of the rest). */
export function violationLines(result: SimResult, transfers: number, protocolName: string): string[] {
  const replay = replayCommand(result.seed, transfers, protocolName);
  const lines: string[] = [];
  const byCheck = new Map<string, string[]>();
  for (const v of result.violations) byCheck.set(v.check, [...(byCheck.get(v.check) ?? []), v.detail]);
  for (const [check, details] of byCheck) {
    for (const d of details.slice(0, LINES_PER_CHECK)) lines.push(`violation seed=${result.seed} ${check}: ${d} | replay: ${replay}`);
    if (details.length > LINES_PER_CHECK) lines.push(`violation seed=${result.seed} ${check}: ${details.length - LINES_PER_CHECK} more like these | replay: ${replay}`);
  }
  return lines;
}

async function main(): Promise<void> {
  quietOnClosedPipe();
  const cli = parseSimArgs(process.argv.slice(2));
  const startedAt = performance.now();
  let failing = 0;
  let transfers = 0;
  let ran = 0;
  for (let seed = cli.seed; seed < cli.seed + cli.seeds; seed++) {
    const result = await runSeed({ seed, transfers: cli.transfers, protocol: cli.protocol, trace: cli.trace ? (l) => process.stdout.write(`${l}\n`) : undefined });
    ran++;
    transfers += result.stats.transfers;
    const lines = violationLines(result, cli.transfers, cli.protocolName);
    for (const l of lines) process.stdout.write(`${l}\n`);
    if (lines.length > 0) {
      failing++;
      if (cli.failFast) break;
    }
  }
  const seconds = (performance.now() - startedAt) / 1000;
  // Timing goes to stderr so that stdout (the trace) is the same on every run of a seed.
  console.error(
    `${ran} seeds (${cli.seed}..${cli.seed + ran - 1}), ${transfers} transfers, protocol ${cli.protocolName}: ` +
      `${failing === 0 ? 'no violation' : `${failing} seeds with violations`}; ${seconds.toFixed(1)} s, ${((ran / seconds) * 60).toFixed(0)} seeds/min`,
  );
  process.exitCode = failing === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
