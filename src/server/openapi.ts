/**
 * The API described by the code itself: every route registered on the app's OpenAPI registry
 * (@hono/zod-openapi) with the very zod schemas that validate its requests (src/server/
 * schemas.ts), the answers it can give and their schemas, and the security each needs.
 * GET /openapi.json serves the document; the tests lint it and hold every real answer to it.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import type { AppEnv } from './env.ts';
import { MAX_CURSOR_LENGTH } from './cursor.ts';
import { fault, idempotencyKey, idParam, moneySchemas, pageQuery, restart, transferIdParam } from './schemas.ts';

export const OPENAPI_VERSION = '3.1.0';

const STATES = ['requested', 'sent', 'timedOut', 'querying', 'succeeded', 'failed'] as const;
const iso = z.iso.datetime();

// ---------------------------------------------------------------------------------------
// What the API answers, as schemas (src/server/serialize.ts makes these shapes)

export const problemSchema = z
  .looseObject({ type: z.string(), title: z.string(), status: z.number().int(), detail: z.string().min(1) })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details; some carry named extras' });
const inFlightProblem = problemSchema.extend({ inFlightTransferId: z.string() }).meta({ id: 'TransferInFlight' });
const keyReusedProblem = problemSchema.extend({ transferId: z.string() }).meta({ id: 'IdempotencyKeyReused' });

const money = z.number().int();
const accountJson = z.strictObject({ id: z.number().int(), balance: money }).meta({ id: 'Account' });
const customerJson = z.strictObject({ id: z.number().int(), name: z.string() }).meta({ id: 'Customer' });

export const transferSchema = z
  .strictObject({
    id: z.string(),
    fromAccountId: z.number().int(),
    toAccountId: z.number().int(),
    amount: money,
    memo: z.string().nullable(),
    state: z.enum(STATES),
    reason: z.string().nullable(),
    requestedAt: iso,
    settledAt: iso.nullable(),
    journal: z.array(z.strictObject({ at: iso, event: z.string(), from: z.enum(STATES).nullable(), to: z.enum(STATES) })),
    audit: z.array(z.strictObject({ at: iso, event: z.literal('late-request-refused'), reason: z.enum(['fenced', 'already-decided']) })),
  })
  .meta({ id: 'Transfer' });

const historyItem = z
  .strictObject({
    seq: z.number().int().min(1),
    amount: money,
    balanceAfter: money,
    kind: z.enum(['opening', 'deposit', 'transfer-in', 'transfer-out']),
    counterparty: z.string().nullable(),
    memo: z.string().nullable(),
    transferId: z.string().nullable(),
    occurredAt: iso,
  })
  .meta({ id: 'HistoryItem' });
const cursor = z.string().max(MAX_CURSOR_LENGTH);
const historyPage = z
  .union([
    z.strictObject({ items: z.array(historyItem), nextCursor: cursor.nullable(), headCursor: cursor.nullable() }).meta({ id: 'HistoryPage', description: 'Newest first, below `cursor`' }),
    z.strictObject({ items: z.array(historyItem), headCursor: cursor, hasMore: z.boolean() }).meta({ id: 'NewerRows', description: 'Oldest first, after `since`' }),
  ])
  .meta({ id: 'HistoryAnswer' });

const faultJson = z.strictObject({
  pipe: z.enum(['request', 'response', 'log']),
  action: z.enum(['drop', 'delay', 'duplicate']),
  count: z.number().int(),
  delayMs: z.number().int(),
  messages: z.enum(['any', 'transfers', 'sync']),
});
const reconcileReport = z
  .strictObject({
    accountsChecked: z.number().int(),
    mismatches: z.number().int(),
    repaired: z.number().int(),
    tookMs: z.number(),
    startedAt: iso,
    problems: z.array(z.strictObject({ accountId: z.number().int(), problem: z.enum(['behind', 'missing', 'diverged']) })),
  })
  .meta({ id: 'ReconcileReport' });

// ---------------------------------------------------------------------------------------
// Building blocks

type Status = 200 | 201 | 202 | 204 | 400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 503;
type Security = 'none' | 'customer' | 'admin' | 'either' | 'browser';

const PROBLEM_DESCRIPTIONS: Partial<Record<Status, string>> = {
  400: 'The request is not valid: a path id, query, header or body that fails its schema',
  401: 'No token, or one the bank does not know (unknown or revoked)',
  403: 'A token that may not use this route',
  404: 'Not found, or not yours: both get the same answer',
  413: 'A body over 16 KiB, counted as it is read',
  503: 'The side that had to make this durable restarted first (`Restarting`): nothing of it was stored; retry. In the split mode, an admin call the core process did not answer in time (`Core Unavailable`)',
};

const problem = (description: string, schema: z.ZodType = problemSchema) => ({ description, content: { 'application/problem+json': { schema } } });
const json = (description: string, schema: z.ZodType, headers?: Record<string, z.ZodType>) => ({ description, content: { 'application/json': { schema } }, ...(headers ? { headers: z.object(headers) } : {}) });
const text = (description: string, type: string) => ({ description, content: { [type]: { schema: z.string() } } });

const requestIdHeader = z.string().meta({ description: "The client's X-Request-Id, or one the server made; on every answer" });

const SECURITY: Record<Security, Record<string, string[]>[]> = {
  none: [],
  customer: [{ bearer: [] }],
  admin: [{ bearer: [] }],
  either: [{ bearer: [] }],
  browser: [{ bearer: [] }, { cookie: [] }, { accessToken: [] }],
};

type Operation = {
  method: 'get' | 'post' | 'delete';
  path: string;
  summary: string;
  tags: string[];
  security: Security;
  request?: Record<string, unknown>;
  ok: Record<number, unknown>;
  /** The problem answers this route can give beside 503 (which every route can). */
  problems: Status[];
  extraProblems?: Partial<Record<Status, unknown>>;
};

/** Registers every route of the API on `app`'s registry, and GET /openapi.json to serve it. */
export function describeApi(app: OpenAPIHono<AppEnv>, maxAmountWon: number): void {
  const r = app.openAPIRegistry;
  r.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'The admin token, or a customer token (`Authorization: Bearer <token>`)' });
  r.registerComponent('securitySchemes', 'cookie', { type: 'apiKey', in: 'cookie', name: 'scrollbank_token', description: 'The bank page sets it on sign-in; the two read-only browser routes take it' });
  r.registerComponent('securitySchemes', 'accessToken', { type: 'apiKey', in: 'query', name: 'access_token', description: "RFC 6750's query token; the two read-only browser routes take it" });

  const money = moneySchemas(maxAmountWon);
  const idPath = z.object({ id: idParam });
  const transferPath = z.object({ id: transferIdParam });
  const body = (schema: z.ZodType) => ({ body: { required: true, content: { 'application/json': { schema } } } });

  const ops: Operation[] = [
    { method: 'get', path: '/health', summary: 'Health check', tags: ['meta'], security: 'none', ok: { 200: json('The server answers', z.strictObject({ status: z.literal('ok') })) }, problems: [] },
    { method: 'get', path: '/openapi.json', summary: 'This document', tags: ['meta'], security: 'none', ok: { 200: json('OpenAPI 3.1', z.looseObject({ openapi: z.string() })) }, problems: [] },
    { method: 'get', path: '/docs', summary: 'The interactive API reference (Swagger UI, served from this server)', tags: ['meta'], security: 'none', ok: { 200: text('HTML', 'text/html') }, problems: [] },
    {
      method: 'get',
      path: '/docs/{file}',
      summary: "The reference's script, style sheet and icon",
      tags: ['meta'],
      security: 'none',
      request: { params: z.object({ file: z.string() }) },
      ok: { 200: { description: 'A file of swagger-ui-dist, or the page\'s init script', content: { 'text/javascript': { schema: z.string() }, 'text/css': { schema: z.string() }, 'image/png': { schema: z.string() }, 'application/json': { schema: z.looseObject({}).meta({ description: 'A source map' }) } } } },
      problems: [404],
    },
    { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tags: ['meta'], security: 'admin', ok: { 200: text('Prometheus text format', 'text/plain') }, problems: [401, 403] },
    {
      method: 'get',
      path: '/machines',
      summary: 'The XState machines, by name',
      tags: ['machines'],
      security: 'none',
      ok: { 200: json('Every machine', z.array(z.strictObject({ name: z.string(), states: z.array(z.string()), url: z.string() }))) },
      problems: [],
    },
    {
      method: 'get',
      path: '/machines/{name}',
      summary: "A machine's createMachine config (JSON, or as code for Stately's editor)",
      tags: ['machines'],
      security: 'none',
      request: { params: z.object({ name: z.string() }), query: z.object({ format: z.enum(['json', 'code']).optional() }) },
      ok: { 200: { description: 'The config', content: { 'application/json': { schema: z.looseObject({}) }, 'text/typescript': { schema: z.string() } } } },
      problems: [400, 404],
    },
    { method: 'get', path: '/', summary: 'The bank page', tags: ['pages'], security: 'none', ok: { 200: text('HTML', 'text/html') }, problems: [] },
    { method: 'get', path: '/viz', summary: 'Every machine drawn as a statechart', tags: ['pages'], security: 'none', ok: { 200: text('HTML', 'text/html') }, problems: [] },
    {
      method: 'get',
      path: '/viz/transfers/{id}',
      summary: "One transfer's state and journal, live",
      tags: ['pages'],
      security: 'browser',
      request: { params: transferPath },
      ok: {
        200: text('HTML', 'text/html'),
        303: { description: 'A `?access_token=` is traded for the `scrollbank_token` cookie (when it is good), and the page is answered at its address without it', headers: z.object({ Location: z.string() }) },
      },
      problems: [400, 401, 404],
      extraProblems: { 401: text('No token, or an unknown one: an HTML page that asks to sign in', 'text/html') },
    },
    {
      method: 'get',
      path: '/assets/{name}',
      summary: "The pages' bundled scripts and styles",
      tags: ['pages'],
      security: 'none',
      request: { params: z.object({ name: z.string() }) },
      ok: { 200: { description: 'A script or a style sheet', content: { 'text/javascript': { schema: z.string() }, 'text/css': { schema: z.string() } } } },
      problems: [404],
    },

    // Admin
    {
      method: 'post',
      path: '/admin/customers',
      summary: 'Open a customer: a core account with its opening balance, and their first token (shown once)',
      tags: ['admin'],
      security: 'admin',
      request: body(money.newCustomer),
      ok: { 201: json('Opened', z.strictObject({ customer: customerJson, token: z.string(), account: accountJson })) },
      problems: [400, 401, 403, 413],
    },
    {
      method: 'post',
      path: '/admin/customers/{id}/accounts',
      summary: 'Open another account for a customer',
      tags: ['admin'],
      security: 'admin',
      request: { params: idPath, ...body(money.newAccount) },
      ok: { 201: json('Opened', z.strictObject({ account: accountJson })) },
      problems: [400, 401, 403, 404, 413],
    },
    {
      method: 'post',
      path: '/admin/customers/{id}/tokens',
      summary: 'Issue a customer another token (shown once; only its hash is stored)',
      tags: ['admin'],
      security: 'admin',
      request: { params: idPath },
      ok: { 201: json('Issued', z.strictObject({ customerId: z.number().int(), token: z.string() })) },
      problems: [400, 401, 403, 404],
    },
    {
      method: 'delete',
      path: '/admin/customers/{id}/tokens',
      summary: "Revoke every token of a customer, at once (open event streams included)",
      tags: ['admin'],
      security: 'admin',
      request: { params: idPath },
      ok: { 200: json('Revoked', z.strictObject({ customerId: z.number().int(), revoked: z.number().int() })) },
      problems: [400, 401, 403, 404],
    },
    {
      method: 'post',
      path: '/admin/deposits',
      summary: 'A deposit from another bank, posted in the core',
      tags: ['admin'],
      security: 'admin',
      request: body(money.deposit),
      ok: { 201: json('The posting', historyItem.extend({ accountId: z.number().int() })) },
      problems: [400, 401, 403, 404, 413],
    },
    {
      method: 'post',
      path: '/admin/faults',
      summary: 'Queue a fault on a pipe: the next `count` messages are dropped, delayed or duplicated',
      tags: ['admin'],
      security: 'admin',
      request: body(fault),
      ok: { 201: json('Queued', z.strictObject({ fault: faultJson, queue: z.array(faultJson) })) },
      problems: [400, 401, 403, 409, 413],
      extraProblems: { 409: problem('The fault queue is full, or a log fault in the split mode (log faults apply where records are published, in the core process)') },
    },
    { method: 'get', path: '/admin/faults', summary: 'The queued faults', tags: ['admin'], security: 'admin', ok: { 200: json('Queued faults', z.strictObject({ faults: z.array(faultJson) })) }, problems: [401, 403] },
    { method: 'delete', path: '/admin/faults', summary: 'Clear the fault queue', tags: ['admin'], security: 'admin', ok: { 204: { description: 'Cleared' } }, problems: [401, 403] },
    {
      method: 'post',
      path: '/admin/restart',
      summary: 'Crash-restart one side with its disk intact',
      tags: ['admin'],
      security: 'admin',
      request: body(restart),
      ok: { 200: json('Restarted', z.strictObject({ side: z.enum(['channel', 'core']), status: z.literal('restarted'), transfersInFlight: z.number().int() })) },
      problems: [400, 401, 403, 413],
    },
    { method: 'post', path: '/admin/reconcile', summary: "Reconcile the channel's history copy with the core, repairing what differs", tags: ['admin'], security: 'admin', ok: { 200: json('The report', reconcileReport) }, problems: [401, 403] },
    { method: 'get', path: '/admin/reconcile', summary: 'The last reconciliation report', tags: ['admin'], security: 'admin', ok: { 200: json('The report', reconcileReport) }, problems: [401, 403, 404] },

    // Customers
    {
      method: 'get',
      path: '/me',
      summary: 'The calling customer and their accounts',
      tags: ['customers'],
      security: 'customer',
      ok: { 200: json('The customer', z.strictObject({ customer: customerJson, accounts: z.array(accountJson) })) },
      problems: [401, 403],
    },
    {
      method: 'post',
      path: '/transfers',
      summary: 'Send money: stored before it is sent, one unfinished transfer per account, idempotent by key',
      tags: ['transfers'],
      security: 'customer',
      request: {
        headers: z.object({
          'Idempotency-Key': idempotencyKey.optional().meta({ description: 'The same key with the same body returns the original transfer' }),
          Prefer: z.string().optional().meta({ description: '`wait=N`: seconds to wait for the outcome (default 10, at most 60; 0 answers at once)' }),
        }),
        ...body(money.transfer),
      },
      ok: {
        200: json('The original transfer, for a retry with the same key and body', transferSchema, { Location: z.string(), 'Preference-Applied': z.string() }),
        201: json('Created and settled within the wait (a refusal only the core can make is a settled `failed`)', transferSchema, { Location: z.string(), 'Preference-Applied': z.string() }),
        202: json('Created, still unfinished when the wait ended', transferSchema, { Location: z.string(), 'Preference-Applied': z.string() }),
      },
      problems: [400, 401, 403, 409, 413, 422],
      extraProblems: {
        403: problem('Not a customer token, or an account that is not yours'),
        409: problem('The account already has an unfinished transfer', inFlightProblem),
        422: problem('This Idempotency-Key was used with another body', keyReusedProblem),
      },
    },
    {
      method: 'get',
      path: '/transfers/{id}',
      summary: 'A transfer with its journal and audit',
      tags: ['transfers'],
      security: 'either',
      request: { params: transferPath },
      ok: { 200: json('The transfer', transferSchema) },
      problems: [400, 401, 404],
    },
    {
      method: 'get',
      path: '/transfers/{id}/stream',
      summary: 'Server-sent events: `transfer`, one `transition` per committed transition, then `end`',
      tags: ['transfers'],
      security: 'browser',
      request: { params: transferPath },
      ok: { 200: text('An event stream', 'text/event-stream') },
      problems: [400, 401, 404, 429],
      extraProblems: { 429: problem('This customer already has 20 streams open'), 503: problem('1,000 streams are open, the server is stopping, or the channel restarted') },
    },
    {
      method: 'get',
      path: '/accounts/{id}',
      summary: "An account's balance, from the channel's copy",
      tags: ['accounts'],
      security: 'either',
      request: { params: idPath },
      ok: { 200: json('The account', accountJson) },
      problems: [400, 401, 404],
    },
    {
      method: 'get',
      path: '/accounts/{id}/transactions',
      summary: "An account's history: keyset pages newest first (`cursor`), or the rows since a head (`since`)",
      tags: ['accounts'],
      security: 'either',
      request: { params: idPath, query: pageQuery },
      ok: { 200: json('A page', historyPage) },
      problems: [400, 401, 404],
    },
  ];

  for (const op of ops) {
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(op.ok)) responses[status] = withRequestId(response);
    for (const status of [...op.problems, 503] as Status[]) {
      responses[status] = withRequestId(op.extraProblems?.[status] ?? problem(PROBLEM_DESCRIPTIONS[status] ?? 'A problem'));
    }
    r.registerPath({
      method: op.method,
      path: op.path,
      summary: op.summary,
      tags: op.tags,
      security: SECURITY[op.security],
      request: { ...op.request, headers: mergeHeaders(op.request?.headers) },
      responses: responses as never,
    });
  }

  app.get('/openapi.json', (c) =>
    c.json(
      app.getOpenAPI31Document({
        openapi: OPENAPI_VERSION,
        info: {
          title: 'scrollbank',
          version: '0.1.0',
          description: "A bank that keeps money transfers correct across an unreliable network, and lets customers scroll their whole history (after Toss Bank's SLASH 22 talk).",
        },
        tags: [
          { name: 'transfers', description: 'Moving money' },
          { name: 'accounts', description: 'Balances and history, from the channel’s own copy' },
          { name: 'customers' },
          { name: 'admin', description: 'Admin token only' },
          { name: 'machines' },
          { name: 'pages' },
          { name: 'meta' },
        ],
      }),
    ),
  );
}

function withRequestId(response: unknown): unknown {
  const r = response as { headers?: z.ZodObject };
  const own = r.headers === undefined ? {} : r.headers.shape;
  return { ...r, headers: z.object({ ...own, 'X-Request-Id': requestIdHeader }) };
}

/** Every route takes an optional X-Request-Id besides its own headers. */
function mergeHeaders(own: unknown): z.ZodObject {
  const base = z.object({ 'X-Request-Id': z.string().regex(/^[\x21-\x7e]{1,128}$/).optional().meta({ description: 'Kept and returned when 1-128 visible ASCII characters' }) });
  return own instanceof z.ZodObject ? base.extend(own.shape) : base;
}
