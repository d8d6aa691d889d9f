/**
 * The JSON shapes of the API: money as integer won under plain names, times as ISO strings.
 */
import type { HistoryRow } from '../channel/channel-store.ts';
import type { TransferView } from '../channel/channel.ts';
import type { Posting } from '../net/messages.ts';
import type { ReconcileReport } from '../channel/reconciler.ts';

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function transferJson(t: TransferView) {
  return {
    id: t.id,
    fromAccountId: t.fromAccountId,
    toAccountId: t.toAccountId,
    amount: t.amountWon,
    memo: t.memo,
    state: t.state,
    reason: t.reason,
    requestedAt: iso(t.requestedAt),
    settledAt: iso(t.settledAt),
    journal: t.journal.map((j) => ({ at: iso(j.at), event: j.event, from: j.from, to: j.to })),
    audit: t.audit.map((a) => ({ at: iso(a.at), event: a.event, reason: a.reason })),
  };
}

export function historyItemJson(r: HistoryRow | Posting) {
  return {
    seq: r.seq,
    amount: r.amountWon,
    balanceAfter: r.balanceAfterWon,
    kind: r.kind,
    counterparty: r.counterparty,
    memo: r.memo,
    transferId: r.transferId,
    occurredAt: iso(r.occurredAt),
  };
}

export function reconcileJson(r: ReconcileReport) {
  return {
    accountsChecked: r.accountsChecked,
    mismatches: r.mismatches,
    repaired: r.repaired,
    tookMs: r.tookMs,
    startedAt: iso(r.startedAt),
    problems: r.problems,
  };
}
