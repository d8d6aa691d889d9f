/**
 * What both servers (src/main.ts, src/core-main.ts) do before they open anything: read the
 * configuration or stop with a message naming the variable, and stop a start with one fatal line.
 */
import { ConfigError, parseConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './lib/logger.ts';

/**
 * Ctrl-C under `npm start` reaches the server twice: from the terminal, and forwarded by npm.
 * The same signal again within this long is that one signal, not a second one.
 */
export const SAME_SIGNAL_MS = 300;

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
