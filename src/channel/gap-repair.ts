/**
 * Gap repair (S8): when the history copy of an account has a hole, fetch the core's postings
 * after the account's last seq over the link and apply them in order, retrying with capped
 * backoff through lost and late answers. Pending repairs are durable rows in channel.db.
 */
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { silentLogger, type Logger } from '../lib/logger.ts';
import type { GroupCommit } from '../lib/group-commit.ts';
import { queryBackoffMs } from '../machines/transfer.ts';
import type { Link } from '../net/link.ts';
import type { LinkResponse, Posting } from '../net/messages.ts';
import type { ApplyResult, ChannelStore } from './channel-store.ts';

/** Postings asked for in one repair request; the core caps its answer at its own limit too. */
export const REPAIR_BATCH = 500;

export type RepairTiming = { answerTimeoutMs: number; backoffBaseMs: number; backoffMaxMs: number };

/** How long to wait for the answer to the n-th ask (from 0) before asking again: a transfer's query backoff. */
export function retryWaitMs(timing: RepairTiming, attempt: number): number {
  return timing.answerTimeoutMs + queryBackoffMs(timing, attempt + 1);
}

export type GapRepairDeps = {
  store: Pick<ChannelStore, 'account' | 'ensureAccount' | 'noteRepair' | 'repairOf' | 'allRepairs' | 'clearRepair'>;
  batch: GroupCommit;
  /** The one apply path of history (inside the batch). */
  apply: (posting: Posting) => ApplyResult;
  link: Link;
  clock: Clock;
  timing: RepairTiming;
  logger?: Logger;
  /** A hole closed by rows from the core (the metrics' gap repairs). */
  onRepaired?: (accountId: number, rows: number) => void;
};

type InFlight = { afterSeq: number; attempt: number; timer: TimerHandle };
type PostingsAnswer = Extract<LinkResponse, { type: 'postings' }>;

export function createGapRepair(deps: GapRepairDeps) {
  const logger = deps.logger ?? silentLogger;
  const { store, clock, timing } = deps;
  const inFlight = new Map<number, InFlight>();
  const idleWaiters = new Map<number, Set<(repaired: boolean) => void>>();
  let running = true;

  function wakeIdle(accountId: number, repaired: boolean): void {
    const set = idleWaiters.get(accountId);
    idleWaiters.delete(accountId);
    set?.forEach((wake) => wake(repaired));
  }

  /** Asks the core for what follows the copy's last seq; re-asks when no answer comes in time. */
  function ask(accountId: number, attempt: number): void {
    if (!running) return;
    const previous = inFlight.get(accountId);
    if (previous !== undefined) clock.clearTimeout(previous.timer);
    const afterSeq = store.account(accountId)?.lastSeq ?? 0;
    const timer = clock.setTimeout(() => {
      inFlight.delete(accountId);
      if (store.repairOf(accountId) !== undefined) ask(accountId, attempt + 1);
    }, retryWaitMs(timing, attempt));
    inFlight.set(accountId, { afterSeq, attempt, timer });
    // afterSeq may come from rows of the open batch: the ask leaves once they are durable.
    deps.batch.after(() => {
      if (running) deps.link.request({ type: 'postings-after', accountId, afterSeq, limit: REPAIR_BATCH });
    });
  }

  function finish(accountId: number): void {
    const pending = inFlight.get(accountId);
    if (pending !== undefined) clock.clearTimeout(pending.timer);
    inFlight.delete(accountId);
    wakeIdle(accountId, true);
  }

  return {
    /**
     * Records, inside the caller's transaction, that `accountId` is missing rows up to at least
     * `seenSeq`. Call `kick` after that transaction commits.
     */
    noteGap(accountId: number, seenSeq: number): void {
      store.ensureAccount(accountId);
      store.noteRepair(accountId, seenSeq, clock.now());
    },
    /** Starts the repair of an account with a durable repair row, unless one is on its way. */
    kick(accountId: number): void {
      if (inFlight.has(accountId)) return;
      const repair = store.repairOf(accountId);
      if (repair === undefined) return;
      logger.info({ accountId, afterSeq: store.account(accountId)?.lastSeq ?? 0, targetSeq: repair.targetSeq }, 'history has a hole: repairing it from the core');
      ask(accountId, 0);
    },
    /** After a restart: carries on with every repair the channel had noted. */
    resumeAll(): void {
      for (const r of store.allRepairs()) this.kick(r.accountId);
    },
    /** An answer to `postings-after`: applies it in order, then finishes or asks for more. */
    onAnswer(answer: PostingsAnswer): void {
      if (!running) return;
      const { accountId } = answer;
      let applied = 0;
      const done = deps.batch.run(() => {
        for (const posting of answer.postings) {
          const result = deps.apply(posting);
          if (result === 'gap') break; // a stale answer from before a reset: the next ask covers it
          if (result === 'applied') applied++;
        }
        const repair = store.repairOf(accountId);
        if (repair === undefined) return true;
        const lastSeq = store.account(accountId)!.lastSeq;
        if (lastSeq >= Math.max(repair.targetSeq, answer.lastSeq)) {
          store.clearRepair(accountId);
          return true;
        }
        return false;
      });
      if (done) {
        if (applied > 0) {
          // Told once the batch holding the rows has committed: a crash before it repairs again.
          const lastSeq = store.account(accountId)?.lastSeq;
          deps.batch.after(() => {
            logger.info({ accountId, applied, lastSeq }, 'gap repaired from the core');
            deps.onRepaired?.(accountId, applied);
          });
        }
        return finish(accountId);
      }
      // Progress, or the answer to what is on its way now: ask for the next batch at once.
      // A late duplicate of an older answer changes nothing and leaves the timer to retry.
      const pending = inFlight.get(accountId);
      if (applied > 0 || pending === undefined || pending.afterSeq === answer.afterSeq) ask(accountId, 0);
    },
    /**
     * Calls `done(true)` as soon as `accountId` has no repair pending (at once if it has none),
     * in the same turn as the answer that completed it, or `done(false)` after `waitMs`.
     */
    afterRepair(accountId: number, waitMs: number, done: (repaired: boolean) => void): void {
      if (store.repairOf(accountId) === undefined) return done(true);
      const timer = clock.setTimeout(() => {
        idleWaiters.get(accountId)?.delete(wake);
        done(false);
      }, waitMs);
      const wake = (repaired: boolean) => {
        clock.clearTimeout(timer);
        done(repaired);
      };
      const set = idleWaiters.get(accountId) ?? new Set();
      set.add(wake);
      idleWaiters.set(accountId, set);
    },
    /** Resolves once `accountId` has no repair pending, or after `waitMs` on the channel's clock. */
    whenRepaired(accountId: number, waitMs: number): Promise<boolean> {
      return new Promise((resolve) => this.afterRepair(accountId, waitMs, resolve));
    },
    pendingCount: () => store.allRepairs().length,
    /** A crash: timers go, the durable repair rows stay for the next start. */
    stop(): void {
      running = false;
      for (const f of inFlight.values()) clock.clearTimeout(f.timer);
      inFlight.clear();
      // Waiters learn that the repair did not finish in this life of the channel.
      for (const id of [...idleWaiters.keys()]) wakeIdle(id, false);
    },
  };
}

export type GapRepair = ReturnType<typeof createGapRepair>;
