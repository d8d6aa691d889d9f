/**
 * Configuration: defaults, and a bad value stops the start with a message naming the variable.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { ConfigError, parseConfig } from '../src/config.ts';

test('an empty environment gives the documented defaults', () => {
  assert.equal(parseConfig({}), {
    port: 3000,
    dataDir: './data',
    adminToken: null,
    cutoffMs: 60_000,
    responseTimeoutMs: 3_000,
    maxAmountWon: 1_000_000_000,
    reconcileMs: 60_000,
  });
});

test('every variable is read', () => {
  const c = parseConfig({ PORT: '8080', DATA_DIR: '/tmp/x', ADMIN_TOKEN: 'a-long-admin-token-1234', CUTOFF_MS: '30000', RESPONSE_TIMEOUT_MS: '500', MAX_AMOUNT_WON: '5000', RECONCILE_MS: '0' });
  assert.equal(c, { port: 8080, dataDir: '/tmp/x', adminToken: 'a-long-admin-token-1234', cutoffMs: 30_000, responseTimeoutMs: 500, maxAmountWon: 5000, reconcileMs: 0 });
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
  ['DATA_DIR', ''],
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
  assert.match(result.stderr, 'PORT');
});

test.run();
