/**
 * Reconciliation (S8): finds what gap detection cannot, such as an account's last entries
 * lost with no later entry to reveal the hole. Reads the core's account summaries over the
 * link in bounded batches, compares each with the copy, and hands every mismatch to repair.
 */
import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { GroupCommit } from '../lib/group-commit.ts';
import type { Link } from '../net/link.ts';
import type { AccountSummary, LinkResponse } from '../net/messages.ts';
import type { ChannelStore } from './channel-store.ts';
import { retryWaitMs, type GapRepair, type RepairTiming } from './gap-repair.ts';

/** Accounts asked for in one batch: one short read on the core each. */
export const RECONCILE_BATCH = 200;
/** Problems listed in a report; the counts are always whole. */
export const MAX_REPORTED_PROBLEMS = 100;

/** behind: rows missing at the end; missing: the account is unknown; diverged: the copy disagrees and is rebuilt. */
export type ProblemKind = 'missing' | 'behind' | 'diverged';

export type ReconcileReport = {
  startedAt: number;
  accountsChecked: number;
  mismatches: number;
  repaired: number;
  tookMs: number;
  problems: { accountId: number; problem: ProblemKind }[];
};

export class ReconcileInterrupted extends Error {
  override name = 'ReconcileInterrupted';
}

export type ReconcilerDeps = {
  store: Pick<ChannelStore, 'account' | 'historyRow' | 'historyCount' | 'ensureAccount' | 'resetAccount'>;
  batch: GroupCommit;
  link: Link;
  clock: Clock;
  repair: GapRepair;
  /** Applies everything the event log already holds, so records on their way are not mismatches. */
  drainLog: () => void;
  timing: RepairTiming & { repairWaitMs: number };
};

type SummariesAnswer = Extract<LinkResponse, { type: 'account-summaries' }>;
type Pending = { afterAccountId: number; timer: TimerHandle; resolve: (a: SummariesAnswer | null) => void };

export function createReconciler(deps: ReconcilerDeps) {
  const { store, clock, repair, timing } = deps;
  let pending: Pending | null = null;
  let running: Promise<ReconcileReport> | null = null;
  let stopped = false;

  /** One batch of summaries, asked again with capped backoff until an answer comes. */
  function fetchBatch(afterAccountId: number): Promise<SummariesAnswer | null> {
    return new Promise((resolve) => {
      const ask = (attempt: number) => {
        if (stopped) return resolve(null);
        const timer = clock.setTimeout(() => ask(attempt + 1), retryWaitMs(timing, attempt));
        pending = { afterAccountId, timer, resolve };
        deps.link.request({ type: 'account-summaries', afterAccountId, limit: RECONCILE_BATCH });
      };
      ask(0);
    });
  }

  function problemOf(s: AccountSummary): ProblemKind | null {
    const a = store.account(s.accountId);
    if (a === undefined) return 'missing';
    const lastRow = a.lastSeq === 0 ? undefined : store.historyRow(a.id, a.lastSeq);
    const consistent = store.historyCount(a.id) === a.lastSeq && (a.lastSeq === 0 ? a.balanceWon === 0 : lastRow?.balanceAfterWon === a.balanceWon);
    if (!consistent) return 'diverged';
    if (a.lastSeq < s.lastSeq) return 'behind';
    if (s.lastSeq === 0) return null;
    // The copy may be ahead of the summary (rows that landed since the core answered): compare
    // the running balance at the core's last seq.
    return store.historyRow(a.id, s.lastSeq)?.balanceAfterWon === s.balanceWon ? null : 'diverged';
  }

  /** Compares one batch and notes a repair for every mismatch, in one channel transaction. */
  function compareBatch(summaries: AccountSummary[]): { accountId: number; problem: ProblemKind; targetSeq: number }[] {
    return deps.batch.run(() => {
      const found: { accountId: number; problem: ProblemKind; targetSeq: number }[] = [];
      for (const s of summaries) {
        const problem = problemOf(s);
        if (problem === null) continue;
        found.push({ accountId: s.accountId, problem, targetSeq: s.lastSeq });
        store.ensureAccount(s.accountId);
        if (problem === 'diverged') store.resetAccount(s.accountId);
        if (s.lastSeq > 0) repair.noteGap(s.accountId, s.lastSeq);
      }
      return found;
    });
  }

  async function reconcile(): Promise<ReconcileReport> {
    const startedAt = clock.now();
    deps.drainLog();
    let afterAccountId = 0;
    let accountsChecked = 0;
    const found: { accountId: number; problem: ProblemKind; targetSeq: number }[] = [];
    for (;;) {
      const answer = await fetchBatch(afterAccountId);
      // The channel may have stopped while the answer was on its way.
      if (answer === null || stopped) throw new ReconcileInterrupted('the channel stopped during reconciliation');
      accountsChecked += answer.summaries.length;
      const batch = compareBatch(answer.summaries);
      batch.forEach((f) => repair.kick(f.accountId));
      found.push(...batch);
      const lastSummary = answer.summaries[answer.summaries.length - 1];
      if (answer.done || lastSummary === undefined) break;
      afterAccountId = lastSummary.accountId;
    }
    const outcomes = await Promise.all(found.map((f) => repair.whenRepaired(f.accountId, timing.repairWaitMs)));
    if (stopped) throw new ReconcileInterrupted('the channel stopped during reconciliation');
    const repaired = found.filter((f, i) => outcomes[i] && (store.account(f.accountId)?.lastSeq ?? -1) >= f.targetSeq).length;
    return {
      startedAt,
      accountsChecked,
      mismatches: found.length,
      repaired,
      tookMs: clock.now() - startedAt,
      problems: found.slice(0, MAX_REPORTED_PROBLEMS).map(({ accountId, problem }) => ({ accountId, problem })),
    };
  }

  return {
    /** Runs one reconciliation, or joins the one already running. */
    run(): Promise<ReconcileReport> {
      if (running === null) {
        running = reconcile().finally(() => {
          running = null;
        });
      }
      return running;
    },
    onAnswer(answer: SummariesAnswer): void {
      if (pending === null || answer.afterAccountId !== pending.afterAccountId) return; // late or duplicate
      const { timer, resolve } = pending;
      pending = null;
      clock.clearTimeout(timer);
      resolve(answer);
    },
    stop(): void {
      stopped = true;
      if (pending !== null) {
        clock.clearTimeout(pending.timer);
        pending.resolve(null);
        pending = null;
      }
    },
  };
}

export type Reconciler = ReturnType<typeof createReconciler>;
