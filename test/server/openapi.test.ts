/**
 * GET /openapi.json against a real OpenAPI validator, against the README's API table, and
 * against the app: every (route, status) it documents is answered here at least once, and
 * every answer matches its documented schema. Then the document cannot drift from the code.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp } from '../../src/server/app.ts';
import { MAX_QUEUED_FAULTS } from '../../src/net/faults.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { MAX_STREAMS_PER_CUSTOMER } from '../../src/server/routes/transfer-stream.ts';
import { MAX_BODY_BYTES } from '../../src/server/schemas.ts';
import { drive, drivenApp, makeBank, openCustomer, run } from '../helpers.ts';
import { conformanceOf } from '../openapi-conformance.ts';

const ADMIN = 'admin-token-for-the-openapi-test';
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

async function documentOf() {
  const bank = makeBank();
  try {
    const response = await createApp({ bank, adminToken: ADMIN }).request('/openapi.json');
    assert.is(response.status, 200);
    return (await response.json()) as any;
  } finally {
    bank.dispose();
  }
}

test('the document is valid OpenAPI 3.1, by a real validator', async () => {
  const doc = await documentOf();
  assert.is(doc.openapi, '3.1.0');
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.ok(result.valid, JSON.stringify(result.errors, null, 2)?.slice(0, 2000));
});

test('it documents exactly the routes of the README, and the README exactly its routes', async () => {
  const doc = await documentOf();
  const inDoc = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) for (const method of Object.keys(item)) inDoc.add(`${method.toUpperCase()} ${path}`);
  const inReadme = new Set([...README.matchAll(/^\| `(GET|POST|DELETE) ([^`?]+)[^`]*` \|/gm)].map((m) => `${m[1]} ${m[2]!.replace(/:(\w+)/g, '{$1}')}`));
  assert.equal([...inReadme].filter((r) => !inDoc.has(r)).sort(), [], 'README routes missing from the document');
  assert.equal([...inDoc].filter((r) => !inReadme.has(r)).sort(), [], 'documented routes missing from the README');
});

test('security: bearer everywhere it is needed, and the cookie and access_token only on the two GET routes that take them', async () => {
  const doc = await documentOf();
  assert.equal(Object.keys(doc.components.securitySchemes).sort(), ['accessToken', 'bearer', 'cookie']);
  assert.equal(doc.components.securitySchemes.cookie, { type: 'apiKey', in: 'cookie', name: 'scrollbank_token', description: doc.components.securitySchemes.cookie.description });
  assert.is(doc.components.securitySchemes.accessToken.name, 'access_token');
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { security: Record<string, string[]>[]; responses: object }>>)) {
    for (const [method, op] of Object.entries(item)) {
      const schemes = op.security.flatMap((s) => Object.keys(s)).sort();
      const browser = method === 'get' && (path === '/transfers/{id}/stream' || path === '/viz/transfers/{id}');
      if (browser) assert.equal(schemes, ['accessToken', 'bearer', 'cookie'], path);
      else assert.ok(schemes.length === 0 || (schemes.length === 1 && schemes[0] === 'bearer'), `${method} ${path}: ${schemes}`);
      // A route that needs a token says what happens without one.
      if (schemes.length > 0) assert.ok('401' in op.responses, `${method} ${path} documents its 401`);
    }
  }
  const post = doc.paths['/transfers'].post;
  assert.equal(post.parameters.filter((p: { in: string }) => p.in === 'header').map((p: { name: string }) => p.name).sort(), ['Idempotency-Key', 'Prefer', 'X-Request-Id']);
  assert.equal(Object.keys(post.responses).sort(), ['200', '201', '202', '400', '401', '403', '409', '413', '422', '503']);
  for (const status of ['400', '409', '422', '503']) assert.ok('application/problem+json' in post.responses[status].content, status);
});

test('every documented status of every route is answered, and every answer matches its schema', async () => {
  const conformance = conformanceOf(await documentOf());
  const metrics = createMetrics();
  const bank = makeBank({ observer: metrics.observer });
  metrics.attach(bank);
  const webDir = mkdtempSync(join(tmpdir(), 'scrollbank-openapi-web-'));
  mkdirSync(join(webDir, 'assets'));
  writeFileSync(join(webDir, 'index.html'), '<p>{{cutoffMs}}</p>');
  writeFileSync(join(webDir, 'viz.html'), '<p>viz</p>');
  writeFileSync(join(webDir, 'assets', 'viz.js'), 'export {};');
  const app = drivenApp(bank, createApp({ bank, adminToken: ADMIN, metrics, web: { webDir }, stream: { keepAliveMs: 20, lingerMs: 0 } }));
  const streams: Response[] = [];
  try {
    const kim = openCustomer(bank, 'Kim', 1_000_000);
    const lee = openCustomer(bank, 'Lee', 1_000);
    type Call = { token?: string | null; json?: unknown; raw?: string; headers?: Record<string, string>; keepOpen?: boolean };
    const call = async (method: string, path: string, o: Call = {}) => {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token !== null) headers['Authorization'] = `Bearer ${o.token ?? ADMIN}`;
      const body = o.json !== undefined ? JSON.stringify(o.json) : o.raw;
      if (body !== undefined) headers['Content-Type'] ??= 'application/json';
      const response = await drive(bank, Promise.resolve(app.request(path, { method, headers, ...(body === undefined ? {} : { body }) })));
      if (o.keepOpen === true) {
        streams.push(response);
        conformance.check(method, path, response.status, response.headers.get('content-type'), null);
        return { status: response.status, body: null as any };
      }
      const text = await response.text();
      let parsed: unknown = text;
      if ((response.headers.get('content-type') ?? '').includes('json') && text !== '') parsed = JSON.parse(text);
      if (text === '') parsed = null;
      conformance.check(method, path, response.status, response.headers.get('content-type'), parsed);
      return { status: response.status, body: parsed as any };
    };
    const expect = async (status: number, method: string, path: string, o: Call = {}) => {
      const r = await call(method, path, o);
      assert.is(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)?.slice(0, 300)}`);
      return r.body;
    };
    const big = JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES), openingBalance: 1 });
    const t = (amount: number, from = kim, to = lee) => ({ fromAccountId: from.accountId, toAccountId: to.accountId, amount });

    // Meta, machines, pages.
    await expect(200, 'GET', '/health', { token: null });
    await expect(200, 'GET', '/openapi.json', { token: null });
    await expect(200, 'GET', '/docs', { token: null });
    await expect(200, 'GET', '/docs/init.js', { token: null });
    await expect(200, 'GET', '/docs/swagger-ui.css', { token: null });
    await expect(404, 'GET', '/docs/package.json', { token: null });
    await expect(200, 'GET', '/metrics');
    await expect(401, 'GET', '/metrics', { token: null });
    await expect(403, 'GET', '/metrics', { token: kim.token });
    await expect(200, 'GET', '/machines', { token: null });
    await expect(200, 'GET', '/machines/transfer', { token: null });
    await expect(200, 'GET', '/machines/transfer?format=code', { token: null });
    await expect(400, 'GET', '/machines/transfer?format=xml', { token: null });
    await expect(404, 'GET', '/machines/nope', { token: null });
    await expect(200, 'GET', '/', { token: null });
    await expect(200, 'GET', '/viz', { token: null });
    await expect(200, 'GET', '/assets/viz.js', { token: null });
    await expect(404, 'GET', '/assets/nope.js', { token: null });

    // Admin: every route's 401 (no token) and 403 (a customer's token), then its own answers.
    const adminRoutes: [string, string, unknown?][] = [
      ['POST', '/admin/customers', { name: 'Park', openingBalance: 1 }],
      ['POST', `/admin/customers/${kim.customerId}/accounts`, { openingBalance: 1 }],
      ['POST', `/admin/customers/${kim.customerId}/tokens`],
      ['DELETE', `/admin/customers/${kim.customerId}/tokens`],
      ['POST', '/admin/deposits', { accountId: lee.accountId, amount: 5, fromBank: 'Shinhan', fromName: 'Park' }],
      ['POST', '/admin/faults', { pipe: 'log', action: 'delay', delayMs: 1 }],
      ['GET', '/admin/faults'],
      ['DELETE', '/admin/faults'],
      ['POST', '/admin/restart', { side: 'core' }],
      ['POST', '/admin/reconcile'],
      ['GET', '/admin/reconcile'],
    ];
    for (const [method, path, json] of adminRoutes) {
      await expect(401, method, path, { token: null, json });
      await expect(403, method, path, { token: kim.token, json });
    }
    await expect(404, 'GET', '/admin/reconcile');
    const park = await expect(201, 'POST', '/admin/customers', { json: { name: 'Park', openingBalance: 10 } });
    await expect(400, 'POST', '/admin/customers', { json: { name: '', openingBalance: 10 } });
    await expect(413, 'POST', '/admin/customers', { raw: big });
    await expect(201, 'POST', `/admin/customers/${park.customer.id}/accounts`, { json: { openingBalance: 1 } });
    await expect(400, 'POST', '/admin/customers/x/accounts', { json: { openingBalance: 1 } });
    await expect(404, 'POST', '/admin/customers/999/accounts', { json: { openingBalance: 1 } });
    await expect(413, 'POST', `/admin/customers/${park.customer.id}/accounts`, { raw: big });
    await expect(201, 'POST', `/admin/customers/${park.customer.id}/tokens`);
    await expect(400, 'POST', '/admin/customers/x/tokens');
    await expect(404, 'POST', '/admin/customers/999/tokens');
    await expect(200, 'DELETE', `/admin/customers/${park.customer.id}/tokens`);
    await expect(400, 'DELETE', '/admin/customers/x/tokens');
    await expect(404, 'DELETE', '/admin/customers/999/tokens');
    await expect(201, 'POST', '/admin/deposits', { json: { accountId: lee.accountId, amount: 5, fromBank: 'Shinhan', fromName: 'Park' } });
    await expect(400, 'POST', '/admin/deposits', { json: { accountId: lee.accountId } });
    await expect(404, 'POST', '/admin/deposits', { json: { accountId: 999, amount: 5, fromBank: 'Shinhan', fromName: 'Park' } });
    await expect(413, 'POST', '/admin/deposits', { raw: big });
    await expect(200, 'GET', '/admin/faults');
    await expect(400, 'POST', '/admin/faults', { json: { pipe: 'nowhere', action: 'drop' } });
    await expect(413, 'POST', '/admin/faults', { raw: big });
    for (let i = 0; i < MAX_QUEUED_FAULTS; i++) bank.faults.add({ pipe: 'log', action: 'delay', count: 1, delayMs: 1, messages: 'any' });
    await expect(409, 'POST', '/admin/faults', { json: { pipe: 'log', action: 'delay', delayMs: 1 } });
    await expect(204, 'DELETE', '/admin/faults');
    await expect(201, 'POST', '/admin/faults', { json: { pipe: 'log', action: 'delay', delayMs: 1 } });
    await expect(204, 'DELETE', '/admin/faults');
    await expect(200, 'POST', '/admin/restart', { json: { side: 'core' } });
    await expect(400, 'POST', '/admin/restart', { json: { side: 'both' } });
    await expect(413, 'POST', '/admin/restart', { raw: big });
    await expect(200, 'POST', '/admin/reconcile');
    await expect(200, 'GET', '/admin/reconcile');

    // Customers.
    await expect(200, 'GET', '/me', { token: kim.token });
    await expect(401, 'GET', '/me', { token: null });
    await expect(403, 'GET', '/me');
    await expect(200, 'GET', `/accounts/${kim.accountId}`, { token: kim.token });
    await expect(400, 'GET', '/accounts/x', { token: kim.token });
    await expect(401, 'GET', `/accounts/${kim.accountId}`, { token: null });
    await expect(404, 'GET', `/accounts/${lee.accountId}`, { token: kim.token });
    const page = await expect(200, 'GET', `/accounts/${kim.accountId}/transactions?limit=1`, { token: kim.token });
    await expect(200, 'GET', `/accounts/${kim.accountId}/transactions?since=${page.headCursor}`, { token: kim.token });
    await expect(400, 'GET', `/accounts/${kim.accountId}/transactions?limit=0`, { token: kim.token });
    await expect(401, 'GET', `/accounts/${kim.accountId}/transactions`, { token: null });
    await expect(404, 'GET', '/accounts/999/transactions', { token: kim.token });

    // Transfers.
    const settled = await expect(201, 'POST', '/transfers', { token: kim.token, json: t(1_000), headers: { 'Idempotency-Key': 'k-1' } });
    await expect(200, 'POST', '/transfers', { token: kim.token, json: t(1_000), headers: { 'Idempotency-Key': 'k-1' } });
    await expect(422, 'POST', '/transfers', { token: kim.token, json: t(2_000), headers: { 'Idempotency-Key': 'k-1' } });
    bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
    const open = await expect(202, 'POST', '/transfers', { token: kim.token, json: t(1_000), headers: { Prefer: 'wait=0' } });
    await expect(409, 'POST', '/transfers', { token: kim.token, json: t(1_000), headers: { Prefer: 'wait=0' } });
    await expect(400, 'POST', '/transfers', { token: kim.token, json: { amount: -1 } });
    await expect(401, 'POST', '/transfers', { token: null, json: t(1) });
    await expect(403, 'POST', '/transfers', { json: t(1) });
    await expect(413, 'POST', '/transfers', { token: kim.token, raw: big });
    await expect(200, 'GET', `/transfers/${settled.id}`, { token: kim.token });
    await expect(400, 'GET', '/transfers/bad', { token: kim.token });
    await expect(401, 'GET', `/transfers/${settled.id}`, { token: null });
    await expect(404, 'GET', `/transfers/${settled.id}`, { token: lee.token });
    await expect(303, 'GET', `/viz/transfers/${settled.id}?access_token=${kim.token}`, { token: null });
    await expect(200, 'GET', `/viz/transfers/${settled.id}`, { token: null, headers: { Cookie: `scrollbank_token=${kim.token}` } });
    await expect(400, 'GET', '/viz/transfers/bad', { token: kim.token });
    await expect(401, 'GET', `/viz/transfers/${settled.id}`, { token: null });
    await expect(404, 'GET', `/viz/transfers/${settled.id}`, { token: lee.token });
    await expect(400, 'GET', '/transfers/bad/stream', { token: kim.token });
    await expect(401, 'GET', `/transfers/${open.id}/stream`, { token: null });
    await expect(404, 'GET', `/transfers/${open.id}/stream`, { token: lee.token });
    for (let i = 0; i < MAX_STREAMS_PER_CUSTOMER; i++) await expect(200, 'GET', `/transfers/${open.id}/stream`, { token: kim.token, keepOpen: true });
    await expect(429, 'GET', `/transfers/${open.id}/stream`, { token: kim.token });
    await Promise.all(streams.splice(0).map((s) => s.body?.cancel()));
    run(bank, 10_000);

    // A channel that went down before what an answer shows was durable: every route answers 503.
    bank.channel.stop();
    for (const [path, item] of Object.entries((await documentOf()).paths as Record<string, object>)) {
      for (const method of Object.keys(item)) {
        const concrete = path.replace('{id}', path.includes('transfers') ? settled.id : String(kim.accountId)).replace('{name}', 'transfer').replace('{file}', 'init.js');
        const json = method === 'post' ? (path === '/transfers' ? t(1) : path === '/admin/restart' ? { side: 'core' } : {}) : undefined;
        await expect(503, method.toUpperCase(), concrete, { token: path.startsWith('/me') || path.includes('transfers') || path.startsWith('/accounts') ? kim.token : ADMIN, json });
      }
    }
    bank.channel.start();

    const missing = conformance.documented().filter((s) => !conformance.seen().includes(s));
    assert.equal(missing, [], 'documented but never answered');
  } finally {
    await Promise.all(streams.map((s) => s.body?.cancel()));
    bank.dispose();
    rmSync(webDir, { recursive: true, force: true });
  }
});

test.run();
