/**
 * History: the channel's exact copy of every account's postings. One apply path for a posting,
 * whether it comes from the log, from a transfer's answer (read your writes) or from repair,
 * with S8 on and off; pages; the log consumer; gap repair; reconciliation.
 */
import { assert } from '../lib/assert.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { silentLogger, type Logger } from '../lib/logger.ts';
import type { GroupCommit } from '../lib/group-commit.ts';
import type { TransferEvent } from '../machines/transfer.ts';
import type { EventLogReader } from '../net/event-log.ts';
import type { Link } from '../net/link.ts';
import type { LinkResponse, Posting } from '../net/messages.ts';
import type { ApplyResult, ChannelStore, HistoryRow, PageItem } from './channel-store.ts';
import { createGapRepair, type GapRepair } from './gap-repair.ts';
import { CONSUMER_NAME, createLogConsumer, type LogConsumerDeps } from './log-consumer.ts';
import { createReconciler, ReconcileInterrupted, type ReconcileReport, type Reconciler } from './reconciler.ts';

export type HistoryTiming = { queryTimeoutMs: number; backoffBaseMs: number; backoffMaxMs: number; reconcileIntervalMs: number };

/** Rows that became durable in one channel commit, and when that commit returned. */
export type AppliedListener = (postings: Posting[], appliedAtMs: number) => void;

export type HistoryDeps = {
  store: ChannelStore;
  batch: GroupCommit;
  clock: Clock;
  link: Link;
  log: EventLogReader;
  /** S8: exactly-once in effect. */
  exactlyOnce: boolean;
  timing: HistoryTiming;
  /** Where a transfer's outcome read from the log goes (after the batch that carried it commits). */
  deliverOutcome: (transferId: string, event: TransferEvent) => void;
  listeners: Set<AppliedListener>;
  /** Inside the consumer's batch: a late request the core refused, for the transfer's audit. */
  audit: LogConsumerDeps['audit'];
  logger?: Logger;
  observer?: HistoryObserver;
};

/** What the metrics count of history sync. */
export type HistoryObserver = {
  repaired?(accountId: number, rows: number): void;
  reconciled?(report: ReconcileReport): void;
  /** Records retention removed before the copy read them. */
  lost?(records: number): void;
};

export function createHistory(deps: HistoryDeps) {
  const { store, batch, clock } = deps;
  let applied: Posting[] = [];
  let reportQueued = false;
  let reconcileTimer: TimerHandle | null = null;
  let lastReconcile: ReconcileReport | null = null;
  let stopped = false;

  /** Hands the rows of this batch to the listeners once it has committed (the benchmark's sync lag). */
  function report(posting: Posting): void {
    if (deps.listeners.size === 0) return;
    applied.push(posting);
    if (reportQueued) return;
    reportQueued = true;
    batch.after(() => {
      const rows = applied;
      applied = [];
      reportQueued = false;
      const at = clock.now();
      deps.listeners.forEach((l) => l(rows, at));
    });
  }

  /** The one apply path, inside the open batch: idempotent by (account, seq), holes noted for repair (S8). */
  function apply(posting: Posting): ApplyResult {
    if (!deps.exactlyOnce) {
      report(posting);
      return store.applyPostingNaively(posting);
    }
    const result = store.applyPosting(posting);
    if (result === 'applied') report(posting);
    if (result === 'gap') noteGap(posting.accountId, posting.seq);
    return result;
  }

  function noteGap(accountId: number, seq: number): void {
    repair.noteGap(accountId, seq);
    batch.after(() => repair.kick(accountId));
  }

  const timing = { answerTimeoutMs: deps.timing.queryTimeoutMs, backoffBaseMs: deps.timing.backoffBaseMs, backoffMaxMs: deps.timing.backoffMaxMs };
  const logger = deps.logger ?? silentLogger;
  const repair: GapRepair = createGapRepair({ store, batch, apply, link: deps.link, clock, timing, logger, onRepaired: deps.observer?.repaired });

  /**
   * An outcome from the log settles its transfer once the sender's history holds the
   * transfer's row (read your writes). If the row is still being repaired, the outcome waits
   * for the repair; should that take too long, the transfer's own timers ask the core, whose
   * answer brings the row with it.
   */
  function deliverFromLog(id: string, event: TransferEvent, waitFor: { accountId: number; seq: number } | null): void {
    const holds = () => waitFor === null || store.lastSeqOf(waitFor.accountId) >= waitFor.seq;
    if (holds()) return deps.deliverOutcome(id, event);
    repair.afterRepair(waitFor!.accountId, deps.timing.queryTimeoutMs, () => {
      if (!stopped && holds()) deps.deliverOutcome(id, event);
    });
  }

  /**
   * Retention took records the copy had not read, or the log ends before the copy's position:
   * said out loud, then a reconciliation finds every account that differs and repair brings
   * its rows from the core. Live transfers whose outcome was lost settle by asking the core
   * (their own timers).
   */
  function lost(from: number, to: number): void {
    if (stopped) return;
    if (to > from) {
      logger.warn({ fromOffset: from, toOffset: to - 1, records: to - from }, 'the event log no longer holds records the history copy had not read (retention); reconciling with the core');
      deps.observer?.lost?.(to - from);
    } else {
      logger.error({ position: from, readingFrom: to }, "the event log ends before the history copy's position (the stream was recreated or lost its tail); reading it again from its start and reconciling with the core");
    }
    reconcileNow().catch((error: unknown) => {
      if (!(error instanceof ReconcileInterrupted)) throw error;
    });
  }

  const consumer = createLogConsumer({ store, batch, log: deps.log, now: () => clock.now(), exactlyOnce: deps.exactlyOnce, apply, deliver: deliverFromLog, noteGap, audit: deps.audit, lost });
  // A report waits for its repairs long enough to ride out a lost answer or two; a repair
  // still going after that carries on in the background and shows in the next report.
  const reconciler: Reconciler = createReconciler({ store, batch, link: deps.link, clock, repair, drainLog: () => consumer.drain(), timing: { ...timing, repairWaitMs: 4 * deps.timing.queryTimeoutMs } });

  function reconcileNow(): Promise<ReconcileReport> {
    return reconciler.run().then((r) => {
      lastReconcile = r;
      deps.observer?.reconciled?.(r);
      const line = { accountsChecked: r.accountsChecked, mismatches: r.mismatches, repaired: r.repaired, tookMs: r.tookMs, problems: r.problems.slice(0, 20) };
      if (r.mismatches > 0) logger.warn(line, 'reconciliation found the copy differing from the core');
      else logger.info(line, 'reconciliation: the copy matches the core');
      return r;
    });
  }

  function scheduleReconcile(): void {
    const every = deps.timing.reconcileIntervalMs;
    if (every <= 0 || !deps.exactlyOnce) return;
    reconcileTimer = clock.setTimeout(() => {
      reconcileTimer = null;
      if (stopped) return;
      reconcileNow().then(scheduleReconcile, (error: unknown) => {
        if (!(error instanceof ReconcileInterrupted)) throw error;
      });
    }, every);
  }

  return {
    /** In the settling commit: the sender's rows a transfer's answer brought, through the one apply path. */
    applyInCommit(rows: Posting[]): void {
      for (const p of rows) apply(p);
    },
    /** The last seq the copy holds for an account. */
    knownSeq: (accountId: number) => store.lastSeqOf(accountId),
    /** Answers to repair and reconciliation requests. */
    onAnswer(message: Extract<LinkResponse, { type: 'postings' | 'account-summaries' }>): void {
      if (stopped) return;
      if (message.type === 'postings') repair.onAnswer(message);
      else reconciler.onAnswer(message);
    },
    start(lastReport: ReconcileReport | null): void {
      lastReconcile = lastReport;
      repair.resumeAll();
      consumer.start();
      scheduleReconcile();
    },
    stop(): void {
      stopped = true;
      consumer.stop();
      repair.stop();
      reconciler.stop();
      if (reconcileTimer !== null) clock.clearTimeout(reconcileTimer);
      reconcileTimer = null;
      applied = [];
    },
    /** Newest first: the rows below `beforeSeq`. Reads only the channel's copy. */
    pageHistoryBefore: (accountId: number, beforeSeq: number, limit: number): HistoryRow[] => store.pageHistoryBefore(accountId, beforeSeq, limit),
    /** Newest first: the rows below `beforeSeq` as served, each already JSON. */
    pageItemsBefore: (accountId: number, beforeSeq: number, limit: number): PageItem[] => store.pageItemsBefore(accountId, beforeSeq, limit),
    /** Oldest first: the rows above `afterSeq` as served (pull to refresh). */
    pageItemsAfter: (accountId: number, afterSeq: number, limit: number): PageItem[] => store.pageItemsAfter(accountId, afterSeq, limit),
    reconcile: reconcileNow,
    lastReconcileReport: () => lastReconcile,
    repairsPending: () => repair.pendingCount(),
    /** The next log offset the consumer will read (what it has committed, plus what the open batch holds). */
    consumerNextOffset: () => store.consumerOffset(CONSUMER_NAME),
    restartConsumer(): void {
      assert(!stopped, 'the channel is not running');
      consumer.stop();
      consumer.start();
    },
    redeliverFrom(offset: number): void {
      assert(!stopped, 'the channel is not running');
      consumer.seek(offset);
    },
    drainLog: () => consumer.drain(),
  };
}

export type History = ReturnType<typeof createHistory>;
