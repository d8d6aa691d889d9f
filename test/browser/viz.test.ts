/**
 * /viz in a real browser: every machine drawn by elkjs as SVG with its states as text, and
 * one transfer followed live on /viz/transfers/:id; nothing leaves this machine.
 */
import { statSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN_TOKEN, api, launchBrowser, openCustomer, screenshot, startServer, stopServer, type Browser, type Server } from './harness.ts';

type Ctx = { server: Server; browser: Browser };
const test = suite<Ctx>('viz in the browser', {} as Ctx);

test.before(async (ctx) => {
  ctx.server = await startServer();
  ctx.browser = await launchBrowser();
});
test.after(async (ctx) => {
  await ctx.browser?.close();
  await stopServer(ctx.server);
});

test('/viz draws every machine, with all six transfer states as SVG text', async ({ server, browser }) => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/viz`);
  await page.waitForSelector('#viz[data-ready="true"]');
  const transferStates = await page.locator('[data-machine="transfer"] svg g.state text.state-name').allTextContents();
  assert.equal(transferStates.sort(), ['failed', 'querying', 'requested', 'sent', 'succeeded', 'timedOut']);
  const coreStates = await page.locator('[data-machine="coreBanking"] svg g.state text.state-name').allTextContents();
  assert.equal(coreStates, ['serving']);
  // Laid out, not piled up: no two transfer states share a position.
  const boxes = await page.locator('[data-machine="transfer"] svg g.state > rect:first-of-type').evaluateAll((rects) => rects.map((r) => `${r.getAttribute('x')},${r.getAttribute('y')}`));
  assert.is(new Set(boxes).size, 6);
  const labels = await page.locator('[data-machine="transfer"] svg text.transition-label').allTextContents();
  assert.ok(labels.some((l) => l.includes('NOT_FOUND')), labels.join(' | '));
  const path = await screenshot(page, 'viz.png');
  assert.ok(statSync(path).size > 10_000, 'the screenshot has something in it');
  await page.close();
});

test('/viz/transfers/:id highlights the transfer state live and lists its journal', async ({ server, browser }) => {
  const kim = await openCustomer(server, 'Kim Minji', 100_000);
  const lee = await openCustomer(server, 'Lee Junho', 0);
  // The request is lost and so are the answers to the first two queries: the transfer stays in
  // flight for a few seconds (query timeouts and backoff), and the page watches it move.
  await api(server, ADMIN_TOKEN, 'POST', '/admin/faults', { pipe: 'request', action: 'drop' });
  await api(server, ADMIN_TOKEN, 'POST', '/admin/faults', { pipe: 'response', action: 'drop', count: 2 });
  const created = await api(server, kim.token, 'POST', '/transfers', { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 }, { Prefer: 'wait=0' });
  assert.is(created.status, 202);
  const id = created.body.id as string;
  const page = await browser.newPage();
  await page.goto(`${server.url}/viz/transfers/${id}?access_token=${encodeURIComponent(kim.token)}`);
  await page.waitForSelector('#live-chart svg g.state.active');
  const firstSeen = await page.locator('#live-state').textContent();
  assert.ok(firstSeen === 'sent' || firstSeen === 'timedOut' || firstSeen === 'querying', `first seen in flight, got ${firstSeen}`);
  await page.waitForSelector('#viz[data-settled="true"]', { timeout: 15_000 });
  const final = await page.locator('#live-state').textContent();
  assert.is(final, 'failed');
  assert.is(await page.locator('#live-reason').textContent(), 'not-received');
  const active = await page.locator('#live-chart svg g.state.active').getAttribute('data-state');
  assert.is(active, final);
  const server_ = await api(server, kim.token, 'GET', `/transfers/${id}`);
  assert.is(final, server_.body.state, 'the page ends where the server says the transfer is');
  const journal = await page.locator('#live-journal li').allTextContents();
  assert.is(journal.length, server_.body.journal.length, journal.join(' | '));
  await page.close();
});

test('/docs shows the API reference from this server alone: every operation of /openapi.json, with the Authorize button', async ({ server, browser }) => {
  const page = await browser.newPage();
  const loaded: string[] = [];
  page.on('request', (r) => loaded.push(new URL(r.url()).pathname));
  await page.goto(`${server.url}/docs`);
  await page.waitForSelector('.opblock-summary-path', { timeout: 15_000 });
  const doc = (await api(server, ADMIN_TOKEN, 'GET', '/openapi.json')).body;
  const documented = Object.values(doc.paths as Record<string, object>).reduce((n, item) => n + Object.keys(item).length, 0);
  assert.is(await page.locator('.opblock').count(), documented, 'one block per documented operation');
  assert.ok(await page.locator('button.authorize').isVisible(), 'the security schemes offer an Authorize button');
  assert.match((await page.locator('.info .title').textContent()) ?? '', 'scrollbank');
  assert.ok(loaded.includes('/docs/swagger-ui-bundle.js') && loaded.includes('/openapi.json'), loaded.join(' '));
  await screenshot(page, 'docs.png');
  await page.close();
});

test('nothing was fetched from outside and no page logged an error', ({ browser }) => {
  assert.equal(browser.outside, []);
  assert.equal(browser.errors, []);
});

test.run();
