/**
 * What every command-line tool here does the same way: Node's own `parseArgs` for the options,
 * `--help` (usage and exit codes on stdout, exit 0), a bad argument (what was wrong, then the
 * usage, on stderr, exit 2), and a closed pipe (`... | head`) that ends the tool quietly.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes every tool shares; a tool's usage may add its own meaning for 1. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export class UsageError extends Error {
  override name = 'UsageError';
}

export type CliOptions = NonNullable<ParseArgsConfig['options']>;
export type CliValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * Parses `argv` strictly. `--help`/`-h` prints `usage` and exits 0. Unknown options, missing
 * values and a UsageError thrown by `check` print the reason and the usage, and exit 2.
 */
export function parseCli<T>(argv: string[], usage: string, options: CliOptions, check: (values: CliValues) => T): T {
  let values: CliValues;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h', default: false } }, strict: true, allowPositionals: false }));
  } catch (error) {
    usageExit(error instanceof Error ? error.message : String(error), usage);
  }
  if (values.help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(EXIT.ok);
  }
  try {
    return check(values);
  } catch (error) {
    if (error instanceof UsageError) usageExit(error.message, usage);
    throw error;
  }
}

function usageExit(reason: string, usage: string): never {
  process.stderr.write(`${reason}\n\n${usage}\n`);
  process.exit(EXIT.usage);
}

/** `npm run sim -- --trace | head`: the reader went away; stop quietly instead of with an EPIPE trace. */
export function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(EXIT.ok);
      throw error;
    });
  }
}

/** An integer option from `min` to `max`, or a UsageError naming it. */
export function integerOption(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return Number(raw);
}
