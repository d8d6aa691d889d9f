/**
 * The paging contract of GET /accounts/:id/transactions over app.request(): keyset pages
 * while rows land, pull to refresh with since, signed cursors, and the admin's reconciliation.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp, type App } from '../../src/server/app.ts';
import { historyItemJson } from '../../src/server/serialize.ts';
import { drive, makeBank, run, type TestBank, drivenApp } from '../helpers.ts';

const ADMIN_TOKEN = 'admin-token-for-history-tests';

type Ctx = { bank: TestBank; app: App };
const test = suite<Ctx>('history paging', {} as Ctx);

test.before.each((ctx) => {
  ctx.bank = makeBank();
  ctx.app = drivenApp(ctx.bank, createApp({ bank: ctx.bank, adminToken: ADMIN_TOKEN }));
});
test.after.each((ctx) => ctx.bank.dispose());

type Json = any;
type Reply = { status: number; contentType: string | null; body: Json };
type Customer = { token: string; accountId: number };

async function get(ctx: Ctx, path: string, token: string): Promise<Reply> {
  const r = await ctx.app.request(path, { headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, contentType: r.headers.get('content-type'), body: await r.json() };
}

async function post(ctx: Ctx, path: string, token: string, json: unknown = {}): Promise<Reply> {
  const r = await ctx.app.request(path, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(json) });
  return { status: r.status, contentType: r.headers.get('content-type'), body: await r.json() };
}

async function openCustomer(ctx: Ctx, name: string, openingBalance: number): Promise<Customer> {
  const r = await post(ctx, '/admin/customers', ADMIN_TOKEN, { name, openingBalance });
  assert.is(r.status, 201);
  run(ctx.bank);
  return { token: r.body.token, accountId: r.body.account.id };
}

async function deposit(ctx: Ctx, c: Customer, amount: number): Promise<void> {
  const r = await post(ctx, '/admin/deposits', ADMIN_TOKEN, { accountId: c.accountId, amount, fromBank: 'Shinhan', fromName: 'Park' });
  assert.is(r.status, 201);
}

async function deposits(ctx: Ctx, c: Customer, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await deposit(ctx, c, i + 1);
  run(ctx.bank);
}

const history = (c: Customer, query = '') => `/accounts/${c.accountId}/transactions${query}`;
const seqs = (r: Reply): number[] => r.body.items.map((i: Json) => i.seq);
const q = encodeURIComponent;

function assertProblem(r: Reply, status: number, what: string): void {
  assert.is(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.ok(r.contentType?.startsWith('application/problem+json'), what);
  assert.is(r.body.status, status, what);
  assert.type(r.body.detail, 'string', what);
}

test('rows that land while a customer scrolls never appear twice, and none that existed is skipped', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  await deposits(ctx, kim, 49); // seq 1..50
  const seen: number[] = [];
  let page = await get(ctx, history(kim, '?limit=8'), kim.token);
  for (let n = 0; ; n++) {
    assert.is(page.status, 200);
    seen.push(...seqs(page));
    if (page.body.nextCursor === null) break;
    assert.ok(n < 20, 'scrolling ends');
    await deposits(ctx, kim, 3); // new rows land between every two pages
    page = await get(ctx, history(kim, `?limit=8&cursor=${q(page.body.nextCursor)}`), kim.token);
  }
  assert.equal(seen, Array.from({ length: 50 }, (_, i) => 50 - i), 'exactly the 50 rows that existed, newest first, once each');
});

test('since returns the rows newer than a head cursor, oldest first, in bounded pages with hasMore', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  await deposits(ctx, kim, 4); // seq 1..5
  const first = await get(ctx, history(kim, '?limit=3'), kim.token);
  assert.equal(seqs(first), [5, 4, 3]);
  assert.type(first.body.headCursor, 'string');

  const nothing = await get(ctx, history(kim, `?since=${q(first.body.headCursor)}`), kim.token);
  assert.equal({ items: nothing.body.items, hasMore: nothing.body.hasMore }, { items: [], hasMore: false });
  assert.is(nothing.body.headCursor, first.body.headCursor, 'with nothing new the head stays put');

  await deposits(ctx, kim, 7); // seq 6..12
  const newer = await get(ctx, history(kim, `?since=${q(first.body.headCursor)}&limit=5`), kim.token);
  assert.equal(seqs(newer), [6, 7, 8, 9, 10]);
  assert.is(newer.body.hasMore, true);
  assert.equal(Object.keys(newer.body).sort(), ['hasMore', 'headCursor', 'items']);
  const rest = await get(ctx, history(kim, `?since=${q(newer.body.headCursor)}&limit=5`), kim.token);
  assert.equal(seqs(rest), [11, 12]);
  assert.is(rest.body.hasMore, false);
  // A head cursor also works for scrolling down from it.
  const below = await get(ctx, history(kim, `?cursor=${q(rest.body.headCursor)}&limit=2`), kim.token);
  assert.equal(seqs(below), [11, 10]);
});

test('an empty history has a head cursor from which since finds the first rows', async (ctx) => {
  const lee = await openCustomer(ctx, 'Lee', 0);
  const empty = await get(ctx, history(lee), lee.token);
  assert.equal({ items: empty.body.items, nextCursor: empty.body.nextCursor }, { items: [], nextCursor: null });
  assert.type(empty.body.headCursor, 'string');
  await deposits(ctx, lee, 2);
  const refreshed = await get(ctx, history(lee, `?since=${q(empty.body.headCursor)}`), lee.token);
  assert.equal(seqs(refreshed), [1, 2]);
});

test('every cursor the server did not issue for this account is a 400, for cursor and for since', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  const lee = await openCustomer(ctx, 'Lee', 1_000);
  await deposits(ctx, kim, 5);
  await deposits(ctx, lee, 5);
  const own = (await get(ctx, history(kim, '?limit=2'), kim.token)).body.nextCursor as string;
  const leeCursor = (await get(ctx, history(lee, '?limit=2'), lee.token)).body.nextCursor as string;
  const [body, tag] = own.split('.') as [string, string];
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const otherBody = Buffer.from(`${kim.accountId}.1`).toString('base64url');
  const bad: [string, string][] = [
    ['garbage', 'garbage!!'],
    ['empty', ''],
    ['no signature', body],
    ['a tampered signature', `${body}.${flip(tag, 3)}`],
    ['a tampered body', `${otherBody}.${tag}`],
    ["another account's cursor", leeCursor],
    ['a signature moved onto a re-encoded body', `${Buffer.from(`${kim.accountId}.0${Buffer.from(body, 'base64url').toString().split('.')[1]}`).toString('base64url')}.${tag}`],
    ['too long', `${own}${'A'.repeat(100)}`],
  ];
  for (const [what, cursor] of bad) {
    assertProblem(await get(ctx, history(kim, `?cursor=${q(cursor)}`), kim.token), 400, `cursor: ${what}`);
    assertProblem(await get(ctx, history(kim, `?since=${q(cursor)}`), kim.token), 400, `since: ${what}`);
  }
  assertProblem(await get(ctx, history(kim, `?cursor=${q(own)}&since=${q(own)}`), kim.token), 400, 'cursor with since');
  assert.is((await get(ctx, history(kim, `?cursor=${q(own)}`), kim.token)).status, 200, 'the genuine cursor still works');
});

test('limit is 1..100, default 20; anything else is a 400', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  await deposits(ctx, kim, 120);
  assert.is((await get(ctx, history(kim), kim.token)).body.items.length, 20);
  assert.is((await get(ctx, history(kim, '?limit=1'), kim.token)).body.items.length, 1);
  assert.is((await get(ctx, history(kim, '?limit=100'), kim.token)).body.items.length, 100);
  for (const limit of ['0', '101', '-1', '1.5', 'ten', '', '1e2', '0x10', '007']) {
    assertProblem(await get(ctx, history(kim, `?limit=${q(limit)}`), kim.token), 400, `limit=${limit}`);
    assertProblem(await get(ctx, history(kim, `?since=x&limit=${q(limit)}`), kim.token), 400, `since with limit=${limit}`);
  }
  assertProblem(await get(ctx, history(kim, '?offset=40'), kim.token), 400, 'an unknown parameter');
  const unknown = await get(ctx, history(kim, '?offset=40'), kim.token);
  assert.is(unknown.body.detail, 'query: Unrecognized key: "offset"', 'the detail names the query, not a body');
  assert.is((await get(ctx, '/accounts/abc/transactions', kim.token)).body.detail, 'account id: must be a positive integer id');
});

test('cursors stay valid across a restart: the key lives in the data directory', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  await deposits(ctx, kim, 5);
  const cursor = (await get(ctx, history(kim, '?limit=2'), kim.token)).body.nextCursor as string;
  ctx.bank.restart('channel');
  const again = drivenApp(ctx.bank, createApp({ bank: ctx.bank, adminToken: ADMIN_TOKEN }));
  const r = await again.request(history(kim, `?limit=2&cursor=${q(cursor)}`), { headers: { Authorization: `Bearer ${kim.token}` } });
  assert.is(r.status, 200);
  assert.equal(((await r.json()) as Json).items.map((i: Json) => i.seq), [4, 3]);
});

test('POST /admin/reconcile repairs a planted mismatch and reports it; GET /admin/reconcile shows the last report', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 1_000);
  await deposits(ctx, kim, 3);
  const none = await get(ctx, '/admin/reconcile', ADMIN_TOKEN);
  assertProblem(none, 404, 'no report before the first run');
  ctx.bank.channel.readModel().db.prepare('DELETE FROM history WHERE account_id = ? AND seq = 2').run(kim.accountId);

  const r = await drive(ctx.bank, post(ctx, '/admin/reconcile', ADMIN_TOKEN));
  assert.is(r.status, 200);
  assert.equal(
    { accountsChecked: r.body.accountsChecked, mismatches: r.body.mismatches, repaired: r.body.repaired, problems: r.body.problems },
    { accountsChecked: 1, mismatches: 1, repaired: 1, problems: [{ accountId: kim.accountId, problem: 'diverged' }] },
  );
  assert.type(r.body.tookMs, 'number');
  const last = await get(ctx, '/admin/reconcile', ADMIN_TOKEN);
  assert.is(last.status, 200);
  assert.equal(last.body, r.body);
  assert.equal(seqs(await get(ctx, history(kim), kim.token)), [4, 3, 2, 1]);
  assertProblem(await post(ctx, '/admin/reconcile', kim.token), 403, 'a customer may not reconcile');
  assertProblem(await get(ctx, '/admin/reconcile', kim.token), 403, 'nor read the report');
});

test('every served row is exactly the API shape of the stored row, whatever its kind, memo or time', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim "Quote" \\ 김민지 🙂', 1_000_000_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  const memos = ['점심 🍜', 'a "quoted" \\ back\\slash', '\u2028line\u2029sep', null];
  for (const [i, memo] of memos.entries()) {
    ctx.bank.time.advance(i * 333 + 7); // times with every kind of millisecond part
    const outcome = ctx.bank.channel.requestTransfer({ customerId: 1, fromAccountId: kim.accountId, toAccountId: lee.accountId, amountWon: 999_999 + i, memo, idempotencyKey: null });
    assert.is(outcome.kind, 'created');
    run(ctx.bank, 10);
  }
  await deposit(ctx, lee, 1);
  run(ctx.bank);
  for (const c of [kim, lee]) {
    const stored = ctx.bank.channel.readModel().allHistory(c.accountId).reverse().map(historyItemJson);
    const served = await get(ctx, history(c, '?limit=100'), ADMIN_TOKEN);
    assert.equal(served.body.items, stored);
    const refreshed = await get(ctx, history(c, `?since=${q(served.body.headCursor)}`), ADMIN_TOKEN);
    assert.equal(refreshed.body, { items: [], headCursor: served.body.headCursor, hasMore: false });
  }
  assert.ok(ctx.bank.channel.readModel().allHistory(kim.accountId).some((r) => r.occurredAt % 1000 !== 0), 'times with milliseconds were served');
});

test('a fault queued over HTTP hits transfer messages, not a reconciliation in between; messages: sync aims it at sync', async (ctx) => {
  const kim = await openCustomer(ctx, 'Kim', 10_000);
  const lee = await openCustomer(ctx, 'Lee', 0);
  assert.is((await post(ctx, '/admin/faults', ADMIN_TOKEN, { pipe: 'request', action: 'drop' })).status, 201);
  const report = await drive(ctx.bank, post(ctx, '/admin/reconcile', ADMIN_TOKEN));
  assert.is(report.status, 200);
  assert.ok(report.body.tookMs < 3_000, `no reconciliation request was dropped and asked again (${report.body.tookMs} ms)`);
  assert.equal(ctx.bank.faults.list().map((f) => f.messages), ['transfers'], 'the fault waits for a transfer');
  const sent = await drive(ctx.bank, post(ctx, '/transfers', kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1 }));
  assert.equal({ state: sent.body.state, reason: sent.body.reason }, { state: 'failed', reason: 'not-received' }, 'the transfer took it');

  assert.is((await post(ctx, '/admin/faults', ADMIN_TOKEN, { pipe: 'request', action: 'drop', messages: 'sync' })).status, 201);
  const again = await drive(ctx.bank, post(ctx, '/admin/reconcile', ADMIN_TOKEN));
  assert.ok(again.body.tookMs >= 3_000, `the reconciliation lost a request and asked again after its timeout (${again.body.tookMs} ms)`);
  assert.is(ctx.bank.faults.size, 0);
});

test.run();
