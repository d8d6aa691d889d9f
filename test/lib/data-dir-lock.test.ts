/**
 * One bank per data directory: a second process on the same DATA_DIR stops before it touches
 * anything, and the lock goes with the process that held it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirBusy, lockDataDir } from '../../src/lib/data-dir-lock.ts';

const tryLockInAnotherProcess = (dir: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', '-e', `import('./src/lib/data-dir-lock.ts').then((m) => { try { m.lockDataDir(${JSON.stringify(dir)}); console.log('locked'); } catch (e) { console.log(e.name); } })`], {
    encoding: 'utf8',
    timeout: 30_000,
  });

test('a second process cannot take a data directory that is in use, and can once it is let go', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scrollbank-lock-'));
  try {
    const release = lockDataDir(dir);
    assert.match(tryLockInAnotherProcess(dir).stdout, 'DataDirBusy');
    release();
    assert.match(tryLockInAnotherProcess(dir).stdout, 'locked');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same process taking the lock twice is refused too', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scrollbank-lock-'));
  try {
    const release = lockDataDir(dir);
    assert.throws(() => lockDataDir(dir), (e: unknown) => e instanceof DataDirBusy);
    release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
