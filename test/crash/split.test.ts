/**
 * The split mode over real processes: a nats-server with JetStream, the core server
 * (src/core-main.ts) and the channel server (src/main.ts --channel), each on its own
 * DATA_DIR, meeting only through NATS. Customers pay over HTTP while the test SIGKILLs the
 * core, SIGKILLs the channel, restarts nats-server, and stops the channel for longer than the
 * stream's retention.
 * After each, every acknowledged transfer settles as it was told; at the end both databases
 * are checked with the crash test's checks (DESIGN.md section 6).
 */
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { remoteCoreOps } from '../../src/net/nats-link.ts';
import { startNatsServer, type NatsServer } from '../../src/lib/nats-server.ts';
import { bankProcess, type BankProcess } from './bank-process.ts';
import { checkDatabases, type AcknowledgedTransfer } from './db-checks.ts';
import { call, type Json } from './http-call.ts';

const ADMIN_TOKEN = 'split-test-admin-token-0001';
const SETTINGS = { adminToken: ADMIN_TOKEN, cutoffMs: 2_000, responseTimeoutMs: 300 };
/** Short, so that a channel away for a few seconds finds its records gone. */
const RETENTION_S = 2;
const NEW_CUSTOMERS = 8;
const OPENING_BALANCE_WON = 100_000;
const SETTLE_TIMEOUT_MS = 20_000;
const PHASE_LOAD_MS = 1_500;
const DEPOSITS_WHILE_AWAY = 4;

type Customer = { customerId: number; token: string; accountId: number };
type Ack = AcknowledgedTransfer;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let root = '';
let nats: NatsServer | null = null;
let core: BankProcess | null = null;
let channel: BankProcess | null = null;
let url = '';
let customers: Customer[] = [];
let openedWon = 0;
const acknowledged: Ack[] = [];
let payments = 0;

const cleanUp = () => {
  channel?.dispose();
  core?.dispose();
  nats?.dispose();
  if (root !== '') rmSync(root, { recursive: true, force: true });
};

// Set up in a test of its own, not a hook: whatever fails here fails the run, by name.
test('the core and the channel start on data dirs of their own and meet through NATS: the demo customers open through the core', async () => {
  root = mkdtempSync(join(tmpdir(), 'scrollbank-split-'));
  process.on('exit', cleanUp);
  nats = await startNatsServer();
  const env = { EVENT_LOG: nats.url, EVENT_LOG_MAX_AGE_S: String(RETENTION_S) };
  core = bankProcess(join(root, 'core'), SETTINGS, 'core', env);
  channel = bankProcess(join(root, 'channel'), SETTINGS, 'channel', env);
  await core.start();
  url = await channel.start();
  for (const demo of channel.demoCustomers()) {
    const me = await call(url, demo.token, 'GET', '/me');
    customers.push({ customerId: me.body.customer.id, token: demo.token, accountId: demo.accountId });
  }
  openedWon = channel.demoCustomers().reduce((sum, d) => sum + d.openingBalanceWon, 0);
  assert.is(customers.length, 2, `the channel opened the demo customers through the core:\n${channel.output()}\n${core.output()}`);
  for (let i = 1; i <= NEW_CUSTOMERS; i++) {
    const reply = await call(url, ADMIN_TOKEN, 'POST', '/admin/customers', { name: `Split Customer ${i}`, openingBalance: OPENING_BALANCE_WON });
    assert.is(reply.status, 201, JSON.stringify(reply.body));
    customers.push({ customerId: reply.body.customer.id, token: reply.body.token, accountId: reply.body.account.id });
    openedWon += OPENING_BALANCE_WON;
  }
});

test.after(() => {
  cleanUp();
  process.off('exit', cleanUp);
});

/** One keyed payment, retried with its key until the channel answers it (it stays up throughout these phases). */
async function pay(from: Customer, to: Customer, memo: string): Promise<void> {
  const key = `split-${memo}`;
  const body = { fromAccountId: from.accountId, toAccountId: to.accountId, amount: 1_000, memo };
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    let reply;
    try {
      // The channel's address: it changes when a phase restarts the channel (PORT=0).
      reply = await call(await channel!.whenUp(), from.token, 'POST', '/transfers', body, { 'Idempotency-Key': key, Prefer: 'wait=1' });
    } catch {
      await sleep(50);
      continue;
    }
    if (reply.status === 409 || reply.status === 503) {
      await sleep(50);
      continue;
    }
    assert.ok([200, 201, 202].includes(reply.status), `${memo}: ${reply.status} ${JSON.stringify(reply.body)}`);
    const t = reply.body;
    acknowledged.push({ id: t.id, customerId: from.customerId, fromAccountId: body.fromAccountId, toAccountId: body.toAccountId, amountWon: body.amount, memo, idempotencyKey: key, state: t.state, reason: t.reason });
    return;
  }
  assert.unreachable(`${memo} got no answer in ${SETTLE_TIMEOUT_MS} ms`);
}

/** Every customer pays the next one, over and over, until `during` resolves. */
async function loadWhile(phase: string, during: () => Promise<void>): Promise<number> {
  const before = acknowledged.length;
  let stop = false;
  const paying = customers.map(async (c, i) => {
    const to = customers[(i + 1) % customers.length]!;
    while (!stop) await pay(c, to, `${phase}-c${i}-${++payments}`);
  });
  try {
    await during();
  } finally {
    stop = true;
    await Promise.all(paying);
  }
  return acknowledged.length - before;
}

/** Polls every acknowledged transfer until settled; each must keep what it was told when settled. Returns them as settled. */
async function settleAll(): Promise<Map<string, Json>> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  const seen = new Map<string, Json>();
  let pending = acknowledged.slice();
  while (pending.length > 0) {
    const still: Ack[] = [];
    for (const a of pending) {
      const reply = await call(url, ADMIN_TOKEN, 'GET', `/transfers/${a.id}`);
      assert.is(reply.status, 200, `GET /transfers/${a.id}`);
      const t = reply.body;
      seen.set(a.id, t);
      if (t.state !== 'succeeded' && t.state !== 'failed') still.push(a);
      else if (a.state === 'succeeded' || a.state === 'failed') assert.equal([t.state, t.reason], [a.state, a.reason], `${a.id} was told ${a.state}`);
    }
    pending = still;
    if (pending.length === 0) break;
    assert.ok(Date.now() < deadline, `still unfinished after ${SETTLE_TIMEOUT_MS} ms: ${pending.map((a) => a.id).join(', ')}`);
    await sleep(100);
  }
  return seen;
}

test('a core SIGKILLed with transfers in flight and started again loses none, doubles none', async () => {
  const before = acknowledged.length;
  const acked = await loadWhile('kill-core', async () => {
    await sleep(PHASE_LOAD_MS / 2);
    await core!.kill();
    await sleep(500);
    await core!.start();
    await sleep(PHASE_LOAD_MS / 2);
  });
  assert.ok(acked > 0, 'payments were acknowledged during the phase');
  const seen = await settleAll();
  // The kill caught transfers mid-protocol: sent to a core that was gone, they timed out and asked again.
  const caught = acknowledged.slice(before).filter((a) => seen.get(a.id).journal.some((j: Json) => j.event === 'RESPONSE_TIMEOUT'));
  assert.ok(caught.length > 0, 'some transfers were in flight when the core was killed');
  await assertWholeWithoutRepair('the core was killed');
});

test('a channel SIGKILLed mid-load and started again loses none, doubles none', async () => {
  const before = acknowledged.length;
  const acked = await loadWhile('kill-channel', async () => {
    await sleep(PHASE_LOAD_MS / 2);
    await channel!.kill();
    await sleep(300);
    url = await channel!.start();
    await sleep(PHASE_LOAD_MS / 2);
  });
  assert.ok(acked > 0, 'payments were acknowledged during the phase');
  assert.ok(acknowledged.slice(before).length > 0);
  await settleAll();
  await assertWholeWithoutRepair('the channel was killed');
});

/**
 * Once the load has settled, both databases already hold every check (the copy converges without
 * help: nothing here may need a repair or a reconciliation to get there).
 */
async function assertWholeWithoutRepair(phase: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const problems = checkDatabases({ core: join(root, 'core'), channel: join(root, 'channel') }, acknowledged, openedWon);
    if (problems.length === 0) break;
    assert.ok(Date.now() < deadline, `after ${phase}:\n${problems.map((p) => `${p.check}: ${p.detail}`).join('\n')}`);
    await sleep(100);
  }
  const repairs = channel!.output().split('\n').filter((l) => /history has a hole|reconciliation found|no longer holds records/.test(l));
  assert.equal(repairs, [], `after ${phase}, the copy needed no repair`);
}

test('a nats-server restarted mid-stream loses nothing: the relay, the reader and the link carry on', async () => {
  let atRestart = 0;
  const acked = await loadWhile('restart-nats', async () => {
    await sleep(PHASE_LOAD_MS / 2);
    await nats!.stop('SIGKILL');
    await sleep(300);
    await nats!.start();
    atRestart = acknowledged.length;
    await sleep(PHASE_LOAD_MS);
  });
  assert.ok(acked > 0);
  const seen = await settleAll();
  // After the server came back, the link answered again and the log settled transfers again.
  const after = acknowledged.slice(atRestart).map((a) => seen.get(a.id));
  assert.ok(after.some((t) => t.journal.some((j: Json) => j.event === 'EXECUTED (response)')), 'the link carries answers after the restart');
  assert.ok(after.length > 0, 'payments were acknowledged after the restart');
  await assertWholeWithoutRepair('nats-server was restarted');
});

test('a channel away for longer than the retention says so on its return and repairs its copy from the core', async () => {
  await channel!.stop();
  const nc = await connect({ servers: nats!.url });
  try {
    const ops = remoteCoreOps(nc, 'scrollbank');
    const jsm = await jetstreamManager(nc);
    const lastBefore = (await jsm.streams.info('SCROLLBANK')).state.last_seq;
    for (let i = 0; i < DEPOSITS_WHILE_AWAY; i++) {
      const posting = await ops.deposit({ accountId: customers[0]!.accountId, amountWon: 10 + i, fromBank: 'KB', fromName: 'Park' });
      assert.ok(posting !== 'unknown-account');
      openedWon += 10 + i;
    }
    // The deposits' records are published, then expired, while the channel is away.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const { messages, last_seq } = (await jsm.streams.info('SCROLLBANK')).state;
      if (messages === 0 && last_seq >= lastBefore + DEPOSITS_WHILE_AWAY) break;
      assert.ok(Date.now() < deadline, `the stream published and expired the deposits' records (${messages} kept, last ${last_seq}, ${lastBefore} before)`);
      await sleep(200);
    }
  } finally {
    await nc.close();
  }
  url = await channel!.start();
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (!/no longer holds records the history copy had not read/.test(channel!.output())) {
    assert.ok(Date.now() < deadline, `the loss was not reported:\n${channel!.output().split("\n").filter((l) => !l.includes("\"request\"")).join("\n")}\n${core!.output().split("\n").filter((l) => !l.includes("\"request\"")).slice(-30).join("\n")}`);
    await sleep(100);
  }
  // The copy catches up: the newest row is the last deposit, and the balance matches it.
  const first = customers[0]!;
  for (;;) {
    const page = await call(url, first.token, 'GET', `/accounts/${first.accountId}/transactions?limit=1`);
    const account = await call(url, first.token, 'GET', `/accounts/${first.accountId}`);
    if (page.body.items[0]?.amount === 10 + DEPOSITS_WHILE_AWAY - 1 && page.body.items[0]?.balanceAfter === account.body.balance) break;
    assert.ok(Date.now() < deadline, `the copy did not catch up: ${JSON.stringify(page.body.items[0])}`);
    await sleep(100);
  }
});

test('the admin calls that act on the core go over NATS: with the core down they answer 503; link faults are taken here, log faults refused', async () => {
  await core!.kill();
  const deposit = await call(url, ADMIN_TOKEN, 'POST', '/admin/deposits', { accountId: customers[1]!.accountId, amount: 5, fromBank: 'KB', fromName: 'Park' });
  assert.is(deposit.status, 503, JSON.stringify(deposit.body));
  assert.is(deposit.body.title, 'Core Unavailable');
  assert.match(deposit.body.detail, 'Nothing was done', 'no core was listening: the deposit certainly did not happen');
  const restart = await call(url, ADMIN_TOKEN, 'POST', '/admin/restart', { side: 'core' });
  assert.is(restart.status, 503, JSON.stringify(restart.body));
  await core!.start();
  const logFault = await call(url, ADMIN_TOKEN, 'POST', '/admin/faults', { pipe: 'log', action: 'drop' });
  assert.is(logFault.status, 409, JSON.stringify(logFault.body));
  assert.is(logFault.body.title, 'Not Available In Split Mode');
  // A link fault applies at the channel's end: the answer to this transfer is lost, and the transfer still settles (by the log).
  const linkFault = await call(url, ADMIN_TOKEN, 'POST', '/admin/faults', { pipe: 'response', action: 'drop' });
  assert.is(linkFault.status, 201, JSON.stringify(linkFault.body));
  const before = acknowledged.length;
  await pay(customers[1]!, customers[2]!, `link-fault-${++payments}`);
  const [settled] = [...(await settleAll()).values()].filter((t) => t.id === acknowledged[before]!.id);
  assert.is(settled.state, 'succeeded');
  assert.ok(settled.journal.some((j: Json) => j.event === 'EXECUTED (log)'), JSON.stringify(settled.journal));
  assert.equal((await call(url, ADMIN_TOKEN, 'GET', '/admin/faults')).body.faults, [], 'the fault was used');
  const restarted = await call(url, ADMIN_TOKEN, 'POST', '/admin/restart', { side: 'core' });
  assert.is(restarted.status, 200, JSON.stringify(restarted.body));
});

test("a channel on a new DATA_DIR beside a core whose log holds records opens no demo customers on that core", async () => {
  const env = { EVENT_LOG: nats!.url, EVENT_LOG_MAX_AGE_S: String(RETENTION_S) };
  const stray = bankProcess(join(root, 'channel-2'), SETTINGS, 'channel', env);
  try {
    await stray.start();
    assert.match(stray.output(), 'not opening demo customers');
    assert.equal(stray.demoCustomers(), []);
    assert.is(await stray.stop(), 0);
  } finally {
    stray.dispose();
  }
  assert.not.match(core!.output().split('--- start').at(-1)!, /opened account/, 'the core opened no account for it');
});

test('after all of it, both databases hold every invariant and every acknowledged transfer', async () => {
  await settleAll();
  assert.is(await channel!.stop(), 0, 'the channel stops cleanly');
  assert.is(await core!.stop(), 0, 'the core stops cleanly');
  const problems = checkDatabases({ core: join(root, 'core'), channel: join(root, 'channel') }, acknowledged, openedWon);
  assert.equal(problems, [], problems.map((p) => `${p.check}: ${p.detail}`).join('\n'));
});

test.run();
