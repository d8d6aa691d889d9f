/**
 * What both servers (src/main.ts, src/core-main.ts) do before they open anything: read the
 * configuration or stop with a message naming the variable, stop a start with one fatal line,
 * and take the stop signals.
 */
import { ConfigError, parseConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './lib/logger.ts';

/**
 * Ctrl-C under `npm start` reaches the server twice: from the terminal, and forwarded by npm.
 * The same signal again within this long is that one signal, not a second one.
 */
export const SAME_SIGNAL_MS = 300;

/** The first stop signal, and the one stop it runs (at once, or when `onStop` is given, if it came during the start). */
export type StopSignals = {
  readonly first: NodeJS.Signals | null;
  onStop(stop: () => void): void;
};

/**
 * Installs the SIGTERM and SIGINT handlers, first thing: a signal with none would end the process
 * the instant it arrives. The first runs the stop (once there is one); the same signal again
 * within SAME_SIGNAL_MS is that one; any other exits at once (130 or 143).
 */
export function takeStopSignals(logger: Logger): StopSignals {
  let first: { signal: NodeJS.Signals; at: number } | null = null;
  let stop: (() => void) | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (first !== null) {
      if (first.signal === signal && performance.now() - first.at < SAME_SIGNAL_MS) return;
      logger.warn({ signal }, 'a second stop signal: exiting at once');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    first = { signal, at: performance.now() };
    stop?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get first() {
      return first?.signal ?? null;
    },
    onStop(s) {
      stop = s;
      // A signal that came while the server was starting stops it now that it is up.
      if (first !== null) s();
    },
  };
}

/** Stops the start: nothing after this line runs. */
export function refuse(logger: Logger, message: string, code: number): never {
  logger.fatal(message);
  process.exit(code);
}

/** The configuration from the environment; a bad value stops the start (exit 2). */
export function configOrExit(env: Record<string, string | undefined>): Config {
  try {
    return parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) refuse(createLogger({ level: 'info', pretty: process.stdout.isTTY }), error.message, 2);
    throw error;
  }
}
