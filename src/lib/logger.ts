/**
 * The bank's log: pino, JSON lines on stdout (one object per line, for a log shipper), or
 * pino-pretty's readable lines when stdout is a terminal. Secrets never reach a line: nothing
 * logs a token on purpose, and fields named like one are censored in case something does.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Field paths whose value is replaced by REDACTED wherever a line carries them. */
export const REDACTED_PATHS = [
  'token',
  'adminToken',
  'authorization',
  'cookie',
  '*.token',
  '*.adminToken',
  '*.authorization',
  '*.cookie',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];
export const REDACTED = '[redacted]';

export type LoggerOptions = {
  level: LogLevel;
  /** Readable lines for a person at a terminal, instead of JSON. */
  pretty?: boolean;
  /** Where the lines go (stdout by default); tests capture them here. */
  destination?: DestinationStream;
};

export function createLogger(options: LoggerOptions): Logger {
  const settings = {
    level: options.level,
    base: { service: 'scrollbank' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: REDACTED },
  };
  if (options.pretty === true) {
    // Synchronous, so that the last lines before an exit are not lost in a worker's buffer.
    return pino(settings, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', destination: options.destination }));
  }
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** Writes nothing: what the tests, the simulator and the benchmarks use unless asked. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** `LOG_LEVEL` for the tests (quiet unless asked: `TEST_LOG_LEVEL=debug npm test`). */
export function testLogger(): Logger {
  const level = process.env['TEST_LOG_LEVEL'];
  return level !== undefined && (LOG_LEVELS as readonly string[]).includes(level) ? createLogger({ level: level as LogLevel }) : silentLogger;
}
