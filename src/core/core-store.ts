/**
 * core.db access: prepared statements for accounts, postings, decisions, tombstones and
 * the log outbox, created once per open database.
 */
import type { Db } from '../lib/sqlite.ts';
import type { AccountSummary, Decision, LogRecord, Posting, PostingKind, RejectReason } from '../net/messages.ts';

type PostingRow = {
  account_id: number;
  seq: number;
  amount_won: number;
  balance_after_won: number;
  kind: PostingKind;
  counterparty: string | null;
  memo: string | null;
  transfer_id: string | null;
  occurred_at: number;
};

export type CoreAccount = { id: number; holderName: string; balanceWon: number; lastSeq: number };

function toPosting(r: PostingRow): Posting {
  return {
    accountId: r.account_id,
    seq: r.seq,
    amountWon: r.amount_won,
    balanceAfterWon: r.balance_after_won,
    kind: r.kind,
    counterparty: r.counterparty,
    memo: r.memo,
    transferId: r.transfer_id,
    occurredAt: r.occurred_at,
  };
}

export function createCoreStore(db: Db) {
  const s = {
    insertAccount: db.prepare('INSERT INTO accounts (holder_name, balance_won, last_seq, opened_at) VALUES (?, 0, 0, ?)'),
    getAccount: db.prepare('SELECT id, holder_name AS holderName, balance_won AS balanceWon, last_seq AS lastSeq FROM accounts WHERE id = ?'),
    setBalance: db.prepare('UPDATE accounts SET balance_won = ?, last_seq = ? WHERE id = ?'),
    insertPosting: db.prepare(
      `INSERT INTO postings (account_id, seq, amount_won, balance_after_won, kind, counterparty, memo, transfer_id, occurred_at)
       VALUES (@accountId, @seq, @amountWon, @balanceAfterWon, @kind, @counterparty, @memo, @transferId, @occurredAt)`,
    ),
    postingsByTransfer: db.prepare('SELECT * FROM postings WHERE transfer_id = ? ORDER BY amount_won'),
    postingsAfter: db.prepare('SELECT * FROM postings WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
    getDecision: db.prepare('SELECT outcome, reason FROM decisions WHERE request_id = ?'),
    insertDecision: db.prepare(
      'INSERT INTO decisions (request_id, from_account_id, outcome, reason, requested_at, decided_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    hasTombstone: db.prepare('SELECT 1 FROM tombstones WHERE request_id = ?').pluck(),
    insertTombstone: db.prepare('INSERT OR IGNORE INTO tombstones (request_id, fenced_at) VALUES (?, ?)'),
    pruneRejected: db.prepare("DELETE FROM decisions WHERE outcome = 'rejected' AND requested_at < ?"),
    pruneTombstones: db.prepare('DELETE FROM tombstones WHERE fenced_at < ?'),
    insertOutbox: db.prepare('INSERT INTO log_outbox (record) VALUES (?)'),
    outboxAfter: db.prepare('SELECT id, record FROM log_outbox WHERE id > ? ORDER BY id LIMIT ?'),
    // Before db/006 the relay marked rows published in core.db: where such a database left off.
    lastMarkedPublished: db.prepare('SELECT COALESCE(MAX(id), 0) FROM log_outbox WHERE published = 1').pluck(),
    lastOutboxId: db.prepare('SELECT COALESCE(MAX(id), 0) FROM log_outbox').pluck(),
    totalBalance: db.prepare('SELECT COALESCE(SUM(balance_won), 0) FROM accounts').pluck(),
    summariesAfter: db.prepare('SELECT id AS accountId, last_seq AS lastSeq, balance_won AS balanceWon FROM accounts WHERE id > ? ORDER BY id LIMIT ?'),
    allAccounts: db.prepare('SELECT id, holder_name AS holderName, balance_won AS balanceWon, last_seq AS lastSeq FROM accounts ORDER BY id'),
    executedTwice: db.prepare(
      "SELECT transfer_id FROM postings WHERE kind = 'transfer-out' GROUP BY transfer_id HAVING COUNT(*) > 1",
    ).pluck(),
    allPostings: db.prepare('SELECT * FROM postings WHERE account_id = ? ORDER BY seq'),
    externalTotal: db.prepare("SELECT COALESCE(SUM(amount_won), 0) FROM postings WHERE kind IN ('opening', 'deposit')").pluck(),
  };

  return {
    db,
    getAccount: (id: number) => s.getAccount.get(id) as CoreAccount | undefined,
    allAccounts: () => s.allAccounts.all() as CoreAccount[],
    /** One bounded batch of account summaries, for the channel's reconciliation. */
    summariesAfter: (afterAccountId: number, limit: number) => s.summariesAfter.all(afterAccountId, limit) as AccountSummary[],
    openAccount(holderName: string, at: number): number {
      return Number(s.insertAccount.run(holderName, at).lastInsertRowid);
    },
    /** Appends one posting to an account, keeping its balance and seq; returns the posting. */
    post(account: CoreAccount, p: Omit<Posting, 'accountId' | 'seq' | 'balanceAfterWon'>): Posting {
      const posting: Posting = {
        ...p,
        accountId: account.id,
        seq: account.lastSeq + 1,
        balanceAfterWon: account.balanceWon + p.amountWon,
      };
      s.insertPosting.run(posting);
      s.setBalance.run(posting.balanceAfterWon, posting.seq, account.id);
      account.balanceWon = posting.balanceAfterWon;
      account.lastSeq = posting.seq;
      return posting;
    },
    postingsAfter: (accountId: number, afterSeq: number, limit: number) =>
      (s.postingsAfter.all(accountId, afterSeq, limit) as PostingRow[]).map(toPosting),
    /** The stored decision for a request id, with its postings when it executed. */
    decisionOf(requestId: string): Decision | null {
      const row = s.getDecision.get(requestId) as { outcome: 'executed' | 'rejected'; reason: RejectReason | null } | undefined;
      if (row === undefined) return null;
      if (row.outcome === 'rejected') return { kind: 'rejected', reason: row.reason! };
      const [from, to] = (s.postingsByTransfer.all(requestId) as PostingRow[]).map(toPosting);
      return { kind: 'executed', postings: { from: from!, to: to! } };
    },
    recordDecision(requestId: string, fromAccountId: number, d: Decision, requestedAt: number, at: number): void {
      s.insertDecision.run(requestId, fromAccountId, d.kind, d.kind === 'rejected' ? d.reason : null, requestedAt, at);
    },
    isTombstoned: (requestId: string) => s.hasTombstone.get(requestId) === 1,
    writeTombstone: (requestId: string, at: number) => void s.insertTombstone.run(requestId, at),
    pruneBefore(cutoffAt: number): { decisions: number; tombstones: number } {
      return {
        decisions: s.pruneRejected.run(cutoffAt).changes,
        tombstones: s.pruneTombstones.run(cutoffAt).changes,
      };
    },
    appendToOutbox: (record: LogRecord) => void s.insertOutbox.run(JSON.stringify(record)),
    /** Outbox rows after `afterId`, oldest first: what the relay has still to publish. */
    outboxAfter: (afterId: number, limit: number) =>
      (s.outboxAfter.all(afterId, limit) as { id: number; record: string }[]).map((r) => ({ id: r.id, record: JSON.parse(r.record) as LogRecord })),
    lastMarkedPublished: () => s.lastMarkedPublished.get() as number,
    /** The outbox's last row (0: none): a log whose relay position is past it holds another bank's records. */
    lastOutboxId: () => s.lastOutboxId.get() as number,
    totalBalanceWon: () => s.totalBalance.get() as number,
    externalInWon: () => s.externalTotal.get() as number,
    /** Request ids with more than one transfer-out posting: must always be empty (invariant 2). */
    executedTwice: () => s.executedTwice.all() as string[],
    postingsOf: (accountId: number) => (s.allPostings.all(accountId) as PostingRow[]).map(toPosting),
  };
}

export type CoreStore = ReturnType<typeof createCoreStore>;
