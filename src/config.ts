/**
 * The configuration, parsed once from an environment map and validated. Only src/main.ts
 * hands it process.env; a bad value stops the start with a message naming the variable.
 */
import { z } from 'zod';
import type { BankSettings } from './bank.ts';
import { LOG_LEVELS, type LogLevel } from './lib/logger.ts';
import { DEFAULT_JETSTREAM_SETTINGS, type JetStreamLogSettings } from './net/jetstream-log.ts';

const integer = (name: string, min: number, max: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return fallback;
      if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be an integer from ${min} to ${max}, got "${raw}"` });
        return z.NEVER;
      }
      return Number(raw);
    });

const schema = z.object({
  PORT: integer('PORT', 0, 65535, 3000),
  HOST: z
    .string()
    .regex(/^[A-Za-z0-9.:-]{1,253}$/, 'HOST must be a host name or an IP address, such as 127.0.0.1')
    .optional(),
  DATA_DIR: z.string().min(1, 'DATA_DIR must not be empty').default('./data'),
  ADMIN_TOKEN: z
    .string()
    .regex(/^[\x21-\x7e]{16,200}$/, 'ADMIN_TOKEN must be 16-200 visible ASCII characters')
    .optional(),
  CUTOFF_MS: integer('CUTOFF_MS', 1_000, 86_400_000, 60_000),
  RESPONSE_TIMEOUT_MS: integer('RESPONSE_TIMEOUT_MS', 10, 600_000, 3_000),
  MAX_AMOUNT_WON: integer('MAX_AMOUNT_WON', 1, 1_000_000_000_000, 1_000_000_000),
  RECONCILE_MS: integer('RECONCILE_MS', 0, 86_400_000, 60_000),
  INSPECT: z
    .enum(['0', '1', ''], { message: 'INSPECT must be 1 (on) or 0 (off)' })
    .optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  EVENT_LOG: z
    .string()
    .regex(/^nats:\/\/[A-Za-z0-9.:\[\]-]{1,253}(,nats:\/\/[A-Za-z0-9.:\[\]-]{1,253}){0,8}$/, 'EVENT_LOG must be nats://host:port (or several, comma-separated); unset, the log is the embedded one')
    .optional(),
  EVENT_LOG_STREAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'EVENT_LOG_STREAM must be 1-64 letters, digits, _ or -')
    .default('SCROLLBANK'),
  EVENT_LOG_MAX_AGE_S: integer('EVENT_LOG_MAX_AGE_S', 0, 365 * 86_400, 7 * 86_400),
});

/** In DATA_DIR: the admin token when ADMIN_TOKEN is unset, made on first start, readable only by its owner. */
export const ADMIN_TOKEN_FILE = 'admin.token';
/** In DATA_DIR: the demo customers' tokens, written once on first start (the bank stores only hashes). */
export const DEMO_TOKENS_FILE = 'demo-tokens.txt';

export type Config = {
  /** 0: any free port (the listening line says which). */
  port: number;
  /** The address to listen on; null: every interface. */
  host: string | null;
  dataDir: string;
  adminToken: string | null;
  cutoffMs: number;
  responseTimeoutMs: number;
  maxAmountWon: number;
  /** How often the channel reconciles its history copy with the core; 0: only on POST /admin/reconcile. */
  reconcileMs: number;
  /** Report every transfer actor's transitions to Stately's inspector (needs internet). */
  inspect: boolean;
  logLevel: LogLevel;
  /** The event log on NATS JetStream; null: the embedded one in DATA_DIR/log.db. */
  eventLog: { url: string; stream: string; maxAgeMs: number } | null;
};

/** The bank's settings the configuration sets (the rest are DEFAULT_SETTINGS). */
export function bankSettingsOf(config: Config): Partial<BankSettings> {
  return { cutoffMs: config.cutoffMs, responseTimeoutMs: config.responseTimeoutMs, queryTimeoutMs: config.responseTimeoutMs, maxAmountWon: config.maxAmountWon, reconcileIntervalMs: config.reconcileMs };
}

/** The JetStream log's settings, when EVENT_LOG is set: the subjects start with the stream's name in lower case. */
export function jetstreamSettingsOf(eventLog: NonNullable<Config['eventLog']>): JetStreamLogSettings {
  return { ...DEFAULT_JETSTREAM_SETTINGS, url: eventLog.url, stream: eventLog.stream, subjectPrefix: eventLog.stream.toLowerCase(), maxAgeMs: eventLog.maxAgeMs };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => (i.path.length > 0 && !i.message.startsWith(String(i.path[0])) ? `${String(i.path[0])}: ${i.message}` : i.message));
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = parsed.data;
  if (c.RESPONSE_TIMEOUT_MS >= c.CUTOFF_MS) {
    throw new ConfigError(`invalid configuration:\n  RESPONSE_TIMEOUT_MS (${c.RESPONSE_TIMEOUT_MS}) must be below CUTOFF_MS (${c.CUTOFF_MS})`);
  }
  return {
    port: c.PORT,
    host: c.HOST ?? null,
    dataDir: c.DATA_DIR,
    adminToken: c.ADMIN_TOKEN ?? null,
    cutoffMs: c.CUTOFF_MS,
    responseTimeoutMs: c.RESPONSE_TIMEOUT_MS,
    maxAmountWon: c.MAX_AMOUNT_WON,
    reconcileMs: c.RECONCILE_MS,
    inspect: c.INSPECT === '1',
    logLevel: c.LOG_LEVEL,
    eventLog: c.EVENT_LOG === undefined || c.EVENT_LOG === '' ? null : { url: c.EVENT_LOG, stream: c.EVENT_LOG_STREAM, maxAgeMs: c.EVENT_LOG_MAX_AGE_S * 1000 },
  };
}
