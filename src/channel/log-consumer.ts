/**
 * The event-log consumer: applies the core's postings to the history copy, idempotently by
 * (account, seq), committing its offset in the same channel transaction as the rows, and
 * turns decisions into outcome events for live transfers (S1, S2, S8).
 */
import type { GroupCommit } from '../lib/group-commit.ts';
import type { EventLogReader } from '../net/event-log.ts';
import type { TransferEvent } from '../machines/transfer.ts';
import type { LogRecord, Posting } from '../net/messages.ts';
import type { ApplyResult } from './channel-store.ts';

export const CONSUMER_NAME = 'history';
export const CONSUMER_BATCH = 500;

/** The few things the consumer needs of channel.db. */
export type ConsumerStore = {
  ensureAccount(accountId: number): void;
  lastSeqOf(accountId: number): number;
  consumerOffset(consumer: string): number;
  commitOffset(consumer: string, nextOffset: number): void;
};

export type LogConsumerDeps = {
  store: ConsumerStore;
  batch: GroupCommit;
  log: EventLogReader;
  now: () => number;
  /** The one apply path of history (inside the batch): what applying one posting did. */
  apply: (posting: Posting) => ApplyResult;
  /** S8: exactly-once in effect. Off, every delivery is applied as it comes and the offset commits on its own. */
  exactlyOnce: boolean;
  /**
   * Outcome events for transfers, delivered after the batch that carried them commits, with
   * the sender's account and the seq its history must reach first (null: nothing to wait for).
   */
  deliver: (transferId: string, event: TransferEvent, waitFor: { accountId: number; seq: number } | null) => void;
  /** Inside the batch's transaction: the account's history lacks rows up to at least `seq`; repair starts after the commit. */
  noteGap: (accountId: number, seq: number) => void;
  /** Inside the batch: the core refused a late copy of a transfer's request; nothing moves. */
  audit: (record: Extract<LogRecord, { type: 'late-request-refused' }>) => void;
  /**
   * After the commit that moved the position from `from` to `to`: with `to` above, the log no
   * longer holds offsets `from` to `to - 1` (retention removed them while the channel was
   * away); with `to` below, the log ends before `from` (recreated, or its tail lost) and is read
   * again from `to`. The channel says so and reconciles with the core, whose repair brings
   * whatever is missing.
   */
  lost: (from: number, to: number) => void;
};

type Outcome = [transferId: string, event: TransferEvent, waitFor: { accountId: number; seq: number } | null];

export function createLogConsumer(deps: LogConsumerDeps) {
  let unsubscribe: (() => void) | null = null;
  let draining = false;
  /** The next offset to read: ahead of the committed one while a batch is open. */
  let nextOffset = 1;

  function applyBatch(entries: ReturnType<EventLogReader['read']>, outcomes: Outcome[]): void {
    const { store } = deps;
    const at = deps.now();
    for (const { record } of entries) {
      switch (record.type) {
        case 'account-opened':
          store.ensureAccount(record.accountId);
          break;
        case 'posting':
          deps.apply(record.posting);
          break;
        case 'late-request-refused':
          deps.audit(record);
          break;
        case 'decision': {
          const senderSeq = record.outcome === 'executed' ? (record.senderSeq ?? null) : null;
          const waitFor = deps.exactlyOnce && senderSeq !== null ? { accountId: record.fromAccountId, seq: senderSeq } : null;
          // The sender's row may be missing (lost, or held behind a hole): repair it, and let
          // the outcome wait for it, so that a success never shows before its row does.
          if (waitFor !== null && store.lastSeqOf(waitFor.accountId) < waitFor.seq) deps.noteGap(waitFor.accountId, waitFor.seq);
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

  /**
   * Reads and applies one batch of records as a unit of the open channel batch, the offset
   * with the rows (S8); the outcomes it carried go to their transfers once that commits.
   * Returns how many records it consumed.
   */
  function pollOnce(): number {
    const readable = deps.log.readableFrom(nextOffset);
    if (readable !== nextOffset) reposition(readable);
    const entries = deps.log.read(nextOffset, CONSUMER_BATCH);
    if (entries.length === 0) return 0;
    const outcomes: Outcome[] = [];
    nextOffset = entries[entries.length - 1]!.offset + 1;
    const committed = nextOffset;
    if (deps.exactlyOnce) {
      deps.batch.run(() => {
        applyBatch(entries, outcomes);
        deps.store.commitOffset(CONSUMER_NAME, committed);
      });
    } else {
      // Without S8 the rows and the offset are two writes that nothing ties together.
      deps.batch.run(() => applyBatch(entries, outcomes));
      deps.batch.run(() => deps.store.commitOffset(CONSUMER_NAME, committed));
    }
    if (outcomes.length > 0) deps.batch.after(() => outcomes.forEach(([id, event, waitFor]) => deps.deliver(id, event, waitFor)));
    return entries.length;
  }

  /**
   * The log cannot serve the position: records past it are gone (the position moves past them),
   * or the log ends below it (the position moves back, to read it again). Reported, never silent.
   */
  function reposition(to: number): void {
    const from = nextOffset;
    nextOffset = to;
    deps.batch.run(() => deps.store.commitOffset(CONSUMER_NAME, to));
    deps.batch.after(() => deps.lost(from, to));
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
      nextOffset = deps.store.consumerOffset(CONSUMER_NAME);
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
      nextOffset = Math.max(1, offset);
      const to = nextOffset;
      deps.batch.run(() => deps.store.commitOffset(CONSUMER_NAME, to));
      drain();
    },
  };
}
