/**
 * Configuration: defaults, and a bad value stops the start with a message naming the variable.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE, lockDataDir } from '../src/lib/data-dir-lock.ts';
import { ConfigError, parseConfig } from '../src/config.ts';

test('an empty environment gives the documented defaults', () => {
  assert.equal(parseConfig({}), {
    port: 3000,
    host: null,
    dataDir: './data',
    adminToken: null,
    cutoffMs: 60_000,
    responseTimeoutMs: 3_000,
    maxAmountWon: 1_000_000_000,
    reconcileMs: 60_000,
    inspect: false,
    logLevel: 'info',
    eventLog: null,
  });
});

test('every variable is read', () => {
  const c = parseConfig({ PORT: '8080', DATA_DIR: '/tmp/x', ADMIN_TOKEN: 'a-long-admin-token-1234', CUTOFF_MS: '30000', RESPONSE_TIMEOUT_MS: '500', MAX_AMOUNT_WON: '5000', RECONCILE_MS: '0', HOST: '127.0.0.1', INSPECT: '1', LOG_LEVEL: 'debug', EVENT_LOG: 'nats://10.0.0.5:4222', EVENT_LOG_STREAM: 'BANK_A', EVENT_LOG_MAX_AGE_S: '3600' });
  assert.equal(c, { port: 8080, host: '127.0.0.1', dataDir: '/tmp/x', adminToken: 'a-long-admin-token-1234', cutoffMs: 30_000, responseTimeoutMs: 500, maxAmountWon: 5000, reconcileMs: 0, inspect: true, logLevel: 'debug', eventLog: { url: 'nats://10.0.0.5:4222', stream: 'BANK_A', maxAgeMs: 3_600_000 } });
});

for (const [name, value] of [
  ['PORT', 'eighty'],
  ['PORT', '70000'],
  ['CUTOFF_MS', '-1'],
  ['CUTOFF_MS', '1.5'],
  ['RESPONSE_TIMEOUT_MS', '0'],
  ['MAX_AMOUNT_WON', '0'],
  ['RECONCILE_MS', 'hourly'],
  ['RECONCILE_MS', '86400001'],
  ['ADMIN_TOKEN', 'short'],
  ['INSPECT', 'yes'],
  ['HOST', 'local host'],
  ['DATA_DIR', ''],
  ['LOG_LEVEL', 'loud'],
  ['EVENT_LOG', 'kafka://broker:9092'],
  ['EVENT_LOG', 'nats://host with space:4222'],
  ['EVENT_LOG_STREAM', 'a.b'],
  ['EVENT_LOG_MAX_AGE_S', '-5'],
] as const) {
  test(`a bad ${name} (${JSON.stringify(value)}) stops the start with a message naming it`, () => {
    try {
      parseConfig({ [name]: value });
      assert.unreachable('should have refused');
    } catch (error) {
      assert.instance(error, ConfigError);
      assert.match((error as Error).message, name);
    }
  });
}

test('PORT=0 asks for any free port, and INSPECT=0 or unset keeps the inspector off', () => {
  assert.is(parseConfig({ PORT: '0' }).port, 0);
  assert.is(parseConfig({ INSPECT: '0' }).inspect, false);
  assert.is(parseConfig({}).inspect, false);
});

test('a response timeout that is not below the cutoff is refused, naming both', () => {
  assert.throws(() => parseConfig({ CUTOFF_MS: '5000', RESPONSE_TIMEOUT_MS: '5000' }), /RESPONSE_TIMEOUT_MS.*CUTOFF_MS/);
});

test('the server refuses to start on a bad value, exits non-zero and names the variable', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, PORT: 'nope', DATA_DIR: '/nonexistent/should-not-be-created' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.is(result.status, 2);
  assert.match(result.stdout, 'PORT');
});

/** Starts src/main.ts with the given environment and waits for it to exit (it must, here). */
const startServer = (env: Record<string, string>) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, HOST: '127.0.0.1', ...env }, encoding: 'utf8', timeout: 30_000 });

test('a DATA_DIR that is a file, or in use by another bank, stops the start before anything is opened', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scrollbank-config-'));
  try {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const onFile = startServer({ PORT: '0', DATA_DIR: file });
    assert.is(onFile.status, 2);
    assert.match(onFile.stdout, 'DATA_DIR');

    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    const release = lockDataDir(dataDir);
    const busy = startServer({ PORT: '0', DATA_DIR: dataDir });
    release();
    assert.is(busy.status, 2);
    assert.match(busy.stdout, /DATA_DIR .* is in use/);
    assert.equal(readdirSync(dataDir), [LOCK_FILE], 'the second bank opened no database');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a PORT already in use stops the start with a message naming it, before anything is written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scrollbank-config-'));
  const blocker = createServer();
  try {
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as AddressInfo).port)));
    const result = startServer({ PORT: String(port), DATA_DIR: dir });
    assert.is(result.status, 1);
    assert.match(result.stdout, `PORT ${port} is already in use`);
    // Refused before anything was opened or written: no database, no demo customers, no token.
    assert.equal(readdirSync(dir), []);
    assert.not.match(result.stdout, 'demo customer');
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
