/**
 * The event-log consumer: applies the core's postings to the history copy, idempotently by
 * (account, seq), committing its offset in the same channel transaction as the rows, and
 * turns decisions into outcome events for live transfers (S1, S2).
 */
import type { Clock } from '../lib/clock.ts';
import type { EventLogReader } from '../net/event-log.ts';
import type { Posting } from '../net/messages.ts';
import type { TransferEvent } from '../machines/transfer.ts';
import type { ChannelStore } from './channel-store.ts';

export const CONSUMER_NAME = 'history';
export const CONSUMER_BATCH = 500;

export type LogConsumerDeps = {
  store: ChannelStore;
  log: EventLogReader;
  clock: Clock;
  /** Outcome events for transfers, delivered after the batch that carried them commits. */
  deliver: (transferId: string, event: TransferEvent) => void;
  onGap?: (posting: Posting) => void;
};

export function createLogConsumer(deps: LogConsumerDeps) {
  let unsubscribe: (() => void) | null = null;
  let draining = false;

  /** Reads and applies one batch; returns how many records it consumed. */
  function pollOnce(): number {
    const { store } = deps;
    const from = store.consumerOffset(CONSUMER_NAME);
    const entries = deps.log.read(from, CONSUMER_BATCH);
    if (entries.length === 0) return 0;
    const outcomes: [string, TransferEvent][] = [];
    const gaps: Posting[] = [];
    const at = deps.clock.now();
    store.db.transaction(() => {
      for (const { record } of entries) {
        switch (record.type) {
          case 'account-opened':
            store.ensureAccount(record.accountId);
            break;
          case 'posting':
            if (store.applyPosting(record.posting) === 'gap') gaps.push(record.posting);
            break;
          case 'decision':
            outcomes.push([
              record.requestId,
              record.outcome === 'executed'
                ? { type: 'EXECUTED', at, via: 'log', posting: null }
                : { type: 'REJECTED', at, via: 'log', reason: record.reason! },
            ]);
            break;
        }
      }
      store.commitOffset(CONSUMER_NAME, entries[entries.length - 1]!.offset + 1);
    })();
    for (const p of gaps) deps.onGap?.(p);
    for (const [id, event] of outcomes) deps.deliver(id, event);
    return entries.length;
  }

  function drain(): void {
    if (draining) return;
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
    drain,
  };
}
