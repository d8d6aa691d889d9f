/**
 * Every input the HTTP API accepts, as zod schemas: bodies, path ids, query strings and
 * headers. Limits are explicit here; nothing past the edge re-validates them.
 */
import { z } from 'zod';
import { MAX_CURSOR_LENGTH } from './cursor.ts';

export const MAX_BODY_BYTES = 16 * 1024;
export const MAX_NAME_LENGTH = 100;
export const MAX_MEMO_LENGTH = 100;
export const MAX_BANK_NAME_LENGTH = 50;
export const MAX_WAIT_SECONDS = 60;
export const DEFAULT_WAIT_SECONDS = 10;
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_FAULT_COUNT = 1000;
export const MAX_FAULT_DELAY_MS = 600_000;

/** A database id in a path or body: a positive integer that fits in a JS number exactly. */
export const idParam = z
  .string()
  .regex(/^[1-9][0-9]{0,14}$/, 'must be a positive integer id')
  .transform(Number);
const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const transferIdParam = z.string().regex(/^tr_[A-Za-z0-9_-]{1,40}$/, 'must be a transfer id');

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
/** Length in characters (code points), as a customer counts them, not UTF-16 units. */
const characters = (s: string) => [...s].length;

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max * 2) // cheap bound first; the exact count in characters follows
    .refine((s) => characters(s) <= max, `must be at most ${max} characters`)
    .refine((s) => !CONTROL_CHARACTERS.test(s), 'must not contain control characters');

const memo = z
  .string()
  .max(MAX_MEMO_LENGTH * 2)
  .refine((s) => characters(s) <= MAX_MEMO_LENGTH, `must be at most ${MAX_MEMO_LENGTH} characters`)
  .refine((s) => !CONTROL_CHARACTERS.test(s), 'must not contain control characters')
  .transform((s) => (s.trim() === '' ? null : s));

export function moneySchemas(maxAmountWon: number) {
  const amount = z.number().int('must be a whole number of won').min(1).max(maxAmountWon);
  const openingBalance = z.number().int('must be a whole number of won').min(0).max(maxAmountWon);
  return {
    newCustomer: z.strictObject({ name: text(MAX_NAME_LENGTH), openingBalance }),
    newAccount: z.strictObject({ openingBalance }),
    deposit: z.strictObject({ accountId: id, amount, fromBank: text(MAX_BANK_NAME_LENGTH), fromName: text(MAX_NAME_LENGTH) }),
    transfer: z
      .strictObject({ fromAccountId: id, toAccountId: id, amount, memo: memo.nullish() })
      .refine((t) => t.fromAccountId !== t.toAccountId, { message: 'must be two different accounts', path: ['toAccountId'] }),
  };
}

export const fault = z
  .strictObject({
    pipe: z.enum(['request', 'response', 'log']),
    action: z.enum(['drop', 'delay', 'duplicate']),
    count: z.number().int().min(1).max(MAX_FAULT_COUNT).default(1),
    delayMs: z.number().int().min(0).max(MAX_FAULT_DELAY_MS).optional(),
    // On the link, a fault hits the transfer protocol's messages unless told otherwise, so that
    // background sync (reconciliation, repair) cannot use up a fault meant for a scenario.
    messages: z.enum(['any', 'transfers', 'sync']).optional(),
  })
  .refine((f) => (f.action === 'delay') === (f.delayMs !== undefined), {
    message: 'delayMs is required for delay and only for delay',
    path: ['delayMs'],
  })
  .refine((f) => f.pipe !== 'log' || f.messages === undefined || f.messages === 'any', {
    message: 'log faults hit every record; messages applies to the request and response pipes',
    path: ['messages'],
  })
  .transform((f) => ({ ...f, messages: f.messages ?? (f.pipe === 'log' ? ('any' as const) : ('transfers' as const)) }));

export const restart = z.strictObject({ side: z.enum(['channel', 'core']) });

/** 1-255 visible ASCII characters. */
export const idempotencyKey = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters');

/** Cursors are checked by their signature in the route; here only their size is bounded. */
const cursorText = z.string().min(1).max(MAX_CURSOR_LENGTH);

export const pageQuery = z
  .strictObject({
    limit: z
      .string()
      .regex(/^[1-9][0-9]{0,2}$/, `must be an integer from 1 to ${MAX_PAGE_SIZE}`)
      .transform(Number)
      .refine((n) => n <= MAX_PAGE_SIZE, `must be an integer from 1 to ${MAX_PAGE_SIZE}`)
      .default(DEFAULT_PAGE_SIZE),
    cursor: cursorText.optional(),
    since: cursorText.optional(),
  })
  .refine((q) => q.cursor === undefined || q.since === undefined, {
    message: 'give cursor (older rows) or since (newer rows), not both',
    path: ['since'],
  });

/** Each issue once, prefixed with where it is (`root` for the value itself, nothing when root is empty). */
export function formatIssues(error: z.ZodError, root = 'body'): string {
  const lines = error.issues.map((i) => {
    const where = i.path.length > 0 ? i.path.join('.') : root;
    return where === '' ? i.message : `${where}: ${i.message}`;
  });
  return [...new Set(lines)].join('; ');
}
