/**
 * A crash test of the real server: src/main.ts runs as a child process on a temp DATA_DIR, is
 * loaded with concurrent transfers over HTTP on 127.0.0.1 and SIGKILLed mid-load several times,
 * restarted on the same directory each time, then checked from outside and from its databases.
 *
 * One seed (CRASH_SEED, default 1) fixes the plan: every customer's payments (payee, amount,
 * key or none, Prefer: wait) and when each kill lands. The operating system still decides the
 * interleaving, so a run replays the plan, not the exact schedule.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { bankProcess, type BankProcess } from './bank-process.ts';
import { checkDatabases, openReadOnly, type AcknowledgedTransfer } from './db-checks.ts';
import { call, type Json, type Reply } from './http-call.ts';

const SEED = Number(process.env['CRASH_SEED'] ?? 1);
const ADMIN_TOKEN = 'crash-test-admin-token-0001';
/** Short timings, so that what a kill leaves unfinished settles within a second or two. */
const SETTINGS = { adminToken: ADMIN_TOKEN, cutoffMs: 2_000, responseTimeoutMs: 300 };
const NEW_CUSTOMERS = 24;
const OPENING_BALANCE_WON = 200_000;
const AMOUNT_WON = [1_000, 60_000] as const;
const KILLS = 4;
/** Each kill lands this long after the server came up (seeded). */
const KILL_AFTER_START_MS = [500, 1_500] as const;
/** How long the server stays down after a kill (seeded): requests meet a closed port. */
const DOWN_MS = [0, 200] as const;
/** A kill waits for this many new acknowledgments since the last start, so it lands mid-load even on a busy machine. */
const MIN_ACKNOWLEDGED_BETWEEN_KILLS = 20;
const LOAD_AFTER_LAST_START_MS = 1_000;
const WAIT_SECONDS = [0, 1, 2, 5] as const;
/** One payment in 25 goes to an account no bank has: the core refuses it (unknown-account). */
const UNKNOWN_ACCOUNT_ID = 999_999;
const MAX_PAYMENTS_PER_CUSTOMER = 500;
/** A customer stops retrying a payment after this long; it is then reported, not waited for. */
const PAYMENT_DEADLINE_MS = 20_000;
const SETTLE_TIMEOUT_MS = 15_000;
const QUIET_TIMEOUT_MS = 5_000;
const TEST_DEADLINE_MS = 90_000;
const PARALLEL_CHECKS = 16;

// ---------------------------------------------------------------------------------------
// Seeded randomness, small and our own (mulberry32), so the plan replays from the seed alone.

type Random = () => number;
function seeded(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const between = (random: Random, [min, max]: readonly [number, number]) => min + Math.floor(random() * (max - min + 1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// HTTP goes through http-call.ts (127.0.0.1 only); checks run a few at a time.

/** Runs `each` over `items`, `PARALLEL_CHECKS` at a time. */
async function inParallel<T>(items: T[], each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL_CHECKS) await Promise.all(items.slice(i, i + PARALLEL_CHECKS).map(each));
}

// ---------------------------------------------------------------------------------------
// Customers and their payments

type Customer = { customerId: number; token: string; accountId: number; openingBalanceWon: number };
type TransferBody = { fromAccountId: number; toAccountId: number; amount: number; memo: string };
type Payment = { customer: Customer; body: TransferBody; key: string | null; waitSeconds: number };
type Ack = AcknowledgedTransfer & { status: number; payment: Payment };

type Load = {
  acknowledged: Ack[];
  connectionErrors: number;
  inFlightRefusals: number;
  /** Keyless payments whose call died: the customer does not know whether they happened. */
  unanswered: number;
  /** Answers a correct bank never gives; asserted empty. */
  surprises: string[];
  stopped: boolean;
};

async function openCustomers(url: string, bank: BankProcess): Promise<Customer[]> {
  const customers: Customer[] = [];
  for (const demo of bank.demoCustomers()) {
    const me = await call(url, demo.token, 'GET', '/me');
    assert.is(me.status, 200, `GET /me for demo customer ${demo.name}`);
    customers.push({ customerId: me.body.customer.id, token: demo.token, accountId: demo.accountId, openingBalanceWon: demo.openingBalanceWon });
  }
  assert.is(customers.length, 2, `the server seeds two demo customers on first start:\n${bank.output()}`);
  for (let i = 1; i <= NEW_CUSTOMERS; i++) {
    const reply = await call(url, ADMIN_TOKEN, 'POST', '/admin/customers', { name: `Crash Customer ${i}`, openingBalance: OPENING_BALANCE_WON });
    assert.is(reply.status, 201, `open customer ${i}: ${JSON.stringify(reply.body)}`);
    customers.push({ customerId: reply.body.customer.id, token: reply.body.token, accountId: reply.body.account.id, openingBalanceWon: OPENING_BALANCE_WON });
  }
  return customers;
}

function planPayment(random: Random, customer: Customer, accountIds: number[], n: number): Payment {
  const others = accountIds.filter((id) => id !== customer.accountId);
  const toAccountId = random() < 1 / 25 ? UNKNOWN_ACCOUNT_ID : others[Math.floor(random() * others.length)]!;
  const amount = between(random, AMOUNT_WON);
  const keyed = random() < 0.5;
  const waitSeconds = WAIT_SECONDS[Math.floor(random() * WAIT_SECONDS.length)]!;
  const memo = `crash ${SEED} c${customer.customerId} #${n}`;
  return { customer, body: { fromAccountId: customer.accountId, toAccountId, amount, memo }, key: keyed ? `crash-${SEED}-c${customer.customerId}-${n}` : null, waitSeconds };
}

function postPayment(url: string, p: Payment): Promise<Reply> {
  const headers: Record<string, string> = { Prefer: `wait=${p.waitSeconds}` };
  if (p.key !== null) headers['Idempotency-Key'] = p.key;
  return call(url, p.customer.token, 'POST', '/transfers', p.body, headers, p.waitSeconds * 1000 + 5_000);
}

/** What a 2xx answer must say, whatever else happened. */
function surprisesIn(p: Payment, reply: Reply, afterConnectionError: boolean): string[] {
  const out: string[] = [];
  const t = reply.body;
  const what = `${p.body.memo} (key ${p.key}) answered ${reply.status}`;
  if (t.fromAccountId !== p.body.fromAccountId || t.toAccountId !== p.body.toAccountId || t.amount !== p.body.amount || t.memo !== p.body.memo) out.push(`${what} with another transfer: ${JSON.stringify(t)}`);
  const settled = t.state === 'succeeded' || t.state === 'failed';
  if (reply.status === 201 && !settled) out.push(`${what} but ${t.state}`);
  if (reply.status === 202 && settled) out.push(`${what} but ${t.state}`);
  if (reply.status === 200 && !afterConnectionError) out.push(`${what}: a replay of a key never sent before`);
  return out;
}

/** One payment, as a customer makes it: a keyed one is retried with the same key and body until answered. */
async function pay(bank: BankProcess, load: Load, p: Payment): Promise<void> {
  const deadline = Date.now() + PAYMENT_DEADLINE_MS;
  let afterConnectionError = false;
  while (Date.now() < deadline) {
    const url = await bank.whenUp();
    let reply: Reply;
    try {
      reply = await postPayment(url, p);
    } catch {
      load.connectionErrors++;
      if (p.key === null) {
        load.unanswered++;
        return;
      }
      afterConnectionError = true;
      await sleep(20);
      continue;
    }
    if (reply.status === 409) {
      load.inFlightRefusals++; // an earlier payment of this account is still unfinished
      await sleep(30);
      continue;
    }
    if (reply.status !== 200 && reply.status !== 201 && reply.status !== 202) {
      load.surprises.push(`${p.body.memo} (key ${p.key}) answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      return;
    }
    load.surprises.push(...surprisesIn(p, reply, afterConnectionError));
    const t = reply.body;
    load.acknowledged.push({ id: t.id, customerId: p.customer.customerId, fromAccountId: p.body.fromAccountId, toAccountId: p.body.toAccountId, amountWon: p.body.amount, memo: p.body.memo, idempotencyKey: p.key, state: t.state, reason: t.reason, status: reply.status, payment: p });
    return;
  }
  load.surprises.push(`${p.body.memo} (key ${p.key}) got no answer in ${PAYMENT_DEADLINE_MS} ms`);
}

async function customerPays(bank: BankProcess, load: Load, customer: Customer, accountIds: number[]): Promise<void> {
  const random = seeded(SEED * 1_000 + customer.accountId);
  for (let n = 1; n <= MAX_PAYMENTS_PER_CUSTOMER && !load.stopped; n++) await pay(bank, load, planPayment(random, customer, accountIds, n));
}

/**
 * SIGKILLs the server KILLS times at seeded moments, each once the restarted bank has taken
 * some load again (bounded), and starts it again; returns the acknowledged count at each kill.
 */
async function killRepeatedly(bank: BankProcess, load: Load, killedAt: number[]): Promise<number[]> {
  const random = seeded(SEED);
  const acknowledgedAtKill: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    const atStart = load.acknowledged.length;
    await sleep(between(random, KILL_AFTER_START_MS));
    for (let waited = 0; load.acknowledged.length < atStart + MIN_ACKNOWLEDGED_BETWEEN_KILLS && waited < PAYMENT_DEADLINE_MS; waited += 50) await sleep(50);
    acknowledgedAtKill.push(load.acknowledged.length);
    killedAt.push(Date.now());
    await bank.kill();
    await sleep(between(random, DOWN_MS));
    await bank.start();
  }
  await sleep(LOAD_AFTER_LAST_START_MS);
  return acknowledgedAtKill;
}

// ---------------------------------------------------------------------------------------
// After the last restart: settle, and check from outside

const isSettled = (state: string) => state === 'succeeded' || state === 'failed';

/** Polls every acknowledged transfer until it is settled (bounded); returns each as the server shows it. */
async function settle(url: string, acknowledged: Ack[]): Promise<Map<string, Json>> {
  const seen = new Map<string, Json>();
  let pending = acknowledged;
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (pending.length > 0 && Date.now() < deadline) {
    await inParallel(pending, async (a) => {
      const reply = await call(url, ADMIN_TOKEN, 'GET', `/transfers/${a.id}`);
      assert.is(reply.status, 200, `GET /transfers/${a.id} (acknowledged ${a.status} ${a.state}): ${JSON.stringify(reply.body)}`);
      seen.set(a.id, reply.body);
    });
    pending = pending.filter((a) => !isSettled(seen.get(a.id).state));
    if (pending.length > 0) await sleep(100);
  }
  const stuck = pending.map((a) => `${a.id} ${seen.get(a.id).state}`);
  assert.equal(stuck, [], `acknowledged transfers still unfinished after ${SETTLE_TIMEOUT_MS} ms`);
  return seen;
}

function assertAsAcknowledged(acknowledged: Ack[], seen: Map<string, Json>): void {
  for (const a of acknowledged) {
    const t = seen.get(a.id);
    const same = t.fromAccountId === a.fromAccountId && t.toAccountId === a.toAccountId && t.amount === a.amountWon && t.memo === a.memo;
    assert.ok(same, `${a.id} was acknowledged as ${JSON.stringify(a.payment.body)} and reads ${JSON.stringify(t)}`);
    if (isSettled(a.state)) assert.equal([t.state, t.reason], [a.state, a.reason], `${a.id} was acknowledged ${a.state} (${a.reason})`);
  }
}

/** Every account can pay again: none is left locked by a transfer a kill interrupted. */
async function probeEveryAccount(url: string, customers: Customer[], load: Load): Promise<void> {
  await inParallel(customers, async (c) => {
    const to = customers[(customers.indexOf(c) + 1) % customers.length]!;
    const p: Payment = { customer: c, body: { fromAccountId: c.accountId, toAccountId: to.accountId, amount: 1, memo: `probe ${SEED} c${c.customerId}` }, key: null, waitSeconds: 5 };
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    let reply = await postPayment(url, p);
    while (reply.status === 409 && Date.now() < deadline) {
      await sleep(100); // the transfer that holds the account is settling
      reply = await postPayment(url, p);
    }
    assert.is(reply.status, 201, `account ${c.accountId} cannot pay after the crashes: ${reply.status} ${JSON.stringify(reply.body)}`);
    assert.ok(reply.body.state === 'succeeded' || reply.body.reason === 'insufficient-funds', `probe from ${c.accountId}: ${JSON.stringify(reply.body)}`);
    load.acknowledged.push({ id: reply.body.id, customerId: c.customerId, fromAccountId: c.accountId, toAccountId: to.accountId, amountWon: 1, memo: p.body.memo, idempotencyKey: null, state: reply.body.state, reason: reply.body.reason, status: 201, payment: p });
  });
}

/** Every key, sent once more with its body, answers its one transfer; with another body, it is refused. */
async function replayEveryKey(url: string, acknowledged: Ack[], seen: Map<string, Json>): Promise<number> {
  const keyed = acknowledged.filter((a) => a.idempotencyKey !== null);
  await inParallel(keyed, async (a) => {
    const reply = await postPayment(url, { ...a.payment, waitSeconds: 0 });
    assert.is(reply.status, 200, `replay of key ${a.idempotencyKey}: ${JSON.stringify(reply.body)}`);
    assert.is(reply.body.id, a.id, `key ${a.idempotencyKey} answers another transfer`);
    assert.equal([reply.body.state, reply.body.reason], [seen.get(a.id).state, seen.get(a.id).reason], `replay of ${a.id}`);
  });
  for (const a of keyed.slice(0, 3)) {
    const reply = await postPayment(url, { ...a.payment, body: { ...a.payment.body, amount: a.amountWon + 1 }, waitSeconds: 0 });
    assert.is(reply.status, 422, `key ${a.idempotencyKey} with another body: ${JSON.stringify(reply.body)}`);
    assert.is(reply.body.transferId, a.id);
  }
  return keyed.length;
}

/** Waits (bounded) until the channel's balances add up to the money opened and stay put; returns them. */
async function quietBalances(url: string, customers: Customer[], openedWon: number): Promise<Map<number, number>> {
  const read = async () => {
    const balances = new Map<number, number>();
    await inParallel(customers, async (c) => {
      const reply = await call(url, ADMIN_TOKEN, 'GET', `/accounts/${c.accountId}`);
      assert.is(reply.status, 200);
      balances.set(c.accountId, reply.body.balance);
    });
    return balances;
  };
  const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const deadline = Date.now() + QUIET_TIMEOUT_MS;
  let last = await read();
  for (;;) {
    await sleep(200);
    const now = await read();
    if (sum(now) === openedWon && JSON.stringify([...now]) === JSON.stringify([...last])) return now;
    assert.ok(Date.now() < deadline, `the channel's balances sum to ${sum(now)}, not ${openedWon}, after ${QUIET_TIMEOUT_MS} ms`);
    last = now;
  }
}

async function assertNewestRowsMatch(url: string, customers: Customer[], balances: Map<number, number>): Promise<void> {
  await inParallel(customers, async (c) => {
    const page = await call(url, c.token, 'GET', `/accounts/${c.accountId}/transactions?limit=1`);
    assert.is(page.status, 200);
    assert.is(page.body.items[0]?.balanceAfter, balances.get(c.accountId), `account ${c.accountId}: newest row's balance vs the account's`);
  });
}

/**
 * After the clean stop: the core holds the balances the channel showed, and the kills caught
 * transfers mid-protocol, not only HTTP calls (some were restored and resumed).
 */
function assertCoreAgreesAfterStop(dataDir: string, balances: Map<number, number>, killedAt: number[]): { resumed: number; outcomes: unknown } {
  const { core, channel, close } = openReadOnly(dataDir);
  try {
    const balanceOf = core.prepare('SELECT balance_won FROM accounts WHERE id = ?').pluck();
    for (const [accountId, balance] of balances) assert.is(balanceOf.get(accountId), balance, `account ${accountId}: core balance vs what the channel showed`);
    // A transfer caught by a kill has journal rows from before it and after the restart (a
    // durable transfer is resumed from its row; the restore itself writes nothing).
    const spanning = channel.prepare(
      'SELECT COUNT(*) FROM (SELECT transfer_id FROM transfer_journal GROUP BY transfer_id HAVING MIN(at) < ? AND MAX(at) > ?)',
    ).pluck();
    const resumed = killedAt.reduce((n, at) => n + (spanning.get(at, at) as number), 0);
    assert.ok(resumed > 0, 'some transfers were interrupted by a kill and resumed after the restart');
    const outcomes = channel.prepare("SELECT state || COALESCE(' ' || reason, '') AS outcome, COUNT(*) AS n FROM transfers GROUP BY outcome ORDER BY n DESC").all();
    return { resumed, outcomes };
  } finally {
    close();
  }
}

/** CRASH_VERBOSE=1: one line on what the run did, to see that a seed exercised something. */
function report(load: Load, acknowledgedAtKill: number[], replayed: number, activity: { resumed: number; outcomes: unknown }): void {
  const byStatus = (s: number) => load.acknowledged.filter((a) => a.status === s).length;
  console.error(
    `seed ${SEED}: ${load.acknowledged.length} acknowledged (201: ${byStatus(201)}, 202: ${byStatus(202)}, 200: ${byStatus(200)}), ${replayed} keys replayed, ` +
      `${load.connectionErrors} connection errors, ${load.unanswered} keyless unanswered, ${load.inFlightRefusals} 409s, ` +
      `kills at ${acknowledgedAtKill.join(', ')} acknowledged, ${activity.resumed} resumed, outcomes ${JSON.stringify(activity.outcomes)}`,
  );
}

// ---------------------------------------------------------------------------------------
// The tests

let root: string | null = null;
let bank: BankProcess | null = null;
/** The stopped bank's databases, kept for the second test, which breaks a copy on purpose. */
let finished: { dataDir: string; acknowledged: Ack[]; openedWon: number } | null = null;

const cleanUp = () => {
  bank?.dispose();
  if (root !== null) rmSync(root, { recursive: true, force: true });
};
const onSignal = (signal: NodeJS.Signals) => {
  cleanUp();
  process.exit(signal === 'SIGINT' ? 130 : 143);
};

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'scrollbank-crash-'));
  process.on('exit', cleanUp);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
});
test.after(() => {
  cleanUp();
  process.off('exit', cleanUp);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
});

function withDeadline<T>(ms: number, body: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the crash test took longer than ${ms} ms (seed ${SEED}):\n${bank?.output() ?? ''}`)), ms);
  });
  return Promise.race([body(), late]).finally(() => clearTimeout(timer));
}

test(`a bank killed mid-load ${KILLS} times loses no acknowledged transfer, doubles none and keeps every history exact (seed ${SEED})`, () =>
  withDeadline(TEST_DEADLINE_MS, async () => {
    const dataDir = join(root!, 'data');
    mkdirSync(dataDir);
    bank = bankProcess(dataDir, SETTINGS);
    try {
      const customers = await openCustomers(await bank.start(), bank);
      const openedWon = customers.reduce((sum, c) => sum + c.openingBalanceWon, 0);
      const accountIds = customers.map((c) => c.accountId);
      const load: Load = { acknowledged: [], connectionErrors: 0, inFlightRefusals: 0, unanswered: 0, surprises: [], stopped: false };

      const paying = Promise.all(customers.map((c) => customerPays(bank!, load, c, accountIds)));
      const killedAt: number[] = [];
      const acknowledgedAtKill = await killRepeatedly(bank, load, killedAt).finally(() => (load.stopped = true));
      await paying;

      assert.equal(load.surprises, [], 'answers a correct bank never gives');
      assert.is(bank.starts(), KILLS + 1);
      acknowledgedAtKill.forEach((n, k) => assert.ok(n >= (acknowledgedAtKill[k - 1] ?? 0) + MIN_ACKNOWLEDGED_BETWEEN_KILLS, `kill ${k + 1} landed while payments were being acknowledged (${acknowledgedAtKill.join(', ')})`));
      assert.ok(load.connectionErrors >= KILLS, `the kills cut calls in flight (${load.connectionErrors} connection errors)`);
      assert.ok(load.acknowledged.some((a) => a.status === 202), 'some payments were acknowledged unfinished (202)');

      const url = await bank.whenUp();
      const seen = await settle(url, load.acknowledged);
      assertAsAcknowledged(load.acknowledged, seen);
      await probeEveryAccount(url, customers, load);
      const replayed = await replayEveryKey(url, load.acknowledged, seen);
      assert.ok(replayed > 0, 'some acknowledged payments carried a key');
      const balances = await quietBalances(url, customers, openedWon);
      await assertNewestRowsMatch(url, customers, balances);

      assert.is(await bank.stop(), 0, 'SIGTERM stops the server cleanly');
      const problems = checkDatabases(dataDir, load.acknowledged, openedWon);
      assert.equal(problems, [], `the databases after the crashes (seed ${SEED}):\n${problems.map((p) => `${p.check}: ${p.detail}`).join('\n')}`);
      const activity = assertCoreAgreesAfterStop(dataDir, balances, killedAt);
      finished = { dataDir, acknowledged: load.acknowledged, openedWon };
      if (process.env['CRASH_VERBOSE'] === '1') report(load, acknowledgedAtKill, replayed, activity);
    } finally {
      bank.dispose();
    }
  }));

/** Breaks one thing per check in a copy of the databases: every check must see its own. */
function breakCopy(dataDir: string, acknowledged: Ack[]): void {
  const succeeded = acknowledged.filter((a) => a.state === 'succeeded');
  assert.ok(succeeded.length >= 4, 'enough succeeded transfers to break');
  const [lost, changed, doubled, unfinished] = succeeded as [Ack, Ack, Ack, Ack];
  const channel = new Database(join(dataDir, 'channel.db'));
  const core = new Database(join(dataDir, 'core.db'));
  try {
    channel.pragma('foreign_keys = OFF');
    channel.prepare('DELETE FROM transfers WHERE id = ?').run(lost.id);
    channel.prepare("UPDATE transfers SET state = 'failed', reason = 'not-received' WHERE id = ?").run(changed.id);
    channel.prepare("UPDATE transfers SET state = 'sent', settled_at = NULL WHERE id = ?").run(unfinished.id);
    channel.exec('DROP INDEX transfers_by_idempotency_key');
    const copied = 'customer_id, from_account_id, to_account_id, amount_won, memo, requested_at, settled_at, snapshot, idempotency_key, body_hash';
    channel.prepare(`INSERT INTO transfers (id, state, reason, ${copied}) SELECT 'tr_copy' || id, 'failed', 'not-received', ${copied} FROM transfers WHERE idempotency_key IS NOT NULL LIMIT 1`).run();
    channel.prepare('UPDATE history SET balance_after_won = balance_after_won + 1 WHERE account_id = ? AND seq = 1').run(changed.toAccountId);
    const account = core.prepare('SELECT balance_won, last_seq FROM accounts WHERE id = ?').get(doubled.fromAccountId) as { balance_won: number; last_seq: number };
    core.prepare("INSERT INTO postings (account_id, seq, amount_won, balance_after_won, kind, transfer_id, occurred_at) VALUES (?, ?, ?, ?, 'transfer-out', ?, 0)").run(doubled.fromAccountId, account.last_seq + 1, -doubled.amountWon, Math.max(0, account.balance_won - doubled.amountWon), doubled.id);
    core.prepare('UPDATE accounts SET balance_won = balance_won + 1 WHERE id = ?').run(changed.fromAccountId);
  } finally {
    channel.close();
    core.close();
  }
}

test('the crash checks see every kind of damage a crash could do, in a deliberately broken copy of the databases', () => {
  assert.ok(finished !== null, 'the crash run above left its databases');
  const copy = join(root!, 'broken');
  cpSync(finished.dataDir, copy, { recursive: true });
  breakCopy(copy, finished.acknowledged);
  const found = new Set(checkDatabases(copy, finished.acknowledged, finished.openedWon).map((p) => p.check));
  assert.equal([...found].sort(), ['acknowledged transfers kept', 'agreement', 'at most once', 'conservation', 'convergence', 'idempotency', 'ledger', 'nothing unfinished']);
});

test.run();
