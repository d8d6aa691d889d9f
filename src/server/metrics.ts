/**
 * Prometheus metrics (prom-client) for GET /metrics: what the transfers, the link, the event
 * log, history sync, the databases and HTTP are doing, with Node's default process metrics
 * (event-loop lag among them). Counters and histograms are fed by the bank's observer hooks
 * and listeners as things happen; gauges are read from the bank at each scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Bank, BankObserver } from '../bank.ts';

/** Transfers whose entry into a waiting state is remembered, for the time they spend there. */
export const MAX_TRACKED_TRANSFERS = 100_000;
/** Recent core commit times kept to find the commit that made a posting durable. */
export const CORE_COMMITS_KEPT = 10_000;

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LONG_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 3, 5, 10, 30, 60, 120, 300];
const WAITING = new Set(['timedOut', 'querying']);
const isFinal = (state: string) => state === 'succeeded' || state === 'failed';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const created = new Counter({ name: 'scrollbank_transfers_created_total', help: 'Transfers stored (requested)', registers });
  const settled = new Counter({ name: 'scrollbank_transfers_settled_total', help: 'Transfers settled, by outcome and reason', labelNames: ['outcome', 'reason'], registers });
  const settleTime = new Histogram({ name: 'scrollbank_transfer_settle_seconds', help: 'From the request to its settlement', buckets: LONG_SECONDS, registers });
  const waiting = new Histogram({ name: 'scrollbank_transfer_state_seconds', help: 'Time a transfer spent in timedOut or querying', labelNames: ['state'], buckets: LONG_SECONDS, registers });
  const link = new Counter({ name: 'scrollbank_link_messages_total', help: 'Link messages by pipe, type and what the fault queue did with them', labelNames: ['pipe', 'type', 'fate'], registers });
  const historyLag = new Histogram({
    name: 'scrollbank_history_lag_seconds',
    help: "From the core commit that made a posting durable to the channel commit that put its row in the history copy",
    buckets: SECONDS,
    registers,
  });
  const repairs = new Counter({ name: 'scrollbank_gap_repairs_total', help: 'Holes in the history copy closed from the core', registers });
  const repairedRows = new Counter({ name: 'scrollbank_gap_repair_rows_total', help: 'Rows applied by gap repairs', registers });
  const reconciliations = new Counter({ name: 'scrollbank_reconciliations_total', help: 'Reconciliation runs against the core', registers });
  const mismatches = new Counter({ name: 'scrollbank_reconciliation_mismatches_total', help: 'Accounts a reconciliation found differing from the core', registers });
  const commits = new Counter({ name: 'scrollbank_commits_total', help: 'Transactions committed, by database', labelNames: ['db'], registers });
  const commitTime = new Histogram({ name: 'scrollbank_commit_seconds', help: 'COMMIT duration (with its fsync under synchronous=FULL), by database', labelNames: ['db'], buckets: SECONDS, registers });
  const http = new Histogram({ name: 'scrollbank_http_request_duration_seconds', help: 'HTTP requests by method, route and status', labelNames: ['method', 'route', 'status'], buckets: SECONDS, registers });

  // Where a transfer entered its current state, and when it was requested; bounded, oldest out.
  const tracked = new Map<string, { requestedAt: number | null; state: string; since: number }>();
  const track = (id: string, entry: { requestedAt: number | null; state: string; since: number }) => {
    tracked.delete(id);
    if (tracked.size >= MAX_TRACKED_TRANSFERS) tracked.delete(tracked.keys().next().value!);
    tracked.set(id, entry);
  };

  // A ring of the latest core commit times, in order: the first at or after a posting's decision made it durable.
  const coreCommits = new Float64Array(CORE_COMMITS_KEPT);
  let coreCommitCount = 0;
  /** The first kept core commit at or after `ms`, or null when none is kept (too old, or not yet seen). */
  const commitAtOrAfter = (ms: number): number | null => {
    const kept = Math.min(coreCommitCount, CORE_COMMITS_KEPT);
    let lo = coreCommitCount - kept;
    let hi = coreCommitCount;
    if (kept === 0 || coreCommits[lo % CORE_COMMITS_KEPT]! > ms) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (coreCommits[mid % CORE_COMMITS_KEPT]! < ms) lo = mid + 1;
      else hi = mid;
    }
    return lo < coreCommitCount ? coreCommits[lo % CORE_COMMITS_KEPT]! : null;
  };

  const observer: BankObserver = {
    coreCommitted(atMs) {
      coreCommits[coreCommitCount % CORE_COMMITS_KEPT] = atMs;
      coreCommitCount++;
    },
    commitTimed(db, durationMs) {
      commits.inc({ db });
      commitTime.observe({ db }, durationMs / 1000);
    },
    linkMessage(pipe, type, fate) {
      link.inc({ pipe, type, fate });
    },
    repaired(_accountId, rows) {
      repairs.inc();
      repairedRows.inc(rows);
    },
    reconciled(report) {
      reconciliations.inc();
      mismatches.inc(report.mismatches);
    },
  };

  return {
    registry,
    /** Hand to createBank: the hooks it calls as commits, messages, repairs and reconciliations happen. */
    observer,
    /** Subscribes to the bank's transitions and history, and reads its gauges at each scrape. */
    attach(bank: Bank): void {
      bank.channel.onTransition((id, step) => {
        const known = tracked.get(id);
        if (step.event === 'REQUEST') {
          created.inc();
          track(id, { requestedAt: step.at, state: step.to, since: step.at });
          return;
        }
        if (known !== undefined && WAITING.has(step.from) && known.state === step.from) waiting.observe({ state: step.from }, (step.at - known.since) / 1000);
        if (isFinal(step.to)) {
          tracked.delete(id);
          settled.inc({ outcome: step.to, reason: step.reason ?? 'none' });
          // A transfer from before a restart: its request time is on its row.
          const requestedAt = known?.requestedAt ?? (bank.channel.running ? (bank.channel.transfer(id)?.requestedAt ?? null) : null);
          if (requestedAt !== null) settleTime.observe((step.at - requestedAt) / 1000);
          return;
        }
        track(id, { requestedAt: known?.requestedAt ?? null, state: step.to, since: step.at });
      });
      bank.channel.onHistoryApplied((postings, appliedAtMs) => {
        for (const p of postings) {
          const committedAt = commitAtOrAfter(p.occurredAt);
          if (committedAt !== null) historyLag.observe(Math.max(0, appliedAtMs - committedAt) / 1000);
        }
      });
      new Gauge({
        name: 'scrollbank_transfers_unfinished',
        help: 'Transfers not yet succeeded or failed',
        registers,
        collect() {
          if (bank.channel.running) this.set(bank.channel.unfinishedCount());
        },
      });
      const appended = () => bank.log.endOffset() - 1;
      const consumed = () => {
        const next = bank.channel.consumerNextOffset();
        return next === null ? null : next - 1;
      };
      new Gauge({
        name: 'scrollbank_log_appended_offset',
        help: 'The last offset appended to the event log',
        registers,
        collect() {
          this.set(appended());
        },
      });
      new Gauge({
        name: 'scrollbank_log_consumed_offset',
        help: "The last event-log offset the channel's consumer has applied",
        registers,
        collect() {
          const c = consumed();
          if (c !== null) this.set(c);
        },
      });
      new Gauge({
        name: 'scrollbank_log_consumer_lag_records',
        help: 'Records appended to the event log that the consumer has not applied yet',
        registers,
        collect() {
          const c = consumed();
          if (c !== null) this.set(Math.max(0, appended() - c));
        },
      });
      new Gauge({
        name: 'scrollbank_gap_repairs_pending',
        help: 'Accounts whose history copy has a hole being repaired',
        registers,
        collect() {
          this.set(bank.channel.repairsPending());
        },
      });
    },
    /** One answered HTTP request. */
    request(method: string, route: string, status: number, seconds: number): void {
      http.observe({ method, route, status: String(status) }, seconds);
    },
  };
}
