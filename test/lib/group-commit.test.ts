/**
 * Group commit: one transaction per turn, each unit in its own savepoint, effects only after
 * the commit has returned, and a failed commit that lets nothing out.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { createGroupCommit } from '../../src/lib/group-commit.ts';
import { VirtualTime } from '../../src/lib/clock.ts';

function setup(onCommitted?: () => void) {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
  const time = new VirtualTime();
  const failures: unknown[] = [];
  const batch = createGroupCommit({ db, clock: time.clock(), onCommitted, onCommitFailed: (e) => failures.push(e) });
  const insert = db.prepare('INSERT INTO t (k) VALUES (?)');
  const keys = () => db.prepare('SELECT k FROM t ORDER BY k').pluck().all();
  return { db, time, batch, insert, keys, failures };
}

test('the units of one turn commit as one transaction, and their effects leave only after it', () => {
  const { db, time, batch, insert, keys } = setup();
  const seen: string[] = [];
  for (const k of ['a', 'b', 'c']) {
    batch.run(() => insert.run(k));
    batch.after(() => seen.push(`${k} sees ${db.inTransaction ? 'an open transaction' : 'the commit'}`));
  }
  assert.equal(seen, [], 'nothing leaves before the commit');
  assert.ok(db.inTransaction);
  time.advance(0);
  assert.equal(seen, ['a sees the commit', 'b sees the commit', 'c sees the commit']);
  assert.equal(keys(), ['a', 'b', 'c']);
  assert.is(batch.commits, 1);
});

test('a unit that fails rolls back alone; the rest of the batch commits', () => {
  const { time, batch, insert, keys } = setup();
  batch.run(() => insert.run('a'));
  assert.throws(() => batch.run(() => {
    insert.run('b');
    insert.run('a'); // the unique key: this unit fails
  }), /UNIQUE/);
  batch.run(() => insert.run('c'));
  time.advance(0);
  assert.equal(keys(), ['a', 'c']);
  assert.is(batch.commits, 1);
});

test('a commit that fails lets none of its effects out and reports the crash', async () => {
  const { db, time, batch, insert, failures } = setup();
  const seen: string[] = [];
  batch.run(() => insert.run('a'));
  batch.after(() => seen.push('effect'));
  const durable = batch.durable().then(() => 'durable', (e: Error) => e.name);
  // The disk fails under the COMMIT.
  const realExec = db.exec.bind(db);
  db.exec = ((sql: string) => (sql === 'COMMIT' ? (() => { throw new Error('disk I/O error'); })() : realExec(sql))) as typeof db.exec;
  time.advance(0);
  assert.equal(seen, [], 'no effect of a batch that did not commit');
  assert.is(failures.length, 1);
  assert.is(await durable, 'CommitFailed');
  assert.is(batch.commits, 0);
});

test('units nest: an inner unit that fails rolls back alone, inside the outer one', () => {
  const { time, batch, insert, keys } = setup();
  batch.run(() => {
    insert.run('a');
    assert.throws(() => batch.run(() => {
      insert.run('b');
      throw new Error('inner');
    }), /inner/);
    insert.run('c');
  });
  time.advance(0);
  assert.equal(keys(), ['a', 'c']);
});

test('a batch SQLite rolled back under a unit fails as a failed commit does: nothing of it leaves', async () => {
  const { db, time, batch, insert, keys, failures } = setup();
  const seen: string[] = [];
  batch.run(() => insert.run('a'));
  batch.after(() => seen.push('effect of a'));
  const durable = batch.durable().then(() => 'durable', (e: Error) => e.name);
  // What SQLITE_FULL and its kin do: the whole transaction is gone when the statement fails.
  assert.throws(() => batch.run(() => {
    db.exec('ROLLBACK');
    throw new Error('database or disk is full');
  }), /disk is full/);
  assert.is(await durable, 'CommitFailed');
  assert.is(failures.length, 1, 'the side is told to stop');
  time.advance(0);
  assert.equal(seen, [], 'no effect of the lost batch');
  assert.equal(keys(), []);
});

test('a crash between the commit and its effects keeps the writes and loses the effects', () => {
  let crash = true;
  const { time, batch, insert, keys } = setup(() => {
    if (crash) throw new Error('crash after commit');
  });
  const seen: string[] = [];
  batch.run(() => insert.run('a'));
  batch.after(() => seen.push('effect'));
  assert.throws(() => time.advance(0), /crash after commit/);
  assert.equal(keys(), ['a'], 'the commit happened');
  assert.equal(seen, [], 'its effect never left');
  crash = false;
  batch.run(() => insert.run('b'));
  time.advance(0);
  assert.equal(keys(), ['a', 'b']);
});

test('the flush is armed on the injected clock: virtual time decides when a batch commits', () => {
  const { db, time, batch, insert } = setup();
  batch.run(() => insert.run('a'));
  assert.ok(db.inTransaction, 'still open: no time has passed');
  assert.is(time.pending(), 1, 'one flush armed, however many units');
  batch.run(() => insert.run('b'));
  assert.is(time.pending(), 1);
  time.advance(0);
  assert.not.ok(db.inTransaction);
});

test.run();
