/**
 * channel.db access for identity and history: customers, token hashes, accounts, the history
 * copy, pending repairs and the consumer offset, as prepared statements created once.
 */
import type { Db } from '../lib/sqlite.ts';
import type { Posting, PostingKind } from '../net/messages.ts';

export type Customer = { id: number; name: string };
export type ChannelAccount = { id: number; customerId: number | null; balanceWon: number; lastSeq: number };
export type RepairRow = { accountId: number; targetSeq: number; notedAt: number };
/** What applying one posting did: written, already there, or held back behind a hole. */
export type ApplyResult = 'applied' | 'duplicate' | 'gap';

export type { JournalRow, TransferRow } from './transfers/transfer-store.ts';

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
    deleteTokensOf: db.prepare('DELETE FROM tokens WHERE customer_id = ?'),
    customerByToken: db.prepare('SELECT c.id, c.name FROM tokens t JOIN customers c ON c.id = t.customer_id WHERE t.token_hash = ?'),
    ensureAccount: db.prepare('INSERT OR IGNORE INTO accounts (id) VALUES (?)'),
    setOwner: db.prepare('UPDATE accounts SET customer_id = ? WHERE id = ?'),
    getAccount: db.prepare(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ?`),
    lastSeqOf: db.prepare('SELECT last_seq FROM accounts WHERE id = ?').pluck(),
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
    /** Deletes every token of a customer; returns how many there were. */
    removeTokensOf: (customerId: number) => s.deleteTokensOf.run(customerId).changes,
    customerByTokenHash: (tokenHash: string) => s.customerByToken.get(tokenHash) as Customer | undefined,
    ensureAccount: (id: number) => void s.ensureAccount.run(id),
    setOwner: (accountId: number, customerId: number) => void s.setOwner.run(customerId, accountId),
    account: (id: number) => s.getAccount.get(id) as ChannelAccount | undefined,
    /** The last seq the copy holds for an account (0: none, or no such account). */
    lastSeqOf: (id: number) => (s.lastSeqOf.get(id) as number | undefined) ?? 0,
    accountsOf: (customerId: number) => s.accountsOf.all(customerId) as ChannelAccount[],
    allAccounts: () => s.allAccounts.all() as ChannelAccount[],
    /**
     * Applies one posting to the history copy, idempotently by (account, seq) (S8):
     * 'applied', 'duplicate' (already there), or 'gap' (an earlier row is missing; nothing
     * written, so a customer never sees a hole: the row comes back with the repair).
     */
    applyPosting(p: Posting): ApplyResult {
      // Read first: an account the copy already holds (nearly every posting) costs no write.
      let lastSeq = s.lastSeqOf.get(p.accountId) as number | undefined;
      if (lastSeq === undefined) {
        s.ensureAccount.run(p.accountId);
        lastSeq = 0;
      }
      if (p.seq <= lastSeq) return 'duplicate';
      if (p.seq !== lastSeq + 1) return 'gap';
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
    consumerOffset: (consumer: string) => (s.getOffset.get(consumer) as number | undefined) ?? 1,
    commitOffset: (consumer: string, nextOffset: number) => void s.setOffset.run(consumer, nextOffset),
  };
}

export type ChannelStore = ReturnType<typeof createChannelStore>;
