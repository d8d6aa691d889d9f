/**
 * GET /transfers/:id/stream (server-sent events, one per committed transition) and the
 * pages that use it: who may watch, how the token travels without a header, and what
 * arrives, over a real bank on virtual time with app.request().
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp, type App } from '../../src/server/app.ts';
import { CONTENT_SECURITY_POLICY } from '../../src/server/routes/web.ts';
import { MAX_STREAMS_PER_CUSTOMER } from '../../src/server/routes/transfer-stream.ts';
import { createdId, makeBank, openCustomer, run, transfer, type TestBank, type TestCustomer, drivenApp } from '../helpers.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0001';
type Ctx = { bank: TestBank; app: App; webDir: string; kim: TestCustomer; lee: TestCustomer };
const test = suite<Ctx>('transfer stream and pages', {} as Ctx);

test.before.each((ctx) => {
  ctx.bank = makeBank();
  // A stand-in build: these tests are about routing and auth, the browser tests use the real one.
  ctx.webDir = mkdtempSync(join(tmpdir(), 'scrollbank-web-'));
  mkdirSync(join(ctx.webDir, 'assets'));
  writeFileSync(join(ctx.webDir, 'index.html'), '<meta data-cutoff-ms="{{cutoffMs}}" data-response-timeout-ms="{{responseTimeoutMs}}">');
  writeFileSync(join(ctx.webDir, 'viz.html'), '<main id="viz"></main>');
  writeFileSync(join(ctx.webDir, 'assets', 'viz.js'), 'export {};');
  ctx.app = drivenApp(ctx.bank, createApp({ bank: ctx.bank, adminToken: ADMIN_TOKEN, web: { webDir: ctx.webDir }, stream: { keepAliveMs: 20, lingerMs: 0 } }));
  ctx.kim = openCustomer(ctx.bank, 'Kim', 100_000);
  ctx.lee = openCustomer(ctx.bank, 'Lee', 0);
});
test.after.each((ctx) => {
  ctx.bank.dispose();
  rmSync(ctx.webDir, { recursive: true, force: true });
});

type SseEvent = { event: string; id: string | null; data: any };

/** Reads server-sent events until the stream ends, moving virtual time between reads. */
async function readEvents(ctx: Ctx, response: Response, stepMs = 100, maxReads = 200): Promise<SseEvent[]> {
  assert.is(response.status, 200);
  assert.ok(response.headers.get('content-type')?.startsWith('text/event-stream'));
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = '';
  for (let reads = 0; reads < maxReads; reads++) {
    const next = reader.read();
    // Let time pass while the stream waits: the bank runs on virtual time.
    const timer = setInterval(() => run(ctx.bank, stepMs), 5);
    const { done, value } = await next.finally(() => clearInterval(timer));
    if (done) return events;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split('\n').filter((l) => !l.startsWith(':') && l !== '');
      if (lines.length === 0) continue;
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? null;
      events.push({ event: field('event') ?? 'message', id: field('id'), data: JSON.parse(field('data') ?? 'null') });
    }
  }
  throw new Error(`the stream did not end after ${maxReads} reads`);
}

const stream = (ctx: Ctx, id: string, init: { query?: string; headers?: Record<string, string> } = {}) =>
  ctx.app.request(`/transfers/${id}/stream${init.query ?? ''}`, { headers: init.headers ?? {} });

async function problem(response: Response, status: number): Promise<{ detail: string }> {
  assert.is(response.status, status);
  assert.ok(response.headers.get('content-type')?.startsWith('application/problem+json'), response.headers.get('content-type') ?? '');
  return response.json();
}

test('the stream sends the transfer, one event per committed transition, then end, and closes', async (ctx) => {
  ctx.bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
  ctx.bank.faults.add({ pipe: 'log', action: 'delay', count: 3, delayMs: 50 });
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank); // the turn commits: stored, then sent (its answer lost, its log records slow)
  const events = await readEvents(ctx, await stream(ctx, id, { query: `?access_token=${ctx.kim.token}` }));
  assert.equal(events.map((e) => e.event), ['transfer', 'transition', 'end']);
  const [first, step] = events;
  assert.is(first!.data.id, id);
  assert.is(first!.data.state, 'sent');
  assert.equal(first!.data.journal.map((j: { event: string }) => j.event), ['REQUEST', 'DISPATCH']);
  assert.is(first!.id, '2');
  assert.equal({ ...step!.data, at: undefined }, { at: undefined, event: 'EXECUTED (log)', from: 'sent', to: 'succeeded', reason: null });
  assert.is(step!.id, '3', 'event ids count journal rows');
  assert.is(ctx.bank.channel.transfer(id)!.journal.length, 3);
});

test('a transfer that fails carries its reason on the last transition', async (ctx) => {
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank); // the turn commits: stored, then sent (and lost)
  const events = await readEvents(ctx, await stream(ctx, id, { headers: { Authorization: `Bearer ${ctx.kim.token}` } }));
  const transitions = events.filter((e) => e.event === 'transition').map((e) => `${e.data.from}->${e.data.to}`);
  assert.equal(transitions, ['sent->timedOut', 'timedOut->querying', 'querying->failed']);
  assert.is(events.at(-2)!.data.reason, 'not-received');
  assert.is(events.at(-1)!.event, 'end');
});

test('a settled transfer streams its final state and ends at once', async (ctx) => {
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank);
  const events = await readEvents(ctx, await stream(ctx, id, { headers: { Cookie: `scrollbank_token=${ctx.kim.token}` } }));
  assert.equal(events.map((e) => e.event), ['transfer', 'end']);
  assert.is(events[0]!.data.state, 'succeeded');
});

test('the admin may watch any transfer', async (ctx) => {
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank);
  const events = await readEvents(ctx, await stream(ctx, id, { query: `?access_token=${ADMIN_TOKEN}` }));
  assert.is(events[0]!.data.state, 'succeeded');
});

test('watching needs a token (401), and the owner or the admin: another customer gets the 404 of a transfer that does not exist', async (ctx) => {
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  const missing = await stream(ctx, id);
  await problem(missing, 401);
  assert.is(missing.headers.get('www-authenticate'), 'Bearer');
  await problem(await stream(ctx, id, { query: '?access_token=not-a-token-anyone-has' }), 401);
  await problem(await stream(ctx, id, { headers: { Cookie: 'scrollbank_token=not-a-token-anyone-has' } }), 401);
  const other = await problem(await stream(ctx, id, { query: `?access_token=${ctx.lee.token}` }), 404);
  assert.is(other.detail, `no transfer ${id}`, 'word for word what an unknown id gets');
  await problem(await stream(ctx, 'tr_doesnotexist', { query: `?access_token=${ctx.kim.token}` }), 404);
});

test('one customer holds at most MAX_STREAMS_PER_CUSTOMER streams (429 past it), and everyone else still gets theirs', async (ctx) => {
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 2, delayMs: 0 });
  const kims = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  const lees = createdId(transfer(ctx.bank, openCustomer(ctx.bank, 'Park', 5_000), ctx.kim, 1_000));
  run(ctx.bank); // both stored and sent, and both requests lost: they stay unfinished while no time passes
  const open: Response[] = [];
  try {
    for (let i = 0; i < MAX_STREAMS_PER_CUSTOMER; i++) {
      const r = await stream(ctx, kims, { query: `?access_token=${ctx.kim.token}` });
      assert.is(r.status, 200, `stream ${i + 1}`);
      open.push(r);
    }
    const over = await problem(await stream(ctx, kims, { query: `?access_token=${ctx.kim.token}` }), 429);
    assert.match(over.detail, `at most ${MAX_STREAMS_PER_CUSTOMER}`);
    const park = ctx.bank.channel.readModel().allTransfers().find((t) => t.id === lees)!.customerId;
    const parkToken = ctx.bank.channel.issueToken(park);
    run(ctx.bank);
    const others = [await stream(ctx, lees, { query: `?access_token=${parkToken}` }), await stream(ctx, kims, { query: `?access_token=${ADMIN_TOKEN}` })];
    open.push(...others);
    assert.equal(others.map((r) => r.status), [200, 200], 'another customer and the admin');
  } finally {
    await Promise.all(open.map((r) => r.body?.cancel()));
  }
  // Hung up: the customer may open streams again.
  const again = await stream(ctx, kims, { query: `?access_token=${ctx.kim.token}` });
  assert.is(again.status, 200);
  await again.body?.cancel();
});

test('the global bound on open streams answers 503 past it, for customers and the admin, and frees up as streams close', async (ctx) => {
  const app = drivenApp(ctx.bank, createApp({ bank: ctx.bank, adminToken: ADMIN_TOKEN, stream: { keepAliveMs: 20, lingerMs: 0, maxOpen: 2 } }));
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank);
  const open = [await app.request(`/transfers/${id}/stream?access_token=${ctx.kim.token}`), await app.request(`/transfers/${id}/stream?access_token=${ADMIN_TOKEN}`)];
  assert.equal(open.map((r) => r.status), [200, 200]);
  const over = await problem(await app.request(`/transfers/${id}/stream?access_token=${ADMIN_TOKEN}`), 503);
  assert.match(over.detail, 'at most 2 transfer streams');
  await open[0]!.body?.cancel();
  await new Promise((r) => setTimeout(r, 50));
  const again = await app.request(`/transfers/${id}/stream?access_token=${ctx.kim.token}`);
  assert.is(again.status, 200, 'a closed stream frees its place');
  await Promise.all([open[1]!.body?.cancel(), again.body?.cancel()]);
});

test('revoking a customer\'s tokens ends the streams they opened with a 401 problem event, and a reconnect gets a 401', async (ctx) => {
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank);
  const watching = await stream(ctx, id, { query: `?access_token=${ctx.kim.token}` });
  const admins = await stream(ctx, id, { query: `?access_token=${ADMIN_TOKEN}` });
  assert.is(watching.status, 200);
  ctx.bank.channel.revokeTokens(ctx.kim.customerId);
  run(ctx.bank); // the revocation commits, and the stream learns of it
  const events = await readEvents(ctx, watching, 0, 20);
  assert.equal(events.map((e) => e.event), ['transfer', 'problem']);
  assert.is(events[1]!.data.status, 401);
  assert.match(events[1]!.data.detail, 'revoked');
  await problem(await stream(ctx, id, { query: `?access_token=${ctx.kim.token}` }), 401);
  // The admin's stream is not the customer's: it goes on until the transfer settles.
  const adminEvents = await readEvents(ctx, admins);
  assert.is(adminEvents.at(-1)!.event, 'end');
});

test('a stream whose token is revoked before its first event gets only the 401 problem, nothing of the transfer', async (ctx) => {
  ctx.bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank);
  // A batch is open (another customer's new token), so the stream's first event waits for its
  // commit; the revocation joins that batch. The app is not driven here: time stands still.
  ctx.bank.channel.issueToken(ctx.lee.customerId);
  const still = createApp({ bank: ctx.bank, adminToken: ADMIN_TOKEN, stream: { keepAliveMs: 20, lingerMs: 0 } });
  const answer = Promise.resolve(still.request(`/transfers/${id}/stream?access_token=${ctx.kim.token}`));
  ctx.bank.channel.revokeTokens(ctx.kim.customerId);
  run(ctx.bank); // the batch commits: the revocation, then the stream's first event may leave
  const events = await readEvents(ctx, await answer, 0, 20);
  assert.equal(events.map((e) => e.event), ['problem']);
  assert.is(events[0]!.data.status, 401);
});

test('a malformed Authorization header is refused even when a good cookie comes with it', async (ctx) => {
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  await problem(await stream(ctx, id, { headers: { Authorization: 'Basic abc', Cookie: `scrollbank_token=${ctx.kim.token}` } }), 401);
});

test('the query token and cookie open only the read-only browser routes, never the API', async (ctx) => {
  await problem(await ctx.app.request(`/me?access_token=${ctx.kim.token}`), 401);
  await problem(await ctx.app.request('/me', { headers: { Cookie: `scrollbank_token=${ctx.kim.token}` } }), 401);
  const post = await ctx.app.request(`/transfers?access_token=${ctx.kim.token}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Cookie: `scrollbank_token=${ctx.kim.token}` },
    body: JSON.stringify({ fromAccountId: ctx.kim.accountId, toAccountId: ctx.lee.accountId, amount: 1 }),
  });
  await problem(post, 401);
  assert.is(ctx.bank.channel.readModel().allTransfers().length, 0, 'no transfer was made');
});

test('the bank page and /viz are served with a policy that allows nothing from outside', async (ctx) => {
  for (const path of ['/', '/viz']) {
    const response = await ctx.app.request(path);
    assert.is(response.status, 200, path);
    assert.ok(response.headers.get('content-type')?.startsWith('text/html'), path);
    assert.is(response.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    assert.is(response.headers.get('referrer-policy'), 'no-referrer');
  }
  assert.ok(!/https?:/.test(CONTENT_SECURITY_POLICY), 'no outside origin is allowed');
  const index = await (await ctx.app.request('/')).text();
  assert.match(index, `data-cutoff-ms="${ctx.bank.settings.cutoffMs}"`);
  assert.match(index, `data-response-timeout-ms="${ctx.bank.settings.responseTimeoutMs}"`);
});

test('/viz/transfers/:id is for the owner or the admin: a token in the query is traded for the cookie (303 to the clean address)', async (ctx) => {
  const id = createdId(transfer(ctx.bank, ctx.kim, ctx.lee, 1_000));
  run(ctx.bank);
  const traded = await ctx.app.request(`/viz/transfers/${id}?access_token=${ctx.kim.token}`);
  assert.is(traded.status, 303);
  assert.is(traded.headers.get('location'), `/viz/transfers/${id}`, 'the address without the token');
  assert.is(traded.headers.get('set-cookie'), `scrollbank_token=${encodeURIComponent(ctx.kim.token)}; Path=/; SameSite=Strict`);
  assert.is((await ctx.app.request(`/viz/transfers/${id}`, { headers: { Cookie: `scrollbank_token=${ctx.kim.token}` } })).status, 200);
  assert.is((await ctx.app.request(`/viz/transfers/${id}`, { headers: { Cookie: `scrollbank_token=${ADMIN_TOKEN}` } })).status, 200);
  // A bad token in the query is dropped from the address too, and sets nothing.
  const bad = await ctx.app.request(`/viz/transfers/${id}?access_token=not-a-token-anyone-has`);
  assert.equal([bad.status, bad.headers.get('location'), bad.headers.get('set-cookie')], [303, `/viz/transfers/${id}`, null]);
  // A person without a token, or with a bad one, gets a page that asks to sign in, still a 401.
  for (const headers of [{}, { Cookie: 'scrollbank_token=not-a-token-anyone-has' }] as Record<string, string>[]) {
    const signIn = await ctx.app.request(`/viz/transfers/${id}`, { headers });
    assert.is(signIn.status, 401);
    assert.match(signIn.headers.get('content-type') ?? '', 'text/html');
    assert.is(signIn.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    const html = await signIn.text();
    assert.match(html, `<form method="get" action="/viz/transfers/${id}">`);
    assert.match(html, 'name="access_token"');
    assert.not.match(html, 'not-a-token-anyone-has', 'the bad token is not echoed');
  }
  assert.is((await problem(await ctx.app.request(`/viz/transfers/${id}`, { headers: { Cookie: `scrollbank_token=${ctx.lee.token}` } }), 404)).detail, `no transfer ${id}`);
  await problem(await ctx.app.request('/viz/transfers/tr_nope', { headers: { Cookie: `scrollbank_token=${ctx.kim.token}` } }), 404);
});

test('only the built assets are served; anything else is a 404 problem, a missing build a 503 problem', async (ctx) => {
  const js = await ctx.app.request('/assets/viz.js');
  assert.is(js.status, 200);
  assert.ok(js.headers.get('content-type')?.startsWith('text/javascript'));
  await problem(await ctx.app.request('/assets/..%2Fviz.html'), 404);
  await problem(await ctx.app.request('/assets/secret.txt'), 404);
  await problem(await ctx.app.request('/assets/chunk-ABCDEFGH.js'), 404);
  writeFileSync(join(ctx.webDir, 'assets', 'chunk-ABCDEFGH.js'), 'export const elk = 1;');
  assert.is((await ctx.app.request('/assets/chunk-ABCDEFGH.js')).status, 200, 'a chunk the build made is served');
  const missing = await problem(await ctx.app.request('/assets/bank.js'), 503);
  assert.match(missing.detail, 'npm run build:web');
});

test.run();
