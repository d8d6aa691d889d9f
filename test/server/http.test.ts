/**
 * The HTTP API through Hono's app.request(), with no socket: every status code of issue 3,
 * authentication, validation at the edge, and hostile input, over a real bank on virtual time.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp, type App } from '../../src/server/app.ts';
import { conformanceOf, type Conformance } from '../openapi-conformance.ts';
import { MAX_BODY_BYTES } from '../../src/server/schemas.ts';
import { assertInvariants, drive, makeBank, run, type TestBank, drivenApp } from '../helpers.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0001';

type Ctx = { bank: TestBank; app: App };
const test = suite<Ctx>('http api', {} as Ctx);
/** Every answer these tests get is held to the OpenAPI document the app serves. */
let conformance: Conformance;

test.before(async () => {
  const bank = makeBank();
  try {
    conformance = conformanceOf(await (await createApp({ bank, adminToken: ADMIN_TOKEN }).request('/openapi.json')).json());
  } finally {
    bank.dispose();
  }
});

test.before.each((ctx) => {
  ctx.bank = makeBank();
  ctx.app = drivenApp(ctx.bank, createApp({ bank: ctx.bank, adminToken: ADMIN_TOKEN }));
});
test.after.each((ctx) => {
  ctx.bank.dispose();
});

// ---------------------------------------------------------------------------------------
// Helpers

type Json = any;
type RequestBody = NonNullable<RequestInit['body']>;
type Reply = { status: number; headers: Headers; body: Json };
type CallOptions = {
  token?: string | null;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is. */
  raw?: RequestBody;
  headers?: Record<string, string>;
};

async function call(ctx: Ctx, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined && options.token !== null) headers['Authorization'] = `Bearer ${options.token}`;
  let body: RequestBody | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['Content-Type'] ??= 'application/json';
  } else if (options.raw !== undefined) body = options.raw;
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  if (body !== undefined) init.body = body;
  if (body instanceof ReadableStream) init.duplex = 'half';
  const response = await ctx.app.request(path, init);
  const text = await response.text();
  let parsed: Json = null;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  conformance.check(method, path, response.status, response.headers.get('content-type'), parsed);
  return { status: response.status, headers: response.headers, body: parsed };
}

const admin = (ctx: Ctx, method: string, path: string, options: Omit<CallOptions, 'token'> = {}) =>
  call(ctx, method, path, { ...options, token: ADMIN_TOKEN });

function assertStatus(reply: Reply, status: number, what = ''): void {
  assert.is(reply.status, status, `${what} expected ${status}, got ${reply.status}: ${JSON.stringify(reply.body)}`);
}

/** Every error is application/problem+json {type, title, status, detail} with status equal to the HTTP status. */
function assertProblem(reply: Reply, status: number, what = ''): void {
  assertStatus(reply, status, what);
  assert.ok(reply.headers.get('content-type')?.startsWith('application/problem+json'), `${what} content-type was ${reply.headers.get('content-type')}`);
  assert.type(reply.body, 'object', what);
  assert.type(reply.body.type, 'string', `${what} type`);
  assert.type(reply.body.title, 'string', `${what} title`);
  assert.type(reply.body.detail, 'string', `${what} detail`);
  assert.ok(reply.body.detail.length > 0, `${what} detail is empty`);
  assert.is(reply.body.status, status, `${what} body status`);
}

function assertClientError(reply: Reply, what: string): void {
  assert.ok(reply.status >= 400 && reply.status < 500, `${what}: expected a 4xx, got ${reply.status}: ${JSON.stringify(reply.body)}`);
  assertProblem(reply, reply.status, what);
}

type Customer = { customerId: number; name: string; token: string; accountId: number };

/** Opens a customer over the admin API and lets the log deliver the opening balance. */
async function openCustomer(ctx: Ctx, name: string, openingBalance: number): Promise<Customer> {
  const reply = await admin(ctx, 'POST', '/admin/customers', { json: { name, openingBalance } });
  assertStatus(reply, 201, 'open customer');
  run(ctx.bank);
  return { customerId: reply.body.customer.id, name, token: reply.body.token, accountId: reply.body.account.id };
}

/** POST /transfers, letting virtual time move while the call waits for the outcome. */
function postTransfer(ctx: Ctx, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return drive(ctx.bank, call(ctx, 'POST', '/transfers', { token, json: body, headers }));
}

/** POST /transfers that answers at once (Prefer: wait=0). */
function postTransferNow(ctx: Ctx, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return call(ctx, 'POST', '/transfers', { token, json: body, headers: { Prefer: 'wait=0', ...headers } });
}

async function balanceOf(ctx: Ctx, accountId: number): Promise<number> {
  const reply = await admin(ctx, 'GET', `/accounts/${accountId}`);
  assertStatus(reply, 200, `balance of ${accountId}`);
  return reply.body.balance;
}

function coreBalanceOf(ctx: Ctx, accountId: number): number {
  return ctx.bank.core.readModel().getAccount(accountId)!.balanceWon;
}

const transferCount = (ctx: Ctx) => ctx.bank.channel.readModel().allTransfers().length;

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TRANSFER_KEYS = ['amount', 'audit', 'fromAccountId', 'id', 'journal', 'memo', 'reason', 'requestedAt', 'settledAt', 'state', 'toAccountId'];
const HISTORY_KEYS = ['amount', 'balanceAfter', 'counterparty', 'kind', 'memo', 'occurredAt', 'seq', 'transferId'];
const PROBLEM_KEYS = ['detail', 'status', 'title', 'type'];
const keysOf = (o: object) => Object.keys(o).sort();

// ---------------------------------------------------------------------------------------
// Health and machines

test('the bank answers a health check without a token', async (ctx) => {
  const reply = await call(ctx, 'GET', '/health');
  assertStatus(reply, 200);
  assert.equal(reply.body, { status: 'ok' });
});

test('the transfer machine definition is served with exactly the six transfer states', async (ctx) => {
  const reply = await call(ctx, 'GET', '/machines/transfer');
  assertStatus(reply, 200);
  assert.ok(reply.headers.get('content-type')?.startsWith('application/json'));
  assert.equal(Object.keys(reply.body.states).sort(), ['failed', 'querying', 'requested', 'sent', 'succeeded', 'timedOut']);
});

test('the core banking machine definition is served', async (ctx) => {
  const reply = await call(ctx, 'GET', '/machines/coreBanking');
  assertStatus(reply, 200);
  assert.is(reply.body.id, 'coreBanking');
  assert.type(reply.body.states, 'object');
  assert.ok(Object.keys(reply.body.states).length > 0);
});

test('an unknown machine is a 404 problem, even one named after a property every object has', async (ctx) => {
  for (const name of ['nope', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'Transfer']) {
    assertProblem(await call(ctx, 'GET', `/machines/${name}`), 404, name);
  }
});

test('a route the bank does not have is a 404 problem', async (ctx) => {
  assertProblem(await call(ctx, 'GET', '/nowhere'), 404);
  assertProblem(await call(ctx, 'PUT', '/transfers', { token: ADMIN_TOKEN, json: {} }), 404);
});

// ---------------------------------------------------------------------------------------
// Admin: customers, accounts, deposits

test('the admin opens a customer whose account holds the opening balance', async (ctx) => {
  const reply = await admin(ctx, 'POST', '/admin/customers', { json: { name: 'Kim', openingBalance: 50_000 } });
  assertStatus(reply, 201);
  assert.equal(keysOf(reply.body), ['account', 'customer', 'token']);
  assert.equal(keysOf(reply.body.customer), ['id', 'name']);
  assert.is(reply.body.customer.name, 'Kim');
  assert.type(reply.body.customer.id, 'number');
  assert.type(reply.body.token, 'string');
  assert.ok(reply.body.token.length >= 32, 'a token long enough not to be guessed');
  assert.equal(keysOf(reply.body.account), ['balance', 'id']);
  assert.is(reply.body.account.balance, 50_000);

  run(ctx.bank);
  const me = await call(ctx, 'GET', '/me', { token: reply.body.token });
  assertStatus(me, 200);
  assert.equal(me.body, { customer: { id: reply.body.customer.id, name: 'Kim' }, accounts: [{ id: reply.body.account.id, balance: 50_000 }] });
});

test('the admin opens a second account for a customer, and /me lists both with their balances', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const reply = await admin(ctx, 'POST', `/admin/customers/${kim.customerId}/accounts`, { json: { openingBalance: 7_000 } });
  assertStatus(reply, 201);
  assert.equal(keysOf(reply.body), ['account']);
  assert.equal(keysOf(reply.body.account), ['balance', 'id']);
  assert.is(reply.body.account.balance, 7_000);
  assert.is.not(reply.body.account.id, kim.accountId);

  run(ctx.bank);
  const me = await call(ctx, 'GET', '/me', { token: kim.token });
  assertStatus(me, 200);
  assert.equal(me.body.customer, { id: kim.customerId, name: 'Kim' });
  assert.equal(me.body.accounts, [
    { id: kim.accountId, balance: 10_000 },
    { id: reply.body.account.id, balance: 7_000 },
  ]);
});

test('opening an account for a customer the bank does not know is a 404', async (ctx) => {
  assertProblem(await admin(ctx, 'POST', '/admin/customers/9999/accounts', { json: { openingBalance: 0 } }), 404);
  assertProblem(await admin(ctx, 'POST', '/admin/customers/abc/accounts', { json: { openingBalance: 0 } }), 400);
  assertProblem(await admin(ctx, 'POST', '/admin/customers/1/accounts', { json: { openingBalance: -1 } }), 400);
});

test('the admin refuses a customer body that is not valid, and opens no customer', async (ctx) => {
  const bad: [string, unknown][] = [
    ['empty name', { name: '', openingBalance: 0 }],
    ['blank name', { name: '   ', openingBalance: 0 }],
    ['name of 101 characters', { name: 'x'.repeat(101), openingBalance: 0 }],
    ['control character in the name', { name: 'Kim\u0000', openingBalance: 0 }],
    ['negative opening balance', { name: 'Kim', openingBalance: -1 }],
    ['fractional opening balance', { name: 'Kim', openingBalance: 0.5 }],
    ['opening balance over the maximum', { name: 'Kim', openingBalance: ctx.bank.settings.maxAmountWon + 1 }],
    ['opening balance as a string', { name: 'Kim', openingBalance: '100' }],
    ['missing opening balance', { name: 'Kim' }],
    ['unknown field', { name: 'Kim', openingBalance: 0, vip: true }],
  ];
  for (const [what, json] of bad) assertProblem(await admin(ctx, 'POST', '/admin/customers', { json }), 400, what);
  assertProblem(await admin(ctx, 'POST', '/admin/customers', { raw: '{"name": "Kim",' }), 400, 'malformed JSON');
  assert.is(ctx.bank.channel.customer(1), undefined, 'no customer was opened');
});

test('every answer carries an X-Request-Id: the client\'s when it is readable, a new one otherwise', async (ctx) => {
  const given = await call(ctx, 'GET', '/health', { headers: { 'X-Request-Id': 'trace-abc-123' } });
  assert.is(given.headers.get('x-request-id'), 'trace-abc-123');
  const made = [await call(ctx, 'GET', '/health'), await call(ctx, 'GET', '/no-such-route'), await call(ctx, 'GET', '/me')];
  const ids = made.map((r) => r.headers.get('x-request-id'));
  for (const id of ids) assert.match(id ?? '', /^req_[A-Za-z0-9_-]+-[0-9a-z]+$/);
  assert.is(new Set(ids).size, 3, 'one id per request');
  const unreadable = await call(ctx, 'GET', '/health', { headers: { 'X-Request-Id': 'x'.repeat(200) } });
  assert.match(unreadable.headers.get('x-request-id') ?? '', /^req_/, 'a 200-character id is replaced');
});

test('the admin issues a customer another token (201, shown once), which works at once beside the first', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const issued = await admin(ctx, 'POST', `/admin/customers/${kim.customerId}/tokens`);
  assertStatus(issued, 201);
  assert.equal(keysOf(issued.body), ['customerId', 'token']);
  assert.is(issued.body.customerId, kim.customerId);
  assert.is.not(issued.body.token, kim.token);
  for (const token of [issued.body.token, kim.token]) assertStatus(await call(ctx, 'GET', '/me', { token }), 200, 'either token');
  assertProblem(await admin(ctx, 'POST', '/admin/customers/999/tokens'), 404, 'no such customer');
  assertProblem(await admin(ctx, 'POST', '/admin/customers/x/tokens'), 400, 'a malformed id');
  assertProblem(await call(ctx, 'POST', `/admin/customers/${kim.customerId}/tokens`, { token: kim.token }), 403, 'a customer token');
});

test('revoking a customer\'s tokens refuses every one of them with 401 at once, on every route, cached or not', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 10_000);
  const second = (await admin(ctx, 'POST', `/admin/customers/${kim.customerId}/tokens`)).body.token as string;
  // Both tokens are known and remembered by the cache before the revocation.
  for (const token of [kim.token, second]) assertStatus(await call(ctx, 'GET', '/me', { token }), 200);
  const revoked = await admin(ctx, 'DELETE', `/admin/customers/${kim.customerId}/tokens`);
  assertStatus(revoked, 200);
  assert.equal(revoked.body, { customerId: kim.customerId, revoked: 2 });
  for (const token of [kim.token, second]) {
    assertProblem(await call(ctx, 'GET', '/me', { token }), 401, 'GET /me');
    assertProblem(await call(ctx, 'GET', `/accounts/${kim.accountId}`, { token }), 401, 'GET /accounts/:id');
    assertProblem(await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token }), 401, 'history');
    assertProblem(await postTransferNow(ctx, token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1 }), 401, 'POST /transfers');
  }
  assert.is(transferCount(ctx), 0, 'nothing was sent with a revoked token');
  assertStatus(await call(ctx, 'GET', '/me', { token: lee.token }), 200, "another customer's token");
  // A new token after the revocation works: revocation is of the tokens, not of the customer.
  const fresh = (await admin(ctx, 'POST', `/admin/customers/${kim.customerId}/tokens`)).body.token as string;
  assertStatus(await call(ctx, 'GET', '/me', { token: fresh }), 200);
  assert.equal((await admin(ctx, 'DELETE', '/admin/customers/999/tokens')).status, 404);
});

test('a deposit from another bank is posted in the core and reaches the history through the log', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  // The answer waits for the core's commit, by when the relay has published: hold the log back.
  ctx.bank.log.pause();
  const reply = await admin(ctx, 'POST', '/admin/deposits', { json: { accountId: kim.accountId, amount: 2_500, fromBank: 'Shinhan', fromName: 'Park' } });
  assertStatus(reply, 201);
  assert.is(reply.body.accountId, kim.accountId);
  assert.is(reply.body.kind, 'deposit');
  assert.is(reply.body.amount, 2_500);
  assert.is(reply.body.balanceAfter, 12_500);
  assert.is(coreBalanceOf(ctx, kim.accountId), 12_500, 'the core posted it at once');
  assert.is(await balanceOf(ctx, kim.accountId), 10_000, 'the channel learns of it only from the log');

  ctx.bank.log.resume();
  run(ctx.bank);
  const page = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token: kim.token });
  assertStatus(page, 200);
  const top = page.body.items[0];
  assert.equal(
    { kind: top.kind, amount: top.amount, balanceAfter: top.balanceAfter, seq: top.seq, transferId: top.transferId },
    { kind: 'deposit', amount: 2_500, balanceAfter: 12_500, seq: 2, transferId: null },
  );
  assert.ok(top.counterparty.includes('Park') && top.counterparty.includes('Shinhan'), top.counterparty);
  assert.is(await balanceOf(ctx, kim.accountId), 12_500);
  assertInvariants(ctx.bank);
});

test('a deposit into an account the core does not know is a 404 and posts nothing', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  assertProblem(await admin(ctx, 'POST', '/admin/deposits', { json: { accountId: 999_999, amount: 1_000, fromBank: 'Shinhan', fromName: 'Park' } }), 404);
  for (const [what, json] of [
    ['amount 0', { accountId: kim.accountId, amount: 0, fromBank: 'Shinhan', fromName: 'Park' }],
    ['negative amount', { accountId: kim.accountId, amount: -1_000, fromBank: 'Shinhan', fromName: 'Park' }],
    ['missing fromBank', { accountId: kim.accountId, amount: 1_000, fromName: 'Park' }],
    ['account id as a string', { accountId: String(kim.accountId), amount: 1_000, fromBank: 'Shinhan', fromName: 'Park' }],
  ] as const) {
    assertProblem(await admin(ctx, 'POST', '/admin/deposits', { json }), 400, what);
  }
  run(ctx.bank);
  assert.is(coreBalanceOf(ctx, kim.accountId), 10_000);
  assert.is(await balanceOf(ctx, kim.accountId), 10_000);
  assertInvariants(ctx.bank);
});

// ---------------------------------------------------------------------------------------
// Admin: faults and restarts

test('the admin queues, lists and clears network faults', async (ctx) => {
  const first = await admin(ctx, 'POST', '/admin/faults', { json: { pipe: 'request', action: 'drop' } });
  assertStatus(first, 201);
  assert.equal(first.body.fault, { pipe: 'request', action: 'drop', count: 1, delayMs: 0, messages: 'transfers' });
  const second = await admin(ctx, 'POST', '/admin/faults', { json: { pipe: 'response', action: 'delay', count: 3, delayMs: 70_000 } });
  assertStatus(second, 201);
  assert.equal(second.body.queue, [
    { pipe: 'request', action: 'drop', count: 1, delayMs: 0, messages: 'transfers' },
    { pipe: 'response', action: 'delay', count: 3, delayMs: 70_000, messages: 'transfers' },
  ]);

  const listed = await admin(ctx, 'GET', '/admin/faults');
  assertStatus(listed, 200);
  assert.equal(listed.body, { faults: second.body.queue });

  const cleared = await admin(ctx, 'DELETE', '/admin/faults');
  assertStatus(cleared, 204);
  assert.is(cleared.body, null, 'a 204 has no body');
  assert.equal((await admin(ctx, 'GET', '/admin/faults')).body, { faults: [] });
  assert.is(ctx.bank.faults.size, 0);
});

test('a fault that makes no sense is refused with 400 and queues nothing', async (ctx) => {
  const bad: [string, unknown][] = [
    ['unknown pipe', { pipe: 'carrier-pigeon', action: 'drop' }],
    ['unknown action', { pipe: 'request', action: 'corrupt' }],
    ['delay without delayMs', { pipe: 'request', action: 'delay' }],
    ['drop with delayMs', { pipe: 'request', action: 'drop', delayMs: 10 }],
    ['count 0', { pipe: 'request', action: 'drop', count: 0 }],
    ['count over 1000', { pipe: 'request', action: 'drop', count: 1001 }],
    ['fractional count', { pipe: 'request', action: 'drop', count: 1.5 }],
    ['negative delay', { pipe: 'log', action: 'delay', delayMs: -1 }],
    ['delay over ten minutes', { pipe: 'log', action: 'delay', delayMs: 600_001 }],
    ['a log fault aimed at link messages', { pipe: 'log', action: 'drop', messages: 'sync' }],
    ['unknown messages', { pipe: 'request', action: 'drop', messages: 'everything' }],
    ['missing pipe', { action: 'drop' }],
    ['unknown field', { pipe: 'request', action: 'drop', when: 'now' }],
  ];
  for (const [what, json] of bad) assertProblem(await admin(ctx, 'POST', '/admin/faults', { json }), 400, what);
  assert.equal((await admin(ctx, 'GET', '/admin/faults')).body, { faults: [] });
});

test('a fault past the bound of the fault queue is refused with a 4xx, never a 500', async (ctx) => {
  for (let i = 0; i < 1000; i++) {
    assertStatus(await admin(ctx, 'POST', '/admin/faults', { json: { pipe: 'log', action: 'duplicate' } }), 201, `fault ${i + 1}`);
  }
  const overflow = await admin(ctx, 'POST', '/admin/faults', { json: { pipe: 'log', action: 'duplicate' } });
  assertClientError(overflow, 'the 1001st fault');
  assert.is(ctx.bank.faults.size, 1000);
});

test('the admin restarts the channel and the core, and a transfer in flight still settles', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const pending = await postTransferNow(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 });
  assertStatus(pending, 202);

  const channel = await admin(ctx, 'POST', '/admin/restart', { json: { side: 'channel' } });
  assertStatus(channel, 200);
  assert.equal(channel.body, { side: 'channel', status: 'restarted', transfersInFlight: 1 });
  const core = await admin(ctx, 'POST', '/admin/restart', { json: { side: 'core' } });
  assertStatus(core, 200);
  assert.is(core.body.side, 'core');

  run(ctx.bank, 60_000);
  const settled = await call(ctx, 'GET', pending.headers.get('location')!, { token: kim.token });
  assertStatus(settled, 200);
  assert.is(settled.body.state, 'failed');
  assert.is(settled.body.reason, 'not-received');
  assert.is(await balanceOf(ctx, kim.accountId), 100_000);

  const after = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 });
  assertStatus(after, 201);
  assert.is(after.body.state, 'succeeded');
  assertInvariants(ctx.bank);
});

test('a restart of a side the bank does not have is refused with 400', async (ctx) => {
  for (const json of [{ side: 'both' }, {}, { side: 'channel', force: true }, { side: null }]) {
    assertProblem(await admin(ctx, 'POST', '/admin/restart', { json }), 400, JSON.stringify(json));
  }
  assert.ok(ctx.bank.channel.running && ctx.bank.core.running, 'nothing was restarted or left down');
});

// ---------------------------------------------------------------------------------------
// Authentication and authorisation

test('a call without a token is a 401 problem that names the Bearer scheme', async (ctx) => {
  const calls: [string, string][] = [
    ['GET', '/me'],
    ['GET', '/accounts/1'],
    ['GET', '/accounts/1/transactions'],
    ['GET', '/transfers/tr_abc'],
    ['POST', '/transfers'],
    ['GET', '/admin/faults'],
    ['POST', '/admin/customers'],
  ];
  for (const [method, path] of calls) {
    const reply = await call(ctx, method, path, method === 'POST' ? { json: {} } : {});
    assertProblem(reply, 401, `${method} ${path}`);
    assert.is(reply.headers.get('www-authenticate'), 'Bearer', `${method} ${path}`);
  }
});

test('a token the bank never issued is a 401', async (ctx) => {
  await openCustomer(ctx, 'Kim', 0);
  for (const token of ['nope', 'admin-token-for-tests-0002', 'x'.repeat(500)]) {
    const reply = await call(ctx, 'GET', '/me', { token });
    assertProblem(reply, 401, token.slice(0, 30));
    assert.is(reply.headers.get('www-authenticate'), 'Bearer');
  }
});

test('a malformed Authorization header is a 401, even around a valid token', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 0);
  const headers = [
    `Basic ${Buffer.from(`kim:${kim.token}`).toString('base64')}`,
    kim.token,
    'Bearer',
    'Bearer ',
    `Bearer  ${kim.token}`,
    `Bearer ${kim.token} extra`,
    `Token ${kim.token}`,
  ];
  for (const authorization of headers) {
    assertProblem(await call(ctx, 'GET', '/me', { headers: { Authorization: authorization } }), 401, authorization);
  }
  assertStatus(await call(ctx, 'GET', '/me', { token: kim.token }), 200, 'the well-formed header');
});

test('a customer token cannot use the admin API, and nothing it asked for happens', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const calls: [string, string, unknown][] = [
    ['GET', '/admin/faults', undefined],
    ['POST', '/admin/faults', { pipe: 'request', action: 'drop' }],
    ['DELETE', '/admin/faults', undefined],
    ['POST', '/admin/customers', { name: 'Mallory', openingBalance: 1_000_000 }],
    ['POST', `/admin/customers/${kim.customerId}/accounts`, { openingBalance: 1_000_000 }],
    ['POST', '/admin/deposits', { accountId: kim.accountId, amount: 1_000_000, fromBank: 'Nowhere', fromName: 'Kim' }],
    ['POST', '/admin/restart', { side: 'core' }],
  ];
  for (const [method, path, json] of calls) {
    assertProblem(await call(ctx, method, path, { token: kim.token, json }), 403, `${method} ${path}`);
  }
  run(ctx.bank);
  assert.is(coreBalanceOf(ctx, kim.accountId), 10_000, 'no deposit was posted');
  assert.is(ctx.bank.channel.customer(kim.customerId + 1), undefined, 'no customer was opened');
  assert.is((await call(ctx, 'GET', '/me', { token: kim.token })).body.accounts.length, 1, 'no account was opened');
  assert.is(ctx.bank.faults.size, 0, 'no fault was queued');
  assertInvariants(ctx.bank);
});

test('the admin token is not a customer: /me and POST /transfers refuse it with 403', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  assertProblem(await admin(ctx, 'GET', '/me'), 403);
  assertProblem(await admin(ctx, 'POST', '/transfers', { json: { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1 } }), 403);
  assert.is(transferCount(ctx), 0);
});

test('a customer cannot read another customer\'s account or its history, nor tell it from one that does not exist', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 20_000);
  for (const path of ['', '/transactions']) {
    const theirs = await call(ctx, 'GET', `/accounts/${lee.accountId}${path}`, { token: kim.token });
    const none = await call(ctx, 'GET', `/accounts/999${path}`, { token: kim.token });
    assertProblem(theirs, 404);
    assertProblem(none, 404);
    assert.equal({ ...theirs.body, detail: theirs.body.detail.replace(String(lee.accountId), 'N') }, { ...none.body, detail: none.body.detail.replace('999', 'N') }, 'the same answer, but for the id');
  }
  assertStatus(await call(ctx, 'GET', `/accounts/${kim.accountId}`, { token: kim.token }), 200, 'her own account');
  assertStatus(await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token: kim.token }), 200, 'her own history');
});

test('a customer cannot read another customer\'s transfer, but its owner and the admin can', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const sent = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 });
  assertStatus(sent, 201);
  const path = `/transfers/${sent.body.id}`;
  const theirs = await call(ctx, 'GET', path, { token: lee.token });
  assertProblem(theirs, 404, 'the receiver is not its owner');
  assert.is(theirs.body.detail, `no transfer ${sent.body.id}`, 'what an unknown id gets');
  assertStatus(await call(ctx, 'GET', path, { token: kim.token }), 200, 'its owner');
  assertStatus(await admin(ctx, 'GET', path), 200, 'the admin');
});

test('a customer cannot send money from an account that is not theirs, and no money moves', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 50_000);
  const reply = await postTransfer(ctx, kim.token, { fromAccountId: lee.accountId, toAccountId: kim.accountId, amount: 50_000 });
  assertProblem(reply, 403);
  const unknown = await postTransfer(ctx, kim.token, { fromAccountId: 999_999, toAccountId: kim.accountId, amount: 1 });
  assertProblem(unknown, 403, 'an account that does not exist is not hers either');
  run(ctx.bank, 10_000);
  assert.is(transferCount(ctx), 0);
  assert.is(await balanceOf(ctx, lee.accountId), 50_000);
  assert.is(coreBalanceOf(ctx, lee.accountId), 50_000);
  assert.is(coreBalanceOf(ctx, kim.accountId), 10_000);
});

test('the admin token may read any account, its history and any transfer', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const sent = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 4_000 });
  assertStatus(sent, 201);
  const account = await admin(ctx, 'GET', `/accounts/${lee.accountId}`);
  assertStatus(account, 200);
  assert.equal(account.body, { id: lee.accountId, balance: 4_000 });
  const history = await admin(ctx, 'GET', `/accounts/${kim.accountId}/transactions`);
  assertStatus(history, 200);
  assert.is(history.body.items.length, 2);
  const transfer = await admin(ctx, 'GET', `/transfers/${sent.body.id}`);
  assertStatus(transfer, 200);
  assert.is(transfer.body.id, sent.body.id);
});

// ---------------------------------------------------------------------------------------
// POST /transfers

test('a transfer settled within the wait is a 201 with its Location and the settled transfer', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const reply = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000, memo: 'rent' });
  assertStatus(reply, 201);
  assert.equal(keysOf(reply.body), TRANSFER_KEYS);
  assert.is(reply.body.state, 'succeeded');
  assert.is(reply.body.reason, null);
  assert.is(reply.body.amount, 30_000);
  assert.is(reply.body.memo, 'rent');
  assert.match(reply.body.id, /^tr_/);
  assert.is(reply.headers.get('location'), `/transfers/${reply.body.id}`);

  const again = await call(ctx, 'GET', reply.headers.get('location')!, { token: kim.token });
  assertStatus(again, 200);
  assert.equal(again.body, reply.body);
  assert.is(await balanceOf(ctx, kim.accountId), 70_000);
  assert.is(await balanceOf(ctx, lee.accountId), 30_000);
  assertInvariants(ctx.bank);
});

test('Prefer: wait=0 answers at once with 202 while the transfer is unfinished, and it settles later', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  assertStatus(await admin(ctx, 'POST', '/admin/faults', { json: { pipe: 'request', action: 'drop' } }), 201);
  const reply = await postTransferNow(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000 });
  assertStatus(reply, 202);
  assert.ok(['requested', 'sent'].includes(reply.body.state), reply.body.state);
  assert.is(reply.body.settledAt, null);
  assert.is(reply.headers.get('location'), `/transfers/${reply.body.id}`);
  assert.is(reply.headers.get('preference-applied'), 'wait=0');

  run(ctx.bank, 60_000);
  const later = await call(ctx, 'GET', `/transfers/${reply.body.id}`, { token: kim.token });
  assert.is(later.body.state, 'failed', 'a request the core never saw ends failed');
  assert.is(later.body.reason, 'not-received');
  assert.is(await balanceOf(ctx, kim.accountId), 100_000);
  assertInvariants(ctx.bank);
});

test('a transfer whose request is lost is still unfinished, a 202, when a one-second wait ends', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const reply = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000 }, { Prefer: 'wait=1' });
  assertStatus(reply, 202);
  assert.is(reply.body.state, 'sent');
  assert.is(reply.headers.get('preference-applied'), 'wait=1');
  run(ctx.bank, 60_000);
  assertInvariants(ctx.bank);
});

test('the same Idempotency-Key with the same body returns the original transfer with 200 and moves money once', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const body = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000, memo: 'rent' };
  const first = await postTransfer(ctx, kim.token, body, { 'Idempotency-Key': 'rent-2026-01' });
  assertStatus(first, 201);
  const retry = await postTransfer(ctx, kim.token, body, { 'Idempotency-Key': 'rent-2026-01' });
  assertStatus(retry, 200);
  assert.equal(retry.body, first.body);
  assert.is(retry.headers.get('location'), `/transfers/${first.body.id}`);
  run(ctx.bank);
  assert.is(transferCount(ctx), 1);
  assert.is(await balanceOf(ctx, kim.accountId), 70_000);
  assert.is(await balanceOf(ctx, lee.accountId), 30_000);
  assert.is(coreBalanceOf(ctx, kim.accountId), 70_000);
  assertInvariants(ctx.bank);
});

test('a retry with the same Idempotency-Key while the original is unfinished returns it with 200, not 409', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const body = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000 };
  const first = await postTransferNow(ctx, kim.token, body, { 'Idempotency-Key': 'k1' });
  assertStatus(first, 202);
  const retry = await postTransferNow(ctx, kim.token, body, { 'Idempotency-Key': 'k1' });
  assertStatus(retry, 200);
  assert.is(retry.body.id, first.body.id);
  run(ctx.bank, 60_000);
  assert.is(transferCount(ctx), 1);
  assertInvariants(ctx.bank);
});

test('a retry with the same Idempotency-Key waits for the outcome as the first call would (Prefer: wait)', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const body = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000 };
  const first = await postTransferNow(ctx, kim.token, body, { 'Idempotency-Key': 'k1' });
  assert.is(first.body.state, 'sent');
  const retry = await postTransfer(ctx, kim.token, body, { 'Idempotency-Key': 'k1' }); // default wait, 10 s
  assertStatus(retry, 200);
  assert.is(retry.headers.get('preference-applied'), 'wait=10');
  assert.equal({ id: retry.body.id, state: retry.body.state, reason: retry.body.reason }, { id: first.body.id, state: 'failed', reason: 'not-received' });
  const now = await postTransferNow(ctx, kim.token, body, { 'Idempotency-Key': 'k1' });
  assert.equal({ status: now.status, state: now.body.state, applied: now.headers.get('preference-applied') }, { status: 200, state: 'failed', applied: 'wait=0' });
  assertInvariants(ctx.bank);
});

test('the same Idempotency-Key with a different body is refused with 422 and moves nothing more', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const first = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000 }, { 'Idempotency-Key': 'k1' });
  assertStatus(first, 201);
  for (const changed of [
    { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_001 },
    { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000, memo: 'now with a memo' },
  ]) {
    assertProblem(await postTransfer(ctx, kim.token, changed, { 'Idempotency-Key': 'k1' }), 422, JSON.stringify(changed));
  }
  run(ctx.bank);
  assert.is(transferCount(ctx), 1);
  assert.is(await balanceOf(ctx, kim.accountId), 70_000);
  assertInvariants(ctx.bank);
});

test('a second transfer while one is unfinished is a 409 naming the transfer in flight', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const body = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000 };
  const first = await postTransferNow(ctx, kim.token, body);
  assertStatus(first, 202);
  const second = await postTransferNow(ctx, kim.token, body);
  assertProblem(second, 409);
  assert.is(second.body.inFlightTransferId, first.body.id);
  assert.is(transferCount(ctx), 1);

  run(ctx.bank, 60_000);
  const third = await postTransfer(ctx, kim.token, body);
  assertStatus(third, 201, 'once the first settled, the account is free again');
  assert.is(third.body.state, 'succeeded');
  assert.is(await balanceOf(ctx, kim.accountId), 70_000);
  assertInvariants(ctx.bank);
});

test('a transfer body that is not valid is refused with 400, stores nothing and moves no money', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const max = ctx.bank.settings.maxAmountWon;
  const ok = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 };
  const { fromAccountId: _f, ...noFrom } = ok;
  const { toAccountId: _t, ...noTo } = ok;
  const { amount: _a, ...noAmount } = ok;
  const bad: [string, unknown][] = [
    ['amount as a string', { ...ok, amount: '1000' }],
    ['amount 1.5', { ...ok, amount: 1.5 }],
    ['amount 0', { ...ok, amount: 0 }],
    ['negative amount', { ...ok, amount: -1_000 }],
    ['amount over MAX_AMOUNT_WON', { ...ok, amount: max + 1 }],
    ['amount null', { ...ok, amount: null }],
    ['amount true', { ...ok, amount: true }],
    ['same account on both sides', { ...ok, toAccountId: kim.accountId }],
    ['memo of 101 characters', { ...ok, memo: 'm'.repeat(101) }],
    ['memo as a number', { ...ok, memo: 42 }],
    ['unknown extra field', { ...ok, currency: 'USD' }],
    ['missing fromAccountId', noFrom],
    ['missing toAccountId', noTo],
    ['missing amount', noAmount],
    ['account id as a string', { ...ok, toAccountId: String(lee.accountId) }],
    ['account id 0', { ...ok, toAccountId: 0 }],
    ['fractional account id', { ...ok, toAccountId: 1.5 }],
    ['empty object', {}],
  ];
  for (const [what, json] of bad) assertProblem(await postTransfer(ctx, kim.token, json), 400, what);
  assertProblem(await call(ctx, 'POST', '/transfers', { token: kim.token, raw: '{"fromAccountId": 1, "amount": ' }), 400, 'malformed JSON');
  assertProblem(await call(ctx, 'POST', '/transfers', { token: kim.token }), 400, 'no body at all');
  run(ctx.bank, 10_000);
  assert.is(transferCount(ctx), 0);
  assert.is(await balanceOf(ctx, kim.accountId), 100_000);
  assert.is(coreBalanceOf(ctx, kim.accountId), 100_000);
  assertInvariants(ctx.bank);
});

test('the Bearer scheme name is case-insensitive, as HTTP says', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 0);
  for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
    assertStatus(await call(ctx, 'GET', '/me', { headers: { Authorization: `${scheme} ${kim.token}` } }), 200, scheme);
  }
});

test('a memo is counted in characters, not UTF-16 units, and may not hold control characters', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const emoji = '\u{1F4B8}'.repeat(100);
  const ok = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1, memo: emoji });
  assertStatus(ok, 201, '100 emoji are 100 characters');
  assert.is(ok.body.memo, emoji);
  const before = transferCount(ctx);
  for (const memo of [emoji + 'x', 'tab\there', 'nul\u0000']) {
    assertProblem(await postTransferNow(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1, memo }), 400, JSON.stringify(memo));
  }
  assert.is(transferCount(ctx), before, 'no refused memo stored a transfer');
});

test('a memo of exactly 100 characters and an amount of exactly MAX_AMOUNT_WON are accepted', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const memo = 'm'.repeat(100);
  const withMemo = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000, memo });
  assertStatus(withMemo, 201);
  assert.is(withMemo.body.memo, memo);
  const nullMemo = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000, memo: null });
  assertStatus(nullMemo, 201);
  assert.is(nullMemo.body.memo, null);
  const max = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: ctx.bank.settings.maxAmountWon });
  assertStatus(max, 201, 'the maximum passes the edge; only the core can say there is not enough');
  assert.is(max.body.state, 'failed');
  assert.is(max.body.reason, 'insufficient-funds');
  assertInvariants(ctx.bank);
});

test('a bad Idempotency-Key is refused with 400 before anything is stored', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const body = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 };
  for (const key of ['k'.repeat(256), 'two words', 'clé', 'tab\there']) {
    assertProblem(await postTransfer(ctx, kim.token, body, { 'Idempotency-Key': key }), 400, JSON.stringify(key.slice(0, 20)));
  }
  run(ctx.bank, 10_000);
  assert.is(transferCount(ctx), 0);
  assert.is(await balanceOf(ctx, kim.accountId), 100_000);

  const longest = await postTransfer(ctx, kim.token, body, { 'Idempotency-Key': 'k'.repeat(255) });
  assertStatus(longest, 201, 'a key of 255 visible characters is fine');
});

test('a body over 16 KiB is refused with 413, whether its Content-Length is honest or not', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const json = JSON.stringify({ fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 });
  const padTo = (bytes: number) => json.slice(0, -1) + ' '.repeat(bytes - json.length) + '}';
  const over = padTo(MAX_BODY_BYTES + 1);
  assert.is(Buffer.byteLength(over), MAX_BODY_BYTES + 1);

  const send = (raw: RequestBody, headers: Record<string, string>) =>
    drive(ctx.bank, call(ctx, 'POST', '/transfers', { token: kim.token, raw, headers: { 'Content-Type': 'application/json', ...headers } }));
  assertProblem(await send(over, { 'Content-Length': String(MAX_BODY_BYTES + 1) }), 413, 'honest Content-Length');
  assertProblem(await send(padTo(MAX_BODY_BYTES * 4), { 'Content-Length': '100' }), 413, 'a body larger than its Content-Length');
  assertProblem(await send(json, { 'Content-Length': '99999999' }), 413, 'a declared length over the limit');
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode(' '.repeat(1024)));
      controller.close();
    },
  });
  assertProblem(await send(stream, {}), 413, 'a streamed body with no Content-Length');
  assert.is(transferCount(ctx), 0);

  const exact = await send(padTo(MAX_BODY_BYTES), { 'Content-Length': String(MAX_BODY_BYTES) });
  assertStatus(exact, 201, 'a body of exactly 16 KiB is fine');
  assert.is(exact.body.state, 'succeeded');
  assertInvariants(ctx.bank);
});

test('a transfer the core refuses for lack of funds ends failed with insufficient-funds and moves no money', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const reply = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 10_001 });
  assertStatus(reply, 201);
  assert.is(reply.body.state, 'failed');
  assert.is(reply.body.reason, 'insufficient-funds');
  assert.type(reply.body.settledAt, 'string');
  run(ctx.bank);
  assert.is(await balanceOf(ctx, kim.accountId), 10_000);
  assert.is(await balanceOf(ctx, lee.accountId), 0);
  assert.is(coreBalanceOf(ctx, kim.accountId), 10_000);
  assertInvariants(ctx.bank);
});

test('a transfer to an account the core does not know ends failed with unknown-account and moves no money', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const reply = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: 999_999, amount: 1_000 });
  assertStatus(reply, 201);
  assert.is(reply.body.state, 'failed');
  assert.is(reply.body.reason, 'unknown-account');
  run(ctx.bank);
  assert.is(await balanceOf(ctx, kim.accountId), 10_000);
  assert.is(coreBalanceOf(ctx, kim.accountId), 10_000);
  const history = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token: kim.token });
  assert.equal(history.body.items.map((i: Json) => i.kind), ['opening'], 'nothing but the opening balance');
  assertInvariants(ctx.bank);
});

// ---------------------------------------------------------------------------------------
// GET /transfers/:id

test('a transfer reads back with its journal of every transition', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const sent = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 5_000 });
  const reply = await call(ctx, 'GET', `/transfers/${sent.body.id}`, { token: kim.token });
  assertStatus(reply, 200);
  const t = reply.body;
  assert.equal(keysOf(t), TRANSFER_KEYS);
  assert.equal(
    { id: t.id, fromAccountId: t.fromAccountId, toAccountId: t.toAccountId, amount: t.amount, memo: t.memo, state: t.state, reason: t.reason },
    { id: sent.body.id, fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 5_000, memo: null, state: 'succeeded', reason: null },
  );
  assert.match(t.requestedAt, ISO);
  assert.match(t.settledAt, ISO);
  assert.ok(t.settledAt >= t.requestedAt);
  assert.ok(t.journal.length >= 3);
  for (const step of t.journal) {
    assert.equal(keysOf(step), ['at', 'event', 'from', 'to']);
    assert.match(step.at, ISO);
    assert.type(step.event, 'string');
  }
  assert.equal({ event: t.journal[0].event, from: t.journal[0].from, to: t.journal[0].to }, { event: 'REQUEST', from: null, to: 'requested' });
  assert.is(t.journal[t.journal.length - 1].to, 'succeeded');
  for (let i = 1; i < t.journal.length; i++) assert.is(t.journal[i].from, t.journal[i - 1].to, 'each step starts where the last ended');
  assert.equal(t.audit, [], 'nothing happened to it beside its transitions');
});

test('an unknown transfer id is a 404 and a malformed one a 400', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 0);
  assertProblem(await call(ctx, 'GET', '/transfers/tr_doesnotexist', { token: kim.token }), 404);
  for (const id of ['abc', 'tr_', `tr_${'a'.repeat(41)}`, 'tr_a.b', 'TR_abc', '123', 'tr_%00', 'tr_%E0%A4%A']) {
    assertProblem(await call(ctx, 'GET', `/transfers/${id}`, { token: kim.token }), 400, id);
  }
});

// ---------------------------------------------------------------------------------------
// GET /accounts/:id

test('an account\'s balance is the channel\'s copy and never asks the core', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  // The log holds the deposit back, so the core and the channel disagree for a minute; and any
  // request toward the core would use up the queued request faults.
  ctx.bank.faults.add({ pipe: 'log', action: 'delay', count: 10, delayMs: 60_000 });
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 5, delayMs: 0 });
  assertStatus(await admin(ctx, 'POST', '/admin/deposits', { json: { accountId: kim.accountId, amount: 5_000, fromBank: 'Shinhan', fromName: 'Park' } }), 201);
  assert.is(coreBalanceOf(ctx, kim.accountId), 15_000);

  const before = await call(ctx, 'GET', `/accounts/${kim.accountId}`, { token: kim.token });
  assertStatus(before, 200);
  assert.equal(before.body, { id: kim.accountId, balance: 10_000 }, 'the channel has not heard of the deposit yet');
  const history = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token: kim.token });
  assert.is(history.body.items.length, 1, 'nor has its history');
  assert.equal(
    ctx.bank.faults.list().filter((f) => f.pipe === 'request'),
    [{ pipe: 'request', action: 'drop', count: 5, delayMs: 0 }],
    'nothing was sent to the core',
  );

  run(ctx.bank, 60_000);
  assert.equal((await call(ctx, 'GET', `/accounts/${kim.accountId}`, { token: kim.token })).body, { id: kim.accountId, balance: 15_000 });
});

test('an unknown account is a 404 and a malformed account id a 400', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 0);
  assertProblem(await call(ctx, 'GET', '/accounts/999999', { token: kim.token }), 404);
  assertProblem(await call(ctx, 'GET', '/accounts/999999/transactions', { token: kim.token }), 404);
  for (const id of ['abc', '0', '-1', '1.5', '12345678901234567890', '01', '1e3', '%00', '%E0%A4%A', ' 1']) {
    assertProblem(await call(ctx, 'GET', `/accounts/${id}`, { token: kim.token }), 400, id);
    assertProblem(await call(ctx, 'GET', `/accounts/${id}/transactions`, { token: kim.token }), 400, `${id} history`);
  }
});

// ---------------------------------------------------------------------------------------
// GET /accounts/:id/transactions

test('history pages newest first through every row, with no duplicate and no gap', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  const deposits = 44;
  for (let i = 1; i <= deposits; i++) {
    assertStatus(await admin(ctx, 'POST', '/admin/deposits', { json: { accountId: kim.accountId, amount: i, fromBank: 'Shinhan', fromName: 'Park' } }), 201);
  }
  run(ctx.bank);
  const rows = deposits + 1;

  const seen: Json[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query: string = cursor === null ? '?limit=7' : `?limit=7&cursor=${encodeURIComponent(cursor)}`;
    const page = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions${query}`, { token: kim.token });
    assertStatus(page, 200);
    assert.equal(keysOf(page.body), ['headCursor', 'items', 'nextCursor']);
    assert.ok(page.body.items.length <= 7);
    seen.push(...page.body.items);
    cursor = page.body.nextCursor;
    pages++;
    assert.ok(pages <= 10, 'paging ends');
  } while (cursor !== null);

  assert.is(pages, Math.ceil(rows / 7));
  assert.equal(seen.map((i) => i.seq), Array.from({ length: rows }, (_, i) => rows - i), 'every seq once, newest first');
  for (const item of seen) {
    assert.equal(keysOf(item), HISTORY_KEYS);
    assert.match(item.occurredAt, ISO);
  }
  const oldest = seen[seen.length - 1];
  assert.equal({ kind: oldest.kind, amount: oldest.amount, balanceAfter: oldest.balanceAfter }, { kind: 'opening', amount: 1_000, balanceAfter: 1_000 });
  for (let i = 0; i < seen.length - 1; i++) {
    assert.is(seen[i].balanceAfter, seen[i + 1].balanceAfter + seen[i].amount, `running balance at seq ${seen[i].seq}`);
  }
  assert.is(seen[0].balanceAfter, await balanceOf(ctx, kim.accountId));

  const firstPage = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token: kim.token });
  assert.is(firstPage.body.items.length, 20, 'the default page holds 20 rows');
  assert.type(firstPage.body.nextCursor, 'string');
  const largest = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?limit=100`, { token: kim.token });
  assertStatus(largest, 200);
  assert.is(largest.body.items.length, rows);
  assert.is(largest.body.nextCursor, null);
});

test('a transfer shows in both histories with a signed amount, and the sender reads it at once', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  ctx.bank.faults.add({ pipe: 'log', action: 'delay', count: 10, delayMs: 600_000 });
  const sent = await postTransfer(ctx, kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 30_000, memo: 'rent' });
  assertStatus(sent, 201);

  const out = (await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token: kim.token })).body.items[0];
  assert.equal(
    { kind: out.kind, amount: out.amount, balanceAfter: out.balanceAfter, memo: out.memo, transferId: out.transferId, seq: out.seq },
    { kind: 'transfer-out', amount: -30_000, balanceAfter: 70_000, memo: 'rent', transferId: sent.body.id, seq: 2 },
    'read your writes: the answer carried the posting, the log has not delivered it yet',
  );
  assert.type(out.counterparty, 'string');

  run(ctx.bank, 600_000);
  const into = (await call(ctx, 'GET', `/accounts/${lee.accountId}/transactions`, { token: lee.token })).body.items[0];
  assert.equal(
    { kind: into.kind, amount: into.amount, balanceAfter: into.balanceAfter, transferId: into.transferId, seq: into.seq },
    { kind: 'transfer-in', amount: 30_000, balanceAfter: 30_000, transferId: sent.body.id, seq: 1 },
  );
  const again = (await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions`, { token: kim.token })).body.items;
  assert.equal(again.map((i: Json) => i.seq), [2, 1], 'the same posting arriving from the log is not applied twice');
  assertInvariants(ctx.bank);
});

test('a page size outside 1 to 100, or not a number, is a 400', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  for (const limit of ['0', '101', 'x', '-1', '1.5', '', '1e2', '0010', '99999999999999999999', '%ZZ']) {
    assertProblem(await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?limit=${limit}`, { token: kim.token }), 400, `limit=${limit}`);
  }
  for (const limit of ['1', '100']) {
    assertStatus(await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?limit=${limit}`, { token: kim.token }), 200, `limit=${limit}`);
  }
});

test('a cursor the bank did not issue for this account is a 400', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  const lee = await openCustomer(ctx, 'Lee', 1_000);
  for (let i = 0; i < 3; i++) {
    await admin(ctx, 'POST', '/admin/deposits', { json: { accountId: lee.accountId, amount: 1, fromBank: 'Shinhan', fromName: 'Park' } });
    await admin(ctx, 'POST', '/admin/deposits', { json: { accountId: kim.accountId, amount: 1, fromBank: 'Shinhan', fromName: 'Park' } });
  }
  run(ctx.bank);
  const leePage = await call(ctx, 'GET', `/accounts/${lee.accountId}/transactions?limit=2`, { token: lee.token });
  const leeCursor: string = leePage.body.nextCursor;
  assert.type(leeCursor, 'string');

  const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const cursors: [string, string][] = [
    ['garbage', 'garbage!!'],
    ['base64 of garbage', Buffer.from('not json').toString('base64url')],
    ['another account\'s cursor', leeCursor],
    ['seq 0', forge({ a: kim.accountId, s: 0 })],
    ['negative seq', forge({ a: kim.accountId, s: -5 })],
    ['fractional seq', forge({ a: kim.accountId, s: 1.5 })],
    ['seq as a string', forge({ a: kim.accountId, s: '3' })],
    ['infinite seq', Buffer.from(`{"a":${kim.accountId},"s":1e400}`).toString('base64url')],
    ['a JSON null', forge(null)],
    ['a JSON array', forge([kim.accountId, 3])],
    ['too long', 'A'.repeat(201)],
  ];
  for (const [what, cursor] of cursors) {
    const reply = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?cursor=${encodeURIComponent(cursor)}`, { token: kim.token });
    assertProblem(reply, 400, what);
  }
  const own = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?limit=2`, { token: kim.token });
  const next = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?limit=2&cursor=${own.body.nextCursor}`, { token: kim.token });
  assertStatus(next, 200, 'her own cursor');
  assert.equal(next.body.items.map((i: Json) => i.seq), [2, 1]);
});

test('every cursor has exactly one accepted spelling: other spellings of the same bytes are a 400, in cursor= and since=', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  for (let i = 0; i < 3; i++) await admin(ctx, 'POST', '/admin/deposits', { json: { accountId: kim.accountId, amount: 1, fromBank: 'Shinhan', fromName: 'Park' } });
  run(ctx.bank);
  const page = await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?limit=2`, { token: kim.token });
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  /** Spellings of a base64url part that decode to the very same bytes (the last character's unused bits). */
  const respellings = (part: string) =>
    [...ALPHABET].map((c) => part.slice(0, -1) + c).filter((p) => p !== part && Buffer.from(p, 'base64url').equals(Buffer.from(part, 'base64url')));
  let tried = 0;
  for (const [param, cursor] of [['cursor', page.body.nextCursor], ['since', page.body.headCursor]] as const) {
    assertStatus(await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?${param}=${cursor}`, { token: kim.token }), 200, `${param} as issued`);
    const [body, tag] = (cursor as string).split('.') as [string, string];
    for (const other of [...respellings(tag).map((t) => `${body}.${t}`), ...respellings(body).map((b) => `${b}.${tag}`)]) {
      tried++;
      assertProblem(await call(ctx, 'GET', `/accounts/${kim.accountId}/transactions?${param}=${other}`, { token: kim.token }), 400, `${param}=${other}`);
    }
  }
  assert.ok(tried >= 2 * 15, `${tried} other spellings tried`);
});

// ---------------------------------------------------------------------------------------
// Hostile input: always a 4xx problem, never a 500, never money moved

test('hostile bodies get a 4xx problem, never a 500, and move no money', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const from = kim.accountId;
  const to = lee.accountId;
  const bodies: [string, RequestBody][] = [
    ['deeply nested arrays', '['.repeat(8_000) + ']'.repeat(8_000)],
    ['deeply nested objects', '{"a":'.repeat(2_500) + '1' + '}'.repeat(2_500)],
    ['a JSON array', `[{"fromAccountId":${from},"toAccountId":${to},"amount":1}]`],
    ['a JSON null', 'null'],
    ['a JSON string', '"transfer"'],
    ['a JSON number', '1'],
    ['a JSON boolean', 'true'],
    ['an empty body', ''],
    ['whitespace', '   \n'],
    ['amount 1e400', `{"fromAccountId":${from},"toAccountId":${to},"amount":1e400}`],
    ['amount -1e400', `{"fromAccountId":${from},"toAccountId":${to},"amount":-1e400}`],
    ['amount a huge integer', `{"fromAccountId":${from},"toAccountId":${to},"amount":123456789012345678901234567890}`],
    ['amount a huge integer string', `{"fromAccountId":${from},"toAccountId":${to},"amount":"123456789012345678901234567890"}`],
    ['amount 1e-400', `{"fromAccountId":${from},"toAccountId":${to},"amount":1e-400}`],
    ['account id 1e400', `{"fromAccountId":1e400,"toAccountId":${to},"amount":1}`],
    ['account id past the safe integers', `{"fromAccountId":${from},"toAccountId":9007199254740993,"amount":1}`],
    ['NaN', `{"fromAccountId":${from},"toAccountId":${to},"amount":NaN}`],
    ['a __proto__ key', `{"fromAccountId":${from},"toAccountId":${to},"amount":1,"__proto__":{"amount":2}}`],
    ['a constructor key', `{"fromAccountId":${from},"toAccountId":${to},"amount":1,"constructor":{"prototype":{}}}`],
    ['a byte-order mark', `\uFEFF{"fromAccountId":${from},"toAccountId":${to},"amount":1}`],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0xfd, 0x7d])],
    ['a NUL byte', `{"fromAccountId":${from},"toAccountId":${to},"amount":1}\u0000`],
    ['trailing garbage', `{"fromAccountId":${from},"toAccountId":${to},"amount":1} {}`],
    ['a form body', `fromAccountId=${from}&toAccountId=${to}&amount=1`],
  ];
  const paths = ['/transfers', '/admin/customers', `/admin/customers/${kim.customerId}/accounts`, '/admin/deposits', '/admin/faults', '/admin/restart'];
  for (const path of paths) {
    const token = path === '/transfers' ? kim.token : ADMIN_TOKEN;
    for (const [what, raw] of bodies) {
      const reply = await drive(ctx.bank, call(ctx, 'POST', path, { token, raw, headers: { 'Content-Type': 'application/json' } }));
      assertClientError(reply, `${what} to ${path}`);
    }
  }
  run(ctx.bank, 10_000);
  assert.is(transferCount(ctx), 0);
  assert.is(ctx.bank.faults.size, 0);
  assert.is(coreBalanceOf(ctx, kim.accountId), 100_000);
  assert.is(await balanceOf(ctx, kim.accountId), 100_000);
  assert.is((await call(ctx, 'GET', '/me', { token: kim.token })).body.accounts.length, 1);
  assertInvariants(ctx.bank);
});

test('hostile paths, query strings and headers get a 4xx problem, never a 500', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const history = `/accounts/${kim.accountId}/transactions`;
  const gets = [
    '/accounts/%00',
    '/accounts/%',
    `/accounts/${'9'.repeat(400)}`,
    `/accounts/${kim.accountId}%2F..%2F${lee.accountId}`,
    `${history}?limit=%E0%A4%A`,
    `${history}?cursor=%E0%A4%A`,
    `${history}?cursor=`,
    `${history}?cursor=${'A'.repeat(10_000)}`,
    '/transfers/%',
    `/transfers/tr_${'a'.repeat(5_000)}`,
    '/machines/%E0%A4%A',
  ];
  for (const path of gets) assertClientError(await call(ctx, 'GET', path, { token: kim.token }), path.slice(0, 60));

  const body = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1 };
  const headerSets: Record<string, string>[] = [
    { 'Idempotency-Key': 'k'.repeat(10_000) },
    { 'Idempotency-Key': '\u00ff\u00fe' },
    { Authorization: `Bearer ${'x'.repeat(10_000)}` },
    { Authorization: 'Bearer \u00e9\u00e9' },
    { 'Idempotency-Key': ' ' },
  ];
  for (const headers of headerSets) {
    const token = 'Authorization' in headers ? null : kim.token;
    const reply = await drive(ctx.bank, call(ctx, 'POST', '/transfers', { token, json: body, headers }));
    assertClientError(reply, JSON.stringify(headers).slice(0, 60));
  }
  run(ctx.bank, 10_000);
  assert.is(transferCount(ctx), 0);
  assert.is(await balanceOf(ctx, kim.accountId), 1_000);
});

test('every error answer has exactly the problem+json fields, plus named extras', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 100_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const unauthorized = await call(ctx, 'GET', '/me');
  assert.equal(keysOf(unauthorized.body), PROBLEM_KEYS);
  assert.equal(keysOf((await call(ctx, 'GET', `/accounts/${lee.accountId}`, { token: kim.token })).body), PROBLEM_KEYS);
  assert.equal(keysOf((await call(ctx, 'GET', '/accounts/abc', { token: kim.token })).body), PROBLEM_KEYS);
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const body = { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1 };
  await postTransferNow(ctx, kim.token, body);
  const busy = await postTransferNow(ctx, kim.token, body);
  assert.equal(keysOf(busy.body), [...PROBLEM_KEYS, 'inFlightTransferId'].sort());
  run(ctx.bank, 60_000);
});

test.run();
