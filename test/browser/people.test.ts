/**
 * The pages as people use them (issue 11, in part): on a phone (390×844) and a laptop
 * (1280×800) nothing sticks out sideways, history rows never overlap, a transfer and the
 * infinite scroll work; a customer with two accounts switches between them and pays
 * themselves; the live transfer page asks a token-less visitor to sign in and drops the token
 * from the address; and axe-core finds no serious or critical violation.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'playwright-core';
import { ADMIN_TOKEN, api, launchBrowser, openCustomer, overflowingElements, screenshot, seriousAxeViolations, startServer, stopServer, type Browser, type Server } from './harness.ts';

type Customer = { token: string; accountId: number };
type Ctx = { server: Server; browser: Browser; kim: Customer; lee: Customer; second: number };
const test = suite<Ctx>('the pages for people', {} as Ctx);

const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'laptop', width: 1280, height: 800 },
] as const;

test.before(async (ctx) => {
  ctx.server = await startServer();
  ctx.browser = await launchBrowser();
  ctx.kim = await openCustomer(ctx.server, 'Kim Minji', 1_000_000);
  ctx.lee = await openCustomer(ctx.server, 'Lee Junho', 0);
  const me = await api(ctx.server, ctx.kim.token, 'GET', '/me');
  const opened = await api(ctx.server, ADMIN_TOKEN, 'POST', `/admin/customers/${me.body.customer.id}/accounts`, { openingBalance: 5_000 });
  assert.is(opened.status, 201);
  ctx.second = opened.body.account.id;
  // Long descriptions, as a real bank's are: they must wrap as words, not one per line.
  for (let i = 1; i <= 45; i++) {
    const { status } = await api(ctx.server, ADMIN_TOKEN, 'POST', '/admin/deposits', { accountId: ctx.kim.accountId, amount: i * 1_000, fromBank: 'Korea Development Bank', fromName: `A payer with a rather long name number ${i}` });
    assert.is(status, 201);
  }
});
test.after(async (ctx) => {
  await ctx.browser?.close();
  await stopServer(ctx.server);
});

type SignIn = { size?: { width: number; height: number }; token?: string; admin?: boolean };

/** A new page signed in on / (Kim by default, at the browser's size), its history shown, and the scenario panel with the admin token. */
async function signedIn(ctx: Ctx, { size, token = ctx.kim.token, admin = false }: SignIn = {}): Promise<Page> {
  const page = await ctx.browser.newPage();
  if (size !== undefined) await page.setViewportSize({ width: size.width, height: size.height });
  await page.goto(`${ctx.server.url}/`);
  await page.fill('#customer-token', token);
  if (admin) await page.fill('#admin-token', ADMIN_TOKEN);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#history-list li');
  if (admin) await page.waitForSelector('#admin:not([hidden]) #scenario-buttons button');
  return page;
}

/**
 * Pairs of history rows whose boxes overlap, and rows whose cells overlap each other. Plain
 * JavaScript source: what runs in the page must not carry the test's compiled helpers.
 */
function overlaps(page: Page): Promise<string[]> {
  return page.evaluate(`(() => {
    const out = [];
    const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
    const lis = [...document.querySelectorAll('#history-list li')];
    const boxes = lis.map((li) => li.getBoundingClientRect());
    for (let i = 1; i < boxes.length; i++) if (hit(boxes[i - 1], boxes[i])) out.push('rows ' + (i - 1) + ' and ' + i);
    for (const li of lis) {
      const cells = [...li.children].map((c) => c.getBoundingClientRect());
      for (let i = 0; i < cells.length; i++) for (let j = i + 1; j < cells.length; j++) if (hit(cells[i], cells[j])) out.push('row ' + li.getAttribute('data-seq') + ': cells ' + i + ' and ' + j);
    }
    return out;
  })()`);
}

for (const size of SIZES) {
  test(`${size.name} (${size.width}×${size.height}): nothing sticks out, rows do not overlap, a transfer and the scroll to the end work`, async (ctx) => {
    const page = await signedIn(ctx, { size });
    assert.equal(await overflowingElements(page), [], 'nothing wider than the viewport');
    assert.equal(await overlaps(page), []);
    // A description wraps by words: the "what" cell of a row is never one word a line.
    const whatHeight = await page.locator('#history-list li .what').first().evaluate((el) => el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight));
    assert.ok(whatHeight <= 3, `a description takes ${whatHeight.toFixed(1)} lines`);
    await page.fill('#transfer-to', String(ctx.lee.accountId));
    await page.fill('#transfer-amount', '1000');
    await page.click('#transfer-send');
    await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
    assert.equal(await overflowingElements(page), [], 'nothing wider than the viewport with the live chart shown');
    // Scroll to the end: every page loads, once each.
    for (let i = 0; i < 20 && (await page.locator('#history-end').isHidden()); i++) {
      await page.locator('#history-scroll').evaluate((el) => el.scrollTo(0, el.scrollHeight));
      await page.waitForTimeout(150);
    }
    assert.ok(await page.locator('#history-end').isVisible(), 'the end of the history');
    const seqs = await page.locator('#history-list li').evaluateAll((lis) => lis.map((li) => Number(li.getAttribute('data-seq'))));
    assert.is(new Set(seqs).size, seqs.length, 'no row twice');
    assert.equal(await overlaps(page), []);
    await screenshot(page, `bank-${size.name}.png`);
    await page.close();
  });
}

/** The smallest size, in CSS pixels at this zoom, that any text of any chart on the page renders at. */
function smallestChartText(page: Page): Promise<number> {
  return page.evaluate(`(() => {
    let smallest = Infinity;
    for (const svg of document.querySelectorAll('svg.statechart')) {
      const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
      for (const t of svg.querySelectorAll('text')) smallest = Math.min(smallest, parseFloat(getComputedStyle(t).fontSize) * scale);
    }
    return smallest;
  })()`);
}

test('charts are readable at 1x: every state name and edge label 11 px or more, in the words the journal uses', async (ctx) => {
  const page = await signedIn(ctx, { size: SIZES[1] });
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '100');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
  // The chart pans at 1:1: the current state is brought into its view.
  const inView = await page.evaluate(`(() => {
    const box = document.querySelector('#live-chart svg g.state.active').getBoundingClientRect();
    const view = document.querySelector('#live-chart').getBoundingClientRect();
    return box.left >= view.left - 1 && box.right <= view.right + 1;
  })()`);
  assert.ok(inView, 'the succeeded state is in the chart\'s view');
  const onBank = await smallestChartText(page);
  // 0.01: the SVG's box is measured in fractional pixels; a label at 11 px may measure 10.999.
  assert.ok(onBank >= 11 - 0.01, `the bank page's chart: ${onBank.toFixed(3)} px`);
  const labels = (await page.locator('#live-chart svg text.transition-label').allTextContents()).join(' ');
  for (const word of ['RESPONSE_TIMEOUT', 'QUERY_DUE', 'QUERY_TIMEOUT']) assert.match(labels, word, 'the journal\'s word for the delayed event');
  assert.not.match(labels, 'untilResponseDeadline');
  const viz = await ctx.browser.newPage();
  await viz.setViewportSize({ width: 800, height: 900 });
  await viz.goto(`${ctx.server.url}/viz`);
  await viz.waitForSelector('#viz[data-ready="true"]');
  const onViz = await smallestChartText(viz);
  assert.ok(onViz >= 11 - 0.01, `/viz at 800 px: ${onViz.toFixed(3)} px`);
  assert.equal(await overflowingElements(viz), [], '/viz at 800 px: the page itself does not scroll sideways');
  await viz.close();
  await page.close();
});

test('what changes is announced (aria-live), and colour is never the only signal: money in and out differ by sign and words', async (ctx) => {
  const page = await signedIn(ctx, { size: SIZES[1] });
  for (const selector of ['#live-state', '#scenario-result', '#scenario-steps']) {
    const live = await page.locator(selector).evaluate((el) => el.closest('[aria-live]')?.getAttribute('aria-live') ?? null);
    assert.is(live, 'polite', `${selector} is in a live region`);
  }
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '300');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
  const id = (await page.locator('#live-link').textContent())!;
  await page.waitForSelector(`#history-list li[data-transfer-id="${id}"]`);
  const out = await page.locator(`#history-list li[data-transfer-id="${id}"]`).textContent();
  const into = await page.locator('#history-list li.in').first().textContent();
  assert.match(out ?? '', /transfer out/);
  assert.match(out ?? '', /-300 won/);
  assert.match(into ?? '', /deposit|transfer in|opening/);
  assert.match(into ?? '', /\+[\d,]+ won/);
  await page.close();
});

test('a customer with two accounts picks one: the balance, the history and the form follow it, and pays themselves', async (ctx) => {
  const page = await signedIn(ctx, { size: SIZES[1] });
  assert.ok(await page.locator('#account-picker').isVisible(), 'two accounts: a picker');
  const before = Number(await page.locator('#balance').getAttribute('data-balance'));
  await page.selectOption('#account-select', String(ctx.second));
  await page.waitForFunction(() => document.querySelector('#balance')?.getAttribute('data-balance') === '5000');
  assert.is(await page.locator('#account-id').textContent(), String(ctx.second));
  await page.waitForSelector('#history-list li');
  assert.equal(await page.locator('#history-list li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-seq'))), ['1'], "the second account's own history");
  // From the second account to the first: a transfer between one's own accounts.
  await page.fill('#transfer-to', String(ctx.kim.accountId));
  await page.fill('#transfer-amount', '2000');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
  await page.waitForFunction(() => document.querySelector('#balance')?.getAttribute('data-balance') === '3000');
  await page.selectOption('#account-select', String(ctx.kim.accountId));
  await page.waitForFunction((b) => Number(document.querySelector('#balance')?.getAttribute('data-balance')) === b + 2_000, before);
  await page.close();
});

test('switching accounts while the first account\'s page and balance are still on their way shows only the second account', async (ctx) => {
  const page = await ctx.browser.newPage();
  // The first account's answers are slow: they arrive after the switch.
  await page.route(`**/accounts/${ctx.kim.accountId}**`, async (route) => {
    await new Promise((r) => setTimeout(r, 600));
    await route.continue();
  });
  await page.goto(`${ctx.server.url}/`);
  await page.fill('#customer-token', ctx.kim.token);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#account-picker:not([hidden])');
  await page.selectOption('#account-select', String(ctx.second));
  await page.waitForSelector('#history-list li');
  await page.waitForTimeout(1_000); // the slow answers for the first account have landed by now
  const seqs = await page.locator('#history-list li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-seq')));
  const balance = Number(await page.locator('#balance').getAttribute('data-balance'));
  const second = (await api(ctx.server, ctx.kim.token, 'GET', `/accounts/${ctx.second}`)).body.balance;
  const secondRows = (await api(ctx.server, ctx.kim.token, 'GET', `/accounts/${ctx.second}/transactions?limit=100`)).body.items.length;
  assert.is(seqs.length, secondRows, `only the second account's rows: ${seqs.join(',')}`);
  assert.is(balance, second, "the second account's balance");
  await page.close();
});

test('the live page asks a visitor without a token to sign in (401), then drops the token from the address', async (ctx) => {
  const created = await api(ctx.server, ctx.kim.token, 'POST', '/transfers', { fromAccountId: ctx.kim.accountId, toAccountId: ctx.lee.accountId, amount: 10 });
  assert.is(created.status, 201);
  // A visitor who never signed in on the bank page: no cookie either.
  await ctx.browser.context.clearCookies();
  const page = await ctx.browser.newPage();
  const answer = await page.goto(`${ctx.server.url}/viz/transfers/${created.body.id}`);
  assert.is(answer?.status(), 401);
  assert.match((await page.locator('h2').textContent()) ?? '', 'Sign in to watch this transfer');
  assert.equal(await seriousAxeViolations(page), [], 'the sign-in page');
  await page.fill('input[name="access_token"]', ctx.kim.token);
  await page.click('button[type="submit"]');
  await page.waitForSelector('#viz[data-settled="true"]');
  assert.is(await page.locator('#live-state').textContent(), 'succeeded');
  assert.is(new URL(page.url()).search, '', 'the token is gone from the address');
  assert.not.match(await page.evaluate(() => location.href), ctx.kim.token);
  assert.equal(await seriousAxeViolations(page), [], '/viz/transfers/:id');
  await page.close();
});

test('axe-core finds no serious or critical violation on / (signed out and in) and /viz', async (ctx) => {
  const page = await ctx.browser.newPage();
  await page.goto(`${ctx.server.url}/`);
  assert.equal(await seriousAxeViolations(page), [], '/ signed out');
  await page.fill('#customer-token', ctx.kim.token);
  await page.fill('#admin-token', ADMIN_TOKEN);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#history-list li');
  assert.equal(await seriousAxeViolations(page), [], '/ signed in, with the admin panel');
  await page.goto(`${ctx.server.url}/viz`);
  await page.waitForSelector('#viz[data-ready="true"]');
  assert.equal(await seriousAxeViolations(page), [], '/viz');
  await page.close();
});

test('a transfer sent from the form while the cutoff scenario runs leaves its verdict right, and every step shows as it happens', async (ctx) => {
  const page = await signedIn(ctx, { admin: true });
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '1000');
  await page.click('#scenario-buttons button[data-scenario="delay-past-cutoff"]');
  // Until the scenario's own transfer is sent, Send waits: a transfer from the form could take its fault.
  assert.ok(await page.locator('#transfer-send').isDisabled(), 'Send is held while the fault waits for its transfer');
  // The scenario's transfer has failed; its late request is still on its way: the customer pays someone meanwhile.
  await page.waitForSelector('#scenario-countdown:not([hidden])', { timeout: 15_000 });
  assert.match((await page.locator('#scenario-countdown').textContent()) ?? '', /^\d+ s until the late request reaches the core$/);
  assert.ok(await page.locator('#transfer-send').isEnabled(), 'Send is back once the scenario\'s transfer is on its way');
  await page.fill('#transfer-amount', '200');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
  await page.waitForFunction(() => (document.querySelector('#scenario-result') as HTMLElement).dataset['outcome'] !== 'running', undefined, { timeout: 20_000 });
  const result = page.locator('#scenario-result');
  assert.is(await result.getAttribute('data-outcome'), 'as-predicted', (await result.textContent()) ?? '');
  const steps = await page.locator('#scenario-steps li').allTextContents();
  for (const expected of [/^fault queued/, /^sent tr_/, /RESPONSE_TIMEOUT: sent → timedOut/, /querying → failed/, /^the late request reached the core/, /^refused as fenced/]) {
    assert.ok(steps.some((s) => expected.test(s)), `${expected} in ${steps.join(' | ')}`);
  }
  await page.close();
});

test('a refused form shows its problem beside the field and clears the last transfer; a stale token asks to sign in again', async (ctx) => {
  const park = await openCustomer(ctx.server, 'Park Jiwoo', 100_000);
  const page = await signedIn(ctx, { token: park.token });
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '1000');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
  // Over MAX_AMOUNT_WON: the 400 names the field, and the previous transfer's panel goes.
  await page.fill('#transfer-amount', '99999999999');
  await page.click('#transfer-send');
  await page.waitForFunction(() => document.querySelector('#transfer-amount-error')!.textContent !== '');
  assert.ok(await page.locator('#live').isHidden(), "the last transfer's panel is gone");
  assert.is(await page.locator('#transfer-amount').getAttribute('aria-invalid'), 'true');
  assert.ok(await page.locator('#error').isHidden(), 'no banner for a form problem');
  // The token stops working: the next action asks to sign in again, and the banner says so.
  assert.is((await api(ctx.server, ADMIN_TOKEN, 'DELETE', `/admin/customers/${(await api(ctx.server, park.token, 'GET', '/me')).body.customer.id}/tokens`)).status, 200);
  await page.click('#refresh');
  await page.waitForSelector('#error:not([hidden]) button');
  assert.match((await page.locator('#error').textContent()) ?? '', 'no longer works');
  assert.is(await page.locator('#error button').textContent(), 'Sign in again');
  await page.click('#error button');
  await page.waitForSelector('#signin:not([hidden])');
  await page.close();
});

test('a scenario whose admin token stopped working (a restarted server) says to sign in again, never a verdict', async (ctx) => {
  const page = await signedIn(ctx, { admin: true });
  // As if the server had restarted with another admin token: every admin call is now a 401.
  await page.route('**/admin/**', (route) =>
    route.fulfill({ status: 401, contentType: 'application/problem+json', body: JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'unknown token' }) }),
  );
  await page.click('#scenario-buttons button[data-scenario="lose-response"]');
  await page.waitForFunction(() => (document.querySelector('#scenario-result') as HTMLElement).dataset['outcome'] === 'signed-out', undefined, { timeout: 10_000 });
  assert.match((await page.locator('#scenario-result').textContent()) ?? '', 'the admin token no longer works; sign in again');
  assert.not.match((await page.locator('#scenario-result').textContent()) ?? '', 'as the talk predicts');
  assert.is(await page.locator('#error button').textContent(), 'Sign in again');
  await page.close();
});

test('signing in twice at once (a double click) starts the page once: one Send is one transfer', async (ctx) => {
  const choi = await openCustomer(ctx.server, 'Choi Yuna', 10_000);
  const page = await ctx.browser.newPage();
  await page.goto(`${ctx.server.url}/`);
  await page.fill('#customer-token', choi.token);
  await page.dblclick('#signin-form button[type="submit"]');
  await page.waitForSelector('#history-list li');
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '100');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="succeeded"]', { timeout: 10_000 });
  await page.waitForTimeout(300);
  const rows = (await api(ctx.server, choi.token, 'GET', `/accounts/${choi.accountId}/transactions`)).body.items.filter((r: { kind: string }) => r.kind === 'transfer-out');
  assert.is(rows.length, 1, 'one transfer, not two');
  assert.is(await page.locator('#scenario-buttons button').count(), 0);
  await page.close();
});

test('a token revoked while a scenario follows its transfer ends the scenario with "sign in again", never stuck running', async (ctx) => {
  const han = await openCustomer(ctx.server, 'Han Seojun', 10_000);
  const page = await signedIn(ctx, { token: han.token, admin: true });
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '100');
  await page.click('#scenario-buttons button[data-scenario="delay-past-cutoff"]');
  await page.waitForSelector('#scenario-countdown:not([hidden])', { timeout: 15_000 });
  const customerId = (await api(ctx.server, han.token, 'GET', '/me')).body.customer.id;
  assert.is((await api(ctx.server, ADMIN_TOKEN, 'DELETE', `/admin/customers/${customerId}/tokens`)).status, 200);
  await page.waitForFunction(() => (document.querySelector('#scenario-result') as HTMLElement).dataset['outcome'] === 'signed-out', undefined, { timeout: 15_000 });
  assert.match((await page.locator('#scenario-result').textContent()) ?? '', 'your customer token no longer works; sign in again');
  assert.ok(await page.locator('#scenario-buttons button').first().isEnabled(), 'the panel is usable again');
  await page.close();
});

test('a token revoked while its transfer is followed live ends the live stream with "sign in again"', async (ctx) => {
  const yoon = await openCustomer(ctx.server, 'Yoon Hana', 10_000);
  const page = await signedIn(ctx, { token: yoon.token });
  // The request and the first queries are lost: the transfer stays in flight for a few seconds.
  await api(ctx.server, ADMIN_TOKEN, 'POST', '/admin/faults', { pipe: 'request', action: 'drop', count: 3 });
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '100');
  await page.click('#transfer-send');
  await page.waitForSelector('#live-state[data-state="sent"], #live-state[data-state="timedOut"], #live-state[data-state="querying"]');
  const customerId = (await api(ctx.server, yoon.token, 'GET', '/me')).body.customer.id;
  assert.is((await api(ctx.server, ADMIN_TOKEN, 'DELETE', `/admin/customers/${customerId}/tokens`)).status, 200);
  await page.waitForSelector('#error:not([hidden]) button', { timeout: 5_000 });
  assert.is(await page.locator('#error button').textContent(), 'Sign in again');
  await api(ctx.server, ADMIN_TOKEN, 'DELETE', '/admin/faults');
  await page.close();
});

test('Refresh while the server cannot be reached shows the error, and the next good Refresh clears it: no unhandled rejection', async (ctx) => {
  const page = await signedIn(ctx, { size: SIZES[0] });
  const errorsBefore = ctx.browser.errors.length;
  // The server "goes away" for this page: its API calls fail as a network error would.
  await page.route('**/accounts/**', (route) => route.abort('connectionrefused'));
  await page.click('#refresh');
  await page.waitForSelector('#error:not([hidden])');
  assert.match((await page.locator('#error').textContent()) ?? '', 'Failed to fetch');
  await page.unroute('**/accounts/**');
  await page.click('#refresh');
  await page.waitForSelector('#error', { state: 'hidden' });
  const since = ctx.browser.errors.slice(errorsBefore).filter((e) => e.startsWith('page error'));
  assert.equal(since, [], 'no uncaught error or unhandled rejection');
  await page.close();
});

test('every control is reached with the keyboard in the order of the page, with a visible focus', async (ctx) => {
  const page = await ctx.browser.newPage();
  await page.goto(`${ctx.server.url}/`);
  await page.fill('#customer-token', ctx.kim.token);
  await page.fill('#admin-token', ADMIN_TOKEN);
  await page.press('#admin-token', 'Enter');
  await page.waitForSelector('#admin:not([hidden]) #scenario-buttons button');
  await page.waitForSelector('#history-list li');
  // Start from the top of the page, as a reader who just arrived.
  await page.evaluate(`(() => { document.body.tabIndex = -1; document.body.focus(); document.body.removeAttribute('tabindex'); })()`);
  const order: string[] = [];
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(`(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      const name = el === document.body ? 'body' : el.id || (el.dataset && el.dataset.scenario) || el.tagName.toLowerCase() + ':' + (el.textContent || '').trim();
      return { id: name, visible: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
    })()`) as { id: string; visible: boolean };
    if (focused.id === 'body') break; // past the last control: the focus leaves the page
    assert.ok(focused.visible, `${focused.id} shows its focus`);
    if (order.includes(focused.id)) break;
    order.push(focused.id);
  }
  const expected = ['a:bank', 'a:machines', 'account-select', 'sign-out', 'transfer-to', 'transfer-amount', 'transfer-memo', 'transfer-send', 'lose-response', 'lose-request', 'delay-past-cutoff', 'duplicate', 'deposit', 'restart-channel', 'refresh', 'history-scroll'];
  const reached = order.filter((id) => expected.includes(id));
  assert.equal(reached, expected, order.join(' → '));
  // Used with the keyboard alone: the account picker switches with the arrow keys.
  await page.focus('#account-select');
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction((second) => document.querySelector('#account-id')?.textContent === String(second), ctx.second);
  await page.close();
});

for (const size of SIZES) test(`${size.name}: every scenario of the talk ends where the talk says it ends`, async (ctx) => {
  const page = await signedIn(ctx, { size, admin: true });
  await page.fill('#transfer-to', String(ctx.lee.accountId));
  await page.fill('#transfer-amount', '1000');
  for (const name of ['lose-response', 'lose-request', 'delay-past-cutoff', 'duplicate', 'deposit', 'restart-channel']) {
    await page.click(`#scenario-buttons button[data-scenario="${name}"]`);
    await page.waitForFunction((n) => {
      const r = document.querySelector('#scenario-result') as HTMLElement;
      return r.dataset['scenario'] === n && r.dataset['outcome'] !== 'running';
    }, name, { timeout: 20_000 });
    const result = page.locator('#scenario-result');
    assert.is(await result.getAttribute('data-outcome'), 'as-predicted', `${name}: ${await result.textContent()}`);
    assert.equal(await overflowingElements(page), [], `${name}: nothing sticks out`);
  }
  await page.close();
});

test('from 360 px to 1440 px the page never scrolls sideways, history rows never overlap, and descriptions stay readable', async (ctx) => {
  for (const width of [360, 600, 601, 800, 904, 960, 1024, 1100, 1440]) {
    const page = await signedIn(ctx, { size: { width, height: 900 } });
    assert.equal(await overflowingElements(page), [], `${width} px`);
    assert.equal(await overlaps(page), [], `${width} px`);
    // Readable at every width: a description gets room for words, not a sliver of a column.
    const what = await page.locator('#history-list li .what').first().evaluate((el) => ({ width: el.getBoundingClientRect().width, lines: el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight) }));
    assert.ok(what.width >= 150 && what.lines <= 3, `${width} px: a description ${Math.round(what.width)} px wide on ${what.lines.toFixed(1)} lines`);
    await page.close();
  }
});

test('nothing was fetched from outside and no page logged an error', ({ browser }) => {
  assert.equal(browser.outside, []);
  // The 400 and 401 answers and the refused connections provoked above on purpose are noted by
  // the browser as failed loads;
  // anything else (a page error, an unhandled rejection) is a defect.
  assert.equal(browser.errors.filter((e) => !/^console: Failed to load resource: (the server responded with a status of 40[01] |net::ERR_CONNECTION_REFUSED)/.test(e)), []);
});

test.run();
