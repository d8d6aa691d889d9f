/**
 * The event-log consumer: applies the core's postings to the history copy, idempotently by
 * (account, seq), committing its offset in the same channel transaction as the rows, and
 * turns decisions into outcome events for live transfers (S1, S2, S8).
 */
import type { Clock } from '../lib/clock.ts';
import type { EventLogReader } from '../net/event-log.ts';
import type { TransferEvent } from '../machines/transfer.ts';
import type { ChannelStore } from './channel-store.ts';

export const CONSUMER_NAME = 'history';
export const CONSUMER_BATCH = 500;

export type LogConsumerDeps = {
  store: ChannelStore;
  log: EventLogReader;
  clock: Clock;
  /** S8: exactly-once in effect. Off, every delivery is applied as it comes and the offset commits on its own. */
  exactlyOnce: boolean;
  /**
   * Outcome events for transfers, delivered after the batch that carried them commits, with
   * the sender's account and the seq its history must reach first (null: nothing to wait for).
   */
  deliver: (transferId: string, event: TransferEvent, waitFor: { accountId: number; seq: number } | null) => void;
  /** Inside the batch's transaction: the account's history lacks rows up to at least `seq`. */
  noteGap: (accountId: number, seq: number) => void;
  /** After the batch commits: the accounts whose holes need repair. */
  onGaps: (accountIds: number[]) => void;
};

type Outcome = [transferId: string, event: TransferEvent, waitFor: { accountId: number; seq: number } | null];

export function createLogConsumer(deps: LogConsumerDeps) {
  let unsubscribe: (() => void) | null = null;
  let draining = false;

  function applyBatch(entries: ReturnType<EventLogReader['read']>, outcomes: Outcome[], gapAccounts: Set<number>): void {
    const { store } = deps;
    const at = deps.clock.now();
    for (const { record } of entries) {
      switch (record.type) {
        case 'account-opened':
          store.ensureAccount(record.accountId);
          break;
        case 'posting':
          if (!deps.exactlyOnce) {
            store.applyPostingNaively(record.posting);
          } else if (store.applyPosting(record.posting) === 'gap') {
            deps.noteGap(record.posting.accountId, record.posting.seq);
            gapAccounts.add(record.posting.accountId);
          }
          break;
        case 'decision': {
          const senderSeq = record.outcome === 'executed' ? (record.senderSeq ?? null) : null;
          const waitFor = deps.exactlyOnce && senderSeq !== null ? { accountId: record.fromAccountId, seq: senderSeq } : null;
          // The sender's row may be missing (lost, or held behind a hole): repair it, and let
          // the outcome wait for it, so that a success never shows before its row does.
          if (waitFor !== null && (store.account(waitFor.accountId)?.lastSeq ?? 0) < waitFor.seq) {
            deps.noteGap(waitFor.accountId, waitFor.seq);
            gapAccounts.add(waitFor.accountId);
          }
          outcomes.push([
            record.requestId,
            record.outcome === 'executed'
              ? { type: 'EXECUTED', at, via: 'log', posting: null }
              : { type: 'REJECTED', at, via: 'log', reason: record.reason! },
            waitFor,
          ]);
          break;
        }
      }
    }
  }

  /** Reads and applies one batch; returns how many records it consumed. */
  function pollOnce(): number {
    const { store } = deps;
    const from = store.consumerOffset(CONSUMER_NAME);
    const entries = deps.log.read(from, CONSUMER_BATCH);
    if (entries.length === 0) return 0;
    const outcomes: Outcome[] = [];
    const gapAccounts = new Set<number>();
    const nextOffset = entries[entries.length - 1]!.offset + 1;
    if (deps.exactlyOnce) {
      store.db.transaction(() => {
        applyBatch(entries, outcomes, gapAccounts);
        store.commitOffset(CONSUMER_NAME, nextOffset);
      })();
    } else {
      store.db.transaction(() => applyBatch(entries, outcomes, gapAccounts))();
      store.commitOffset(CONSUMER_NAME, nextOffset);
    }
    if (gapAccounts.size > 0) deps.onGaps([...gapAccounts]);
    for (const [id, event, waitFor] of outcomes) deps.deliver(id, event, waitFor);
    return entries.length;
  }

  function drain(): void {
    if (draining || unsubscribe === null) return;
    draining = true;
    try {
      while (pollOnce() === CONSUMER_BATCH) {
        // keep reading while full batches come back
      }
    } finally {
      draining = false;
    }
  }

  return {
    start(): void {
      unsubscribe = deps.log.subscribe(drain);
      drain();
    },
    stop(): void {
      unsubscribe?.();
      unsubscribe = null;
    },
    get running(): boolean {
      return unsubscribe !== null;
    },
    drain,
    /** Redelivery from an older offset, as after a consumer-group rebalance: at-least-once. */
    seek(offset: number): void {
      deps.store.commitOffset(CONSUMER_NAME, Math.max(1, offset));
      drain();
    },
  };
}
