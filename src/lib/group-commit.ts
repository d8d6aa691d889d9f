/**
 * Group commit for one database: the work of one turn runs inside one open transaction,
 * each unit in its own savepoint, and commits once; effects leave only after that commit.
 */
import { assert } from './assert.ts';
import type { Clock } from './clock.ts';
import type { Db } from './sqlite.ts';

/** Effects queued in one batch; past this a turn is doing far more than one batch should. */
export const MAX_EFFECTS_PER_BATCH = 1_000_000;

export type GroupCommitDeps = {
  db: Db;
  /** The flush is armed on this clock (delay 0: the end of this turn), so virtual time replays it. */
  clock: Clock;
  /** After each COMMIT has returned and before its effects leave (the simulator crashes here). */
  onCommitted?: () => void;
  /** A COMMIT that failed: the side must stop as if it crashed; nothing of the batch was durable. */
  onCommitFailed: (error: unknown) => void;
  /** How long each COMMIT took (under FULL, its fsync): the metrics' commit durations. */
  onCommitTimed?: (durationMs: number) => void;
};

type Waiter = { resolve: () => void; reject: (error: unknown) => void };

export class CommitFailed extends Error {
  override name = 'CommitFailed';
}

export function createGroupCommit(deps: GroupCommitDeps) {
  const { db, clock } = deps;
  let open = false;
  let armed = false;
  let effects: (() => void)[] = [];
  let waiters: Waiter[] = [];
  let commits = 0;
  let closed = false;

  // A unit's savepoint, as prepared statements: a quarter of what db.transaction() costs per call.
  // Units nest (a unit that delivers to another runs it inside itself): SQLite resolves the
  // name to the innermost savepoint, so RELEASE and ROLLBACK TO act on the unit's own.
  const savepoint = db.prepare('SAVEPOINT unit');
  const release = db.prepare('RELEASE unit');
  const rollbackTo = db.prepare('ROLLBACK TO unit');

  function arm(): void {
    if (armed) return;
    armed = true;
    clock.setTimeout(flush, 0);
  }

  function begin(): void {
    if (open) return;
    db.exec('BEGIN IMMEDIATE');
    open = true;
    arm();
  }

  /** Nothing of the batch is durable, so none of its effects may leave; the side stops. */
  function rejectAll(woken: Waiter[], failed: CommitFailed, error: unknown): void {
    woken.forEach((w) => w.reject(failed));
    deps.onCommitFailed(error);
  }

  /** The open batch vanished before its commit: its effects and waiters go as a failed commit's do. */
  function fail(failed: CommitFailed, error: unknown): void {
    const woken = waiters;
    effects = [];
    waiters = [];
    rejectAll(woken, failed, error);
  }

  /** Commits the open batch, then lets its effects leave in the order they were queued. */
  function flush(): void {
    armed = false;
    if (closed) return;
    const out = effects;
    const woken = waiters;
    effects = [];
    waiters = [];
    const committing = open;
    if (open) {
      open = false;
      const started = deps.onCommitTimed === undefined ? 0 : performance.now();
      try {
        db.exec('COMMIT');
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        rejectAll(woken, new CommitFailed(`the commit failed: ${error instanceof Error ? error.message : String(error)}`), error);
        return;
      }
      commits++;
      deps.onCommitTimed?.(performance.now() - started);
    }
    // What was committed is durable even if the side dies while its effects go out (a crash
    // thrown from here): the waiters learn so, whatever becomes of the effects.
    try {
      if (committing) deps.onCommitted?.();
      for (const effect of out) effect();
    } finally {
      woken.forEach((w) => w.resolve());
    }
  }

  return {
    /**
     * Runs `write` now, inside the open batch (opening one if needed), in a savepoint of its
     * own: if it throws, only its writes roll back and the error reaches the caller.
     */
    run<T>(write: () => T): T {
      assert(!closed, 'the database is closed');
      // Inside a transaction someone else opened (a test's fixture), the unit joins it instead.
      if (!open && !db.inTransaction) begin();
      savepoint.run();
      let result: T;
      try {
        result = write();
      } catch (error) {
        if (db.inTransaction) {
          rollbackTo.run();
          release.run();
        } else if (open) {
          // SQLite itself rolled the whole transaction back (a full disk, say): the units before
          // this one are gone too, so the batch failed as a failed commit does.
          open = false;
          fail(new CommitFailed(`the batch was rolled back: ${error instanceof Error ? error.message : String(error)}`), error);
        }
        throw error;
      }
      release.run();
      return result;
    },
    /** Queues an effect that leaves once the open batch has committed (at this turn's flush if none is open). */
    after(effect: () => void): void {
      assert(!closed, 'the database is closed');
      assert(effects.length < MAX_EFFECTS_PER_BATCH, 'a batch holds a bounded number of effects');
      effects.push(effect);
      arm();
    },
    /** Resolves once everything written so far is durable; rejects if that commit fails. */
    durable(): Promise<void> {
      if (!open && effects.length === 0) return Promise.resolve();
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    get inBatch(): boolean {
      return open;
    },
    /** Commits made so far. */
    get commits(): number {
      return commits;
    },
    /** A crash: the open batch is lost, its effects never leave, and its waiters learn it was not made durable. */
    abandon(): void {
      closed = true;
      const woken = waiters;
      effects = [];
      waiters = [];
      if (open && db.open) db.exec('ROLLBACK');
      open = false;
      const lost = new CommitFailed('the side stopped before this batch was committed');
      woken.forEach((w) => w.reject(lost));
    },
  };
}

export type GroupCommit = ReturnType<typeof createGroupCommit>;
