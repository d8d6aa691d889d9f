/**
 * The bank page in a real browser against the real server: sign in, send money and watch
 * it settle live, scroll the whole history, and play every scenario of the talk from the
 * admin panel, each ending where the talk says it ends. Nothing leaves this machine.
 */
import { statSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'playwright-core';
import { ADMIN_TOKEN, TIMING, api, launchBrowser, openCustomer, screenshot, startServer, stopServer, type Browser, type Server } from './harness.ts';

type Customer = { token: string; accountId: number };
type Ctx = { server: Server; browser: Browser; kim: Customer; lee: Customer; page: Page };
const test = suite<Ctx>('the bank page in the browser', {} as Ctx);

/** Enough rows for three pages of 20. */
const DEPOSITS = 45;

test.before(async (ctx) => {
  ctx.server = await startServer();
  ctx.browser = await launchBrowser();
  ctx.kim = await openCustomer(ctx.server, 'Kim Minji', 1_000_000);
  ctx.lee = await openCustomer(ctx.server, 'Lee Junho', 0);
  for (let i = 1; i <= DEPOSITS; i++) {
    const { status } = await api(ctx.server, ADMIN_TOKEN, 'POST', '/admin/deposits', { accountId: ctx.kim.accountId, amount: i * 100, fromBank: 'Shinhan', fromName: `payer ${i}` });
    assert.is(status, 201);
  }
});
test.after(async (ctx) => {
  await ctx.browser?.close();
  await stopServer(ctx.server);
});

async function signIn(ctx: Ctx, withAdmin: boolean): Promise<Page> {
  const page = await ctx.browser.newPage();
  await page.goto(`${ctx.server.url}/`);
  await page.fill('#customer-token', ctx.kim.token);
  if (withAdmin) await page.fill('#admin-token', ADMIN_TOKEN);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#bank:not([hidden])');
  await page.waitForSelector('#history-list li');
  return page;
}

const seqsOnPage = (page: Page) => page.locator('#history-list li').evaluateAll((lis) => lis.map((li) => Number(li.getAttribute('data-seq'))));

async function allSeqsFromApi(ctx: Ctx): Promise<number[]> {
  const seqs: number[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const query: string = cursor === null ? '?limit=100' : `?limit=100&cursor=${encodeURIComponent(cursor)}`;
    const { body } = await api(ctx.server, ctx.kim.token, 'GET', `/accounts/${ctx.kim.accountId}/transactions${query}`);
    seqs.push(...body.items.map((r: { seq: number }) => r.seq));
    cursor = body.nextCursor;
    if (cursor === null) return seqs;
  }
  throw new Error('history did not end');
}

async function fillTransfer(page: Page, toAccountId: number, amount: number, memo = ''): Promise<void> {
  await page.fill('#transfer-to', String(toAccountId));
  await page.fill('#transfer-amount', String(amount));
  await page.fill('#transfer-memo', memo);
}

test('a transfer made on / appears in the history at once and its live chart ends in succeeded', async (ctx) => {
  const page = await signIn(ctx, false);
  ctx.page = page;
  const before = Number(await page.locator('#balance').getAttribute('data-balance'));
  await fillTransfer(page, ctx.lee.accountId, 12_345, 'lunch');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
  assert.is(await page.locator('#live-chart svg g.state.active').getAttribute('data-state'), 'succeeded');
  assert.is(await page.locator('#live-chart svg g.state.active').count(), 1);
  const id = (await page.locator('#live-link').textContent())!;
  // At once: the row is on top as soon as the transfer settles, without a reload.
  await page.waitForSelector(`#history-list li:first-child[data-transfer-id="${id}"]`, { timeout: 2_000 });
  const row = (await page.locator(`#history-list li[data-transfer-id="${id}"]`).textContent())!;
  assert.match(row, '-12,345 won');
  assert.match(row, 'lunch');
  await page.waitForFunction((b) => Number(document.querySelector('#balance')?.getAttribute('data-balance')) === b - 12_345, before);
  const journal = await page.locator('#live-journal li').allTextContents();
  assert.ok(journal.some((j) => j.includes('DISPATCH')) && journal.some((j) => j.includes('succeeded')), journal.join(' | '));
  // The transfer's link opens /viz/transfers/:id with the cookie the sign-in set: no token in the address.
  assert.is(await page.locator('#live-link').getAttribute('href'), `/viz/transfers/${id}`);
  const viz = await ctx.browser.newPage();
  await viz.goto(`${ctx.server.url}/viz/transfers/${id}`);
  await viz.waitForSelector('#viz[data-settled="true"]');
  assert.is(await viz.locator('#live-state').textContent(), 'succeeded');
  assert.is(await viz.locator('#live-journal li').count(), journal.length);
  await viz.close();
});

test('scrolling loads older pages until the end, with no duplicate rows, even as new rows land', async (ctx) => {
  const page = ctx.page;
  const firstPage = await seqsOnPage(page);
  // One page of 20, plus the transfer the previous test put on top.
  assert.is(firstPage.length, 21, 'one page at first');
  assert.ok(await page.locator('#history-end').isHidden(), 'more to come');
  // A row lands while the customer scrolls: keyset paging neither repeats nor skips a row.
  await api(ctx.server, ADMIN_TOKEN, 'POST', '/admin/deposits', { accountId: ctx.kim.accountId, amount: 777, fromBank: 'Woori', fromName: 'mid-scroll' });
  for (let i = 0; i < 20 && (await page.locator('#history-end').isHidden()); i++) {
    await page.locator('#history-scroll').evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await page.waitForTimeout(150);
  }
  assert.ok(await page.locator('#history-end').isVisible(), 'reached the end');
  const sinceRequests: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('since=')) sinceRequests.push(r.url());
  });
  await page.click('#refresh');
  const expected = await allSeqsFromApi(ctx);
  await page.waitForFunction((n) => document.querySelectorAll('#history-list li').length === n, expected.length, { timeout: 5_000 });
  const seqs = await seqsOnPage(page);
  assert.is(new Set(seqs).size, seqs.length, 'no row twice');
  assert.equal(seqs, expected, 'every row, newest first, exactly as the server pages them');
  assert.ok(seqs.length >= DEPOSITS + 3, `${seqs.length} rows`);
  assert.match((await page.locator('#history-list li:first-child').textContent())!, 'mid-scroll', 'refresh put the new row on top');
  assert.ok(sinceRequests.length > 0, 'refresh asked only for what is newer (since=<headCursor>)');
  await page.close();
});

type Outcome = { scenario: string; outcome: string; text: string; transferId: string | null };

async function runScenario(page: Page, name: string): Promise<Outcome> {
  const previous = await page.locator('#live-link').textContent();
  await page.click(`#scenario-buttons button[data-scenario="${name}"]`);
  await page.waitForFunction(
    (n) => {
      const r = document.querySelector('#scenario-result') as HTMLElement | null;
      return r?.dataset['scenario'] === n && r.dataset['outcome'] !== 'running';
    },
    name,
    { timeout: 20_000 },
  );
  const result = page.locator('#scenario-result');
  const transferId = await page.locator('#live-link').textContent();
  return {
    scenario: name,
    outcome: (await result.getAttribute('data-outcome'))!,
    text: (await result.textContent())!,
    transferId: transferId === previous ? null : transferId,
  };
}

test("each of the talk's scenarios ends where the talk says it ends", async (ctx) => {
  const page = await signIn(ctx, true);
  await page.waitForSelector('#admin:not([hidden]) #scenario-buttons button');
  await fillTransfer(page, ctx.lee.accountId, 1_000);
  const transfer = async (id: string | null) => (await api(ctx.server, ADMIN_TOKEN, 'GET', `/transfers/${id}`)).body;
  const balance = async () => (await api(ctx.server, ADMIN_TOKEN, 'GET', `/accounts/${ctx.kim.accountId}`)).body.balance as number;
  const coreRows = async (id: string) => (await allRows(ctx)).filter((r) => r.transferId === id).length;

  const lostResponse = await runScenario(page, 'lose-response');
  assert.is(lostResponse.outcome, 'as-predicted', lostResponse.text);
  const t1 = await transfer(lostResponse.transferId);
  assert.is(t1.state, 'succeeded');
  assert.ok(t1.journal.some((j: { event: string }) => j.event === 'EXECUTED (log)'), 'the outcome came by the log');

  const lostRequest = await runScenario(page, 'lose-request');
  assert.is(lostRequest.outcome, 'as-predicted', lostRequest.text);
  const t2 = await transfer(lostRequest.transferId);
  assert.equal([t2.state, t2.reason], ['failed', 'not-received']);

  const before = await balance();
  const late = await runScenario(page, 'delay-past-cutoff');
  assert.is(late.outcome, 'as-predicted', late.text);
  const t3 = await transfer(late.transferId);
  assert.is(t3.state, 'failed');
  // The page waited for the late request to arrive; it moved nothing.
  assert.is(await balance(), before, 'balance unchanged');
  assert.is(await coreRows(t3.id), 0);

  const beforeDuplicate = await balance();
  const duplicate = await runScenario(page, 'duplicate');
  assert.is(duplicate.outcome, 'as-predicted', duplicate.text);
  const t4 = await transfer(duplicate.transferId);
  assert.is(t4.state, 'succeeded');
  assert.is(await balance(), beforeDuplicate - 1_000, 'executed once');
  assert.is(await coreRows(t4.id), 1, 'one history row');

  const deposit = await runScenario(page, 'deposit');
  assert.is(deposit.outcome, 'as-predicted', deposit.text);
  assert.is(await page.locator('#history-list li:first-child').getAttribute('data-transfer-id'), null);
  assert.match((await page.locator('#history-list li:first-child').textContent())!, 'Park Seoyeon');

  const restart = await runScenario(page, 'restart-channel');
  assert.is(restart.outcome, 'as-predicted', restart.text);
  const t6 = await transfer(restart.transferId);
  assert.is(t6.state, 'succeeded');
  // A durable transfer needs no RESUME (its restore commits nothing): it was sent before the
  // restart and its answer settled it through the restarted channel.
  assert.equal(t6.journal.map((j: { event: string }) => j.event).slice(0, 2), ['REQUEST', 'DISPATCH']);
  assert.equal(t6.journal.at(-1), { ...t6.journal.at(-1), from: 'sent', to: 'succeeded' }, 'settled from sent after the restart');

  await page.locator('#history-scroll').evaluate((el) => el.scrollTo(0, 0));
  const path = await screenshot(page, 'bank.png');
  assert.ok(statSync(path).size > 10_000);
  assert.ok(TIMING.cutoffMs <= 2_000, 'short timings keep this test quick');
  await page.close();
});

async function allRows(ctx: Ctx): Promise<{ transferId: string | null }[]> {
  const rows: { transferId: string | null }[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const query: string = cursor === null ? '?limit=100' : `?limit=100&cursor=${encodeURIComponent(cursor)}`;
    const { body } = await api(ctx.server, ADMIN_TOKEN, 'GET', `/accounts/${ctx.kim.accountId}/transactions${query}`);
    rows.push(...body.items);
    cursor = body.nextCursor;
    if (cursor === null) return rows;
  }
  throw new Error('history did not end');
}

test('nothing was fetched from outside and no page logged an error', ({ browser }) => {
  assert.equal(browser.outside, []);
  assert.equal(browser.errors, []);
});

test.run();
