/**
 * channel.db access: customers, token hashes, accounts, transfers with their journal,
 * the history copy and the consumer offset, as prepared statements created once.
 */
import type { Db } from '../lib/sqlite.ts';
import type { Posting, PostingKind } from '../net/messages.ts';
import type { TransferState } from '../machines/transfer.ts';

export type Customer = { id: number; name: string };
export type ChannelAccount = { id: number; customerId: number | null; balanceWon: number; lastSeq: number };
export type RepairRow = { accountId: number; targetSeq: number; notedAt: number };
/** What applying one posting did: written, already there, or held back behind a hole. */
export type ApplyResult = 'applied' | 'duplicate' | 'gap';

export type TransferRow = {
  id: string;
  customerId: number;
  fromAccountId: number;
  toAccountId: number;
  amountWon: number;
  memo: string | null;
  state: TransferState;
  reason: string | null;
  requestedAt: number;
  settledAt: number | null;
  snapshot: string;
  idempotencyKey: string | null;
  bodyHash: string | null;
};

export type JournalRow = { at: number; event: string; from: TransferState | null; to: TransferState };

export type HistoryRow = {
  seq: number;
  amountWon: number;
  balanceAfterWon: number;
  kind: PostingKind;
  counterparty: string | null;
  memo: string | null;
  transferId: string | null;
  occurredAt: number;
};

const ACCOUNT_COLUMNS = 'id, customer_id AS customerId, balance_won AS balanceWon, last_seq AS lastSeq';
const TRANSFER_COLUMNS = `id, customer_id AS customerId, from_account_id AS fromAccountId, to_account_id AS toAccountId,
  amount_won AS amountWon, memo, state, reason, requested_at AS requestedAt, settled_at AS settledAt, snapshot,
  idempotency_key AS idempotencyKey, body_hash AS bodyHash`;
const HISTORY_COLUMNS = `seq, amount_won AS amountWon, balance_after_won AS balanceAfterWon, kind, counterparty, memo,
  transfer_id AS transferId, occurred_at AS occurredAt`;

/** A history row ready to serve: its seq and its API document (db/005), already JSON. */
export type PageItem = [seq: number, json: string];

/** A history row as a raw array, in HISTORY_COLUMNS order. */
type RawHistoryRow = [number, number, number, PostingKind, string | null, string | null, string | null, number];

const historyRowOf = (r: RawHistoryRow): HistoryRow => ({
  seq: r[0],
  amountWon: r[1],
  balanceAfterWon: r[2],
  kind: r[3],
  counterparty: r[4],
  memo: r[5],
  transferId: r[6],
  occurredAt: r[7],
});

export function createChannelStore(db: Db) {
  const s = {
    insertCustomer: db.prepare('INSERT INTO customers (name, created_at) VALUES (?, ?)'),
    getCustomer: db.prepare('SELECT id, name FROM customers WHERE id = ?'),
    insertToken: db.prepare('INSERT INTO tokens (token_hash, customer_id) VALUES (?, ?)'),
    customerByToken: db.prepare('SELECT c.id, c.name FROM tokens t JOIN customers c ON c.id = t.customer_id WHERE t.token_hash = ?'),
    ensureAccount: db.prepare('INSERT OR IGNORE INTO accounts (id) VALUES (?)'),
    setOwner: db.prepare('UPDATE accounts SET customer_id = ? WHERE id = ?'),
    getAccount: db.prepare(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ?`),
    accountsOf: db.prepare(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE customer_id = ? ORDER BY id`),
    allAccounts: db.prepare(`SELECT ${ACCOUNT_COLUMNS} FROM accounts ORDER BY id`),
    appendedRow: db.prepare('UPDATE accounts SET balance_won = ?, last_seq = ? WHERE id = ?'),
    resetAccount: db.prepare('UPDATE accounts SET balance_won = 0, last_seq = 0 WHERE id = ?'),
    // Counts the rows themselves, not a counter beside them: a lost or deleted row must show.
    countHistory: db.prepare('SELECT COUNT(*) FROM history WHERE account_id = ?').pluck(),
    deleteHistory: db.prepare('DELETE FROM history WHERE account_id = ?'),
    insertHistory: db.prepare(
      `INSERT INTO history (account_id, seq, amount_won, balance_after_won, kind, counterparty, memo, transfer_id, occurred_at)
       VALUES (@accountId, @seq, @amountWon, @balanceAfterWon, @kind, @counterparty, @memo, @transferId, @occurredAt)`,
    ),
    insertHistoryIfAbsent: db.prepare(
      `INSERT OR IGNORE INTO history (account_id, seq, amount_won, balance_after_won, kind, counterparty, memo, transfer_id, occurred_at)
       VALUES (@accountId, @seq, @amountWon, @balanceAfterWon, @kind, @counterparty, @memo, @transferId, @occurredAt)`,
    ),
    naiveAppend: db.prepare('UPDATE accounts SET balance_won = balance_won + ?, last_seq = MAX(last_seq, ?) WHERE id = ?'),
    // Keyset paging on the primary key (account_id, seq) of a WITHOUT ROWID table: the table is its own covering index.
    // Raw rows, made into objects here: better-sqlite3 builds arrays much faster than keyed objects.
    pageHistoryBefore: db.prepare(`SELECT ${HISTORY_COLUMNS} FROM history WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`).raw(),
    pageItemsBefore: db.prepare('SELECT seq, item_json FROM history WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?').raw(),
    pageItemsAfter: db.prepare('SELECT seq, item_json FROM history WHERE account_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?').raw(),
    historyRow: db.prepare(`SELECT ${HISTORY_COLUMNS} FROM history WHERE account_id = ? AND seq = ?`),
    upsertRepair: db.prepare(
      `INSERT INTO sync_repairs (account_id, target_seq, noted_at) VALUES (?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET target_seq = MAX(target_seq, excluded.target_seq)`,
    ),
    getRepair: db.prepare('SELECT account_id AS accountId, target_seq AS targetSeq, noted_at AS notedAt FROM sync_repairs WHERE account_id = ?'),
    allRepairs: db.prepare('SELECT account_id AS accountId, target_seq AS targetSeq, noted_at AS notedAt FROM sync_repairs ORDER BY account_id'),
    deleteRepair: db.prepare('DELETE FROM sync_repairs WHERE account_id = ?'),
    allHistory: db.prepare(`SELECT ${HISTORY_COLUMNS} FROM history WHERE account_id = ? ORDER BY seq`),
    insertTransfer: db.prepare(
      `INSERT INTO transfers (id, customer_id, from_account_id, to_account_id, amount_won, memo, state, requested_at, snapshot,
         idempotency_key, body_hash, holds_lock)
       VALUES (@id, @customerId, @fromAccountId, @toAccountId, @amountWon, @memo, 'requested', @requestedAt, @snapshot,
         @idempotencyKey, @bodyHash, @holdsLock)`,
    ),
    updateTransfer: db.prepare(
      'UPDATE transfers SET state = ?, reason = ?, settled_at = ?, next_deadline_at = ?, snapshot = ? WHERE id = ?',
    ),
    getTransfer: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE id = ?`),
    transferByKey: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE customer_id = ? AND idempotency_key = ?`),
    inFlightFrom: db.prepare(
      "SELECT id FROM transfers WHERE from_account_id = ? AND holds_lock = 1 AND state IN ('requested', 'sent', 'timedOut', 'querying')",
    ).pluck(),
    unfinished: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE state IN ('requested', 'sent', 'timedOut', 'querying') ORDER BY requested_at, id`),
    allTransfers: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers ORDER BY requested_at, id`),
    nextJournalN: db.prepare('SELECT COALESCE(MAX(n), 0) + 1 FROM transfer_journal WHERE transfer_id = ?').pluck(),
    insertJournal: db.prepare('INSERT INTO transfer_journal (transfer_id, n, at, event, from_state, to_state) VALUES (?, ?, ?, ?, ?, ?)'),
    journalOf: db.prepare('SELECT at, event, from_state AS "from", to_state AS "to" FROM transfer_journal WHERE transfer_id = ? ORDER BY n'),
    getOffset: db.prepare('SELECT next_offset FROM consumer_offsets WHERE consumer = ?').pluck(),
    setOffset: db.prepare(
      'INSERT INTO consumer_offsets (consumer, next_offset) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET next_offset = excluded.next_offset',
    ),
  };

  return {
    db,
    createCustomer: (name: string, at: number) => Number(s.insertCustomer.run(name, at).lastInsertRowid),
    customer: (id: number) => s.getCustomer.get(id) as Customer | undefined,
    addToken: (tokenHash: string, customerId: number) => void s.insertToken.run(tokenHash, customerId),
    customerByTokenHash: (tokenHash: string) => s.customerByToken.get(tokenHash) as Customer | undefined,
    ensureAccount: (id: number) => void s.ensureAccount.run(id),
    setOwner: (accountId: number, customerId: number) => void s.setOwner.run(customerId, accountId),
    account: (id: number) => s.getAccount.get(id) as ChannelAccount | undefined,
    accountsOf: (customerId: number) => s.accountsOf.all(customerId) as ChannelAccount[],
    allAccounts: () => s.allAccounts.all() as ChannelAccount[],
    /**
     * Applies one posting to the history copy, idempotently by (account, seq) (S8):
     * 'applied', 'duplicate' (already there), or 'gap' (an earlier row is missing; nothing
     * written, so a customer never sees a hole: the row comes back with the repair).
     */
    applyPosting(p: Posting): ApplyResult {
      s.ensureAccount.run(p.accountId);
      const account = s.getAccount.get(p.accountId) as ChannelAccount;
      if (p.seq <= account.lastSeq) return 'duplicate';
      if (p.seq !== account.lastSeq + 1) return 'gap';
      s.insertHistory.run(p);
      s.appendedRow.run(p.balanceAfterWon, p.seq, p.accountId);
      return 'applied';
    },
    /**
     * What a consumer without S8 does: trusts the log. Every delivery adds its amount to the
     * balance and rows land wherever they fall, holes and all. Only the simulator's ablation uses it.
     */
    applyPostingNaively(p: Posting): ApplyResult {
      s.ensureAccount.run(p.accountId);
      s.insertHistoryIfAbsent.run(p);
      s.naiveAppend.run(p.amountWon, p.seq, p.accountId);
      return 'applied';
    },
    /** Forgets an account's copy (rows, balance, last seq) so that repair rebuilds it from the core. */
    resetAccount(accountId: number): void {
      s.deleteHistory.run(accountId);
      s.resetAccount.run(accountId);
    },
    noteRepair: (accountId: number, targetSeq: number, at: number) => void s.upsertRepair.run(accountId, targetSeq, at),
    repairOf: (accountId: number) => s.getRepair.get(accountId) as RepairRow | undefined,
    allRepairs: () => s.allRepairs.all() as RepairRow[],
    clearRepair: (accountId: number) => void s.deleteRepair.run(accountId),
    pageHistoryBefore: (accountId: number, beforeSeq: number, limit: number) =>
      (s.pageHistoryBefore.all(accountId, beforeSeq, limit) as RawHistoryRow[]).map(historyRowOf),
    /** Newest first: [seq, the row's API document as JSON] below `beforeSeq`, for serving pages. */
    pageItemsBefore: (accountId: number, beforeSeq: number, limit: number) => s.pageItemsBefore.all(accountId, beforeSeq, limit) as PageItem[],
    /** Oldest first: [seq, JSON] above `afterSeq`. */
    pageItemsAfter: (accountId: number, afterSeq: number, limit: number) => s.pageItemsAfter.all(accountId, afterSeq, limit) as PageItem[],
    historyCount: (accountId: number) => s.countHistory.get(accountId) as number,
    historyRow: (accountId: number, seq: number) => s.historyRow.get(accountId, seq) as HistoryRow | undefined,
    allHistory: (accountId: number) => s.allHistory.all(accountId) as HistoryRow[],
    insertTransfer: (row: Omit<TransferRow, 'state' | 'reason' | 'settledAt'> & { holdsLock: 0 | 1 }) => void s.insertTransfer.run(row),
    updateTransfer(id: string, state: TransferState, reason: string | null, settledAt: number | null, nextDeadlineAt: number | null, snapshot: string): void {
      s.updateTransfer.run(state, reason, settledAt, nextDeadlineAt, snapshot, id);
    },
    transfer: (id: string) => s.getTransfer.get(id) as TransferRow | undefined,
    transferByKey: (customerId: number, key: string) => s.transferByKey.get(customerId, key) as TransferRow | undefined,
    inFlightFrom: (accountId: number) => s.inFlightFrom.get(accountId) as string | undefined,
    unfinishedTransfers: () => s.unfinished.all() as TransferRow[],
    allTransfers: () => s.allTransfers.all() as TransferRow[],
    appendJournal(transferId: string, at: number, event: string, from: TransferState | null, to: TransferState): void {
      s.insertJournal.run(transferId, s.nextJournalN.get(transferId) as number, at, event, from, to);
    },
    journalOf: (transferId: string) => s.journalOf.all(transferId) as JournalRow[],
    consumerOffset: (consumer: string) => (s.getOffset.get(consumer) as number | undefined) ?? 1,
    commitOffset: (consumer: string, nextOffset: number) => void s.setOffset.run(consumer, nextOffset),
  };
}

export type ChannelStore = ReturnType<typeof createChannelStore>;
