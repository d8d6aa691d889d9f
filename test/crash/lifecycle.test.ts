/**
 * The real server as an operator runs it: SIGTERM stops it cleanly (in-flight requests finish,
 * open streams end, the databases close, DATA_DIR is released, exit 0), a second signal ends it
 * at once, SIGTERM to `npm start` stops the server and not only npm, a later start says how
 * to get the demo customers' tokens, and no token ever appears in what the server prints.
 */
import { spawn } from 'node:child_process';
import { Agent, get } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN_TOKEN_FILE, DEMO_TOKENS_FILE } from '../../src/config.ts';
import { lockDataDir } from '../../src/lib/data-dir-lock.ts';
import { bankProcess, type BankProcess } from './bank-process.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SETTINGS = { adminToken: 'lifecycle-admin-token-0001', cutoffMs: 60_000, responseTimeoutMs: 1_500 };

const tempDir = () => mkdtempSync(join(tmpdir(), 'scrollbank-lifecycle-'));

async function call(url: string, method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? null : JSON.parse(text) };
}

/** True once nothing listens at `url` any more. */
async function refused(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
    return false;
  } catch {
    return true;
  }
}

/** Takes and lets go of the directory's lock: throws while another process holds it. */
const lockIsFree = (dataDir: string) => lockDataDir(dataDir)();

async function withBank(body: (bank: BankProcess, url: string) => Promise<void>, settings = SETTINGS): Promise<void> {
  const dataDir = tempDir();
  const bank = bankProcess(dataDir, settings);
  try {
    await body(bank, await bank.start());
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.stack : String(error)}\n--- server output ---\n${bank.output()}`);
  } finally {
    bank.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('SIGTERM lets an in-flight request finish, ends open streams, closes the databases, releases DATA_DIR and exits 0', () =>
  withBank(async (bank, url) => {
    const [kim, lee] = bank.demoCustomers();
    assert.ok(kim && lee, 'two demo customers');
    // Both requests are lost: the transfers stay unfinished until the response timeout and query.
    assert.is((await call(url, 'POST', '/admin/faults', SETTINGS.adminToken, { pipe: 'request', action: 'drop', count: 2 })).status, 201);
    const quick = await call(url, 'POST', '/transfers', kim.token, { fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 }, { Prefer: 'wait=0' });
    assert.is(quick.status, 202);
    // The stream over a keep-alive agent, as a browser holds it: once the stream ends, its
    // connection stays open and idle unless the server closes it.
    const agent = new Agent({ keepAlive: true });
    const streamEnded = new Promise<void>((resolve, reject) => {
      const req = get(`${url}/transfers/${quick.body.id}/stream?access_token=${kim.token}`, { agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`stream: ${res.statusCode}`));
        res.on('data', () => {});
        res.on('end', () => resolve());
      });
      req.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 200)); // the first event: the transfer as it stands
    const inFlight = call(url, 'POST', '/transfers', lee.token, { fromAccountId: lee.accountId, toAccountId: kim.accountId, amount: 1_000 }, { Prefer: 'wait=5' });
    await new Promise((r) => setTimeout(r, 300));
    const exited = bank.stop(); // SIGTERM
    // The open stream ends at once, instead of holding the stop for its whole life.
    await streamEnded;
    const answered = await inFlight;
    const answeredAt = performance.now();
    assert.ok(answered.status === 201 || answered.status === 202, `the in-flight request was answered: ${answered.status}`);
    assert.is(answered.headers.get('connection'), 'close', JSON.stringify([...answered.headers]));
    assert.is(await exited, 0);
    // Once the last answer is out, nothing holds the stop: not the ended stream's idle keep-alive
    // connection (5 s of keepAliveTimeout), nor the answer's own.
    assert.ok(performance.now() - answeredAt < 3_000, `exited ${Math.round(performance.now() - answeredAt)} ms after the last answer`);
    assert.ok(await refused(url), 'nothing listens after the stop');
    lockIsFree(bank.dataDir);
    assert.match(bank.output(), 'stopped: databases closed, DATA_DIR released');
  }));

test('SIGINT (Ctrl-C) stops the server as cleanly as SIGTERM: exit 0, DATA_DIR released', () =>
  withBank(async (bank) => {
    assert.is(await bank.stop('SIGINT'), 0);
    lockIsFree(bank.dataDir);
    const out = bank.output();
    assert.match(out, '"signal":"SIGINT"');
    assert.match(out, 'stopped: databases closed, DATA_DIR released');
  }));

test('a second stop signal ends the server at once, without waiting for in-flight requests', () =>
  withBank(async (bank, url) => {
    const [kim, lee] = bank.demoCustomers();
    await call(url, 'POST', '/admin/faults', SETTINGS.adminToken, { pipe: 'request', action: 'drop', count: 1 });
    // Waits up to 60 s for an outcome that takes minutes (the response timeout is 30 s here).
    const inFlight = call(url, 'POST', '/transfers', kim!.token, { fromAccountId: kim!.accountId, toAccountId: lee!.accountId, amount: 1 }, { Prefer: 'wait=60' }).catch(() => 'cut');
    await new Promise((r) => setTimeout(r, 300));
    const pid = bank.pid()!;
    process.kill(pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    const started = performance.now();
    const exited = bank.stop(); // the second SIGTERM
    assert.is(await exited, 143);
    assert.ok(performance.now() - started < 3_000, 'at once');
    assert.is(await inFlight, 'cut');
    lockIsFree(bank.dataDir);
  }, { ...SETTINGS, responseTimeoutMs: 30_000 }));

test('SIGTERM to the `npm start` process stops the server itself and frees DATA_DIR', async () => {
  const dataDir = tempDir();
  const npm = spawn('npm', ['start', '--silent'], {
    cwd: REPO,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? dataDir, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', ADMIN_TOKEN: SETTINGS.adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not listen in 30 s:\n${output}`)), 30_000);
      npm.stdout!.on('data', () => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
    npm.kill('SIGTERM');
    await exited;
    // npm is gone; the server it started must be gone with it, and its lock.
    for (let i = 0; i < 50 && !(await refused(url)); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(await refused(url), `the server still answers after npm stopped:\n${output}`);
    lockIsFree(dataDir);
  } finally {
    if (npm.exitCode === null) npm.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a later start says the demo customers exist and how to get a token; no token ever appears in the output', () =>
  withBank(async (bank, url) => {
    const demo = bank.demoCustomers();
    assert.is(demo.length, 2);
    assert.is(statSync(join(bank.dataDir, DEMO_TOKENS_FILE)).mode & 0o777, 0o600, 'the tokens file is its owner\'s alone');
    const [kim] = demo;
    // Tokens in every place a request can carry one: the header, the query, the cookie, a body.
    assert.is((await call(url, 'GET', '/me', kim!.token)).status, 200);
    assert.is((await call(url, 'GET', '/me', 'a-wrong-token-that-should-not-be-logged')).status, 401);
    assert.is((await fetch(`${url}/viz/transfers/tr_none?access_token=${kim!.token}`, { redirect: 'manual' })).status, 303);
    assert.is((await fetch(`${url}/viz/transfers/tr_none`, { headers: { Cookie: `scrollbank_token=${kim!.token}` } })).status, 404);
    const issued = await call(url, 'POST', `/admin/customers/1/tokens`, SETTINGS.adminToken);
    assert.is(issued.status, 201);
    const opened = await call(url, 'POST', '/admin/customers', SETTINGS.adminToken, { name: 'Park', openingBalance: 10 });
    assert.is(opened.status, 201);
    assert.is(await bank.stop(), 0);
    await bank.start();
    const out = bank.output();
    const later = out.slice(out.lastIndexOf('--- start 2 ---'));
    assert.match(later, 'demo customers exist: Kim Minji (customer 1, account 1), Lee Junho (customer 2, account 2)');
    assert.match(later, 'POST /admin/customers/<id>/tokens');
    assert.not.match(later, 'opened demo customer', 'the demo customers are not opened twice');
    assert.match(out, 'issued a new token for customer 1', 'an operator can audit the token it issued');
    for (const name of ['channel.db', 'core.db', 'log.db', 'cursor.key', DEMO_TOKENS_FILE]) {
      assert.is(statSync(join(bank.dataDir, name)).mode & 0o077, 0, `${name} is its owner's alone`);
    }
    const secrets = [SETTINGS.adminToken, 'a-wrong-token-that-should-not-be-logged', issued.body.token, opened.body.token, ...demo.map((d) => d.token)];
    for (const secret of secrets) assert.not.ok(out.includes(secret), `a token reached the output: ${secret.slice(0, 6)}...`);
    // Every line the server printed is one JSON object (stdout is not a terminal here).
    for (const line of out.split('\n').filter((l) => l.startsWith('{'))) assert.type(JSON.parse(line).msg, 'string');
    // One request line per request, with its id, route, status and duration.
    const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const me = lines.find((l) => l.msg === 'request' && l.route === '/me' && l.status === 401);
    assert.ok(me && typeof me.requestId === 'string' && typeof me.durationMs === 'number' && me.method === 'GET', JSON.stringify(me));
  }));

test('without ADMIN_TOKEN, the admin token is made on first start, kept in DATA_DIR, and the same after a restart', () =>
  withBank(async (bank, url) => {
    const token = readFileSync(join(bank.dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    assert.is(statSync(join(bank.dataDir, ADMIN_TOKEN_FILE)).mode & 0o777, 0o600);
    assert.is((await call(url, 'GET', '/admin/faults', token)).status, 200);
    assert.is(await bank.stop(), 0);
    const again = await bank.start();
    assert.is((await call(again, 'GET', '/admin/faults', token)).status, 200, 'the same token after a restart');
    assert.not.ok(bank.output().includes(token), 'the token is never printed');
  }, { ...SETTINGS, adminToken: '' }));

test('an unusable admin.token refuses the start before any database is opened, naming the file', () =>
  withBank(async (bank) => {
    assert.is(await bank.stop(), 0);
    const dir = bank.dataDir;
    for (const name of ['core.db', 'channel.db', 'log.db']) rmSync(join(dir, name));
    writeFileSync(join(dir, ADMIN_TOKEN_FILE), 'short\n');
    await bank.start().then(
      () => assert.unreachable('it started'),
      (error: Error) => assert.match(error.message, 'exited during start'),
    );
    assert.match(bank.output(), `${ADMIN_TOKEN_FILE} cannot be used`);
    assert.not.ok(existsSync(join(dir, 'core.db')), 'no database was opened');
  }, { ...SETTINGS, adminToken: '' }));

test('a later start whose demo tokens file is gone says the first tokens are lost, and how to get new ones', () =>
  withBank(async (bank) => {
    assert.is(await bank.stop(), 0);
    rmSync(join(bank.dataDir, DEMO_TOKENS_FILE));
    await bank.start();
    const later = bank.output().slice(bank.output().lastIndexOf('--- start 2 ---'));
    assert.match(later, 'is gone, so whoever did not keep their first tokens needs new ones');
    assert.match(later, 'POST /admin/customers/<id>/tokens');
  }));

test.run();
