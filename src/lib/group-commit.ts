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
      try {
        db.exec('COMMIT');
      } catch (error) {
        // Nothing of this batch is durable, so none of its effects may leave.
        if (db.inTransaction) db.exec('ROLLBACK');
        const failed = new CommitFailed(`the commit failed: ${error instanceof Error ? error.message : String(error)}`);
        woken.forEach((w) => w.reject(failed));
        deps.onCommitFailed(error);
        return;
      }
      commits++;
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
      return db.transaction(write)();
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
