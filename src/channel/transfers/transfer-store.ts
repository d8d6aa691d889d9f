/**
 * The transfers' rows in channel.db: each row is a durable actor (state columns, XState
 * snapshot, next deadline) with its journal, as prepared statements created once.
 */
import type { Db } from '../../lib/sqlite.ts';
import type { TransferState } from '../../machines/transfer.ts';
import type { Deadline } from './transfer-engine.ts';

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

/** Something that happened to a transfer without moving it (db/008). */
export type AuditRow = { at: number; event: string; reason: string };

/** What a step needs of a row: its state, its snapshot, its deadline and its journal length. */
export type ActorRow = { state: TransferState; snapshot: string; deadlineAt: number | null; deadlineEvent: string | null; journalLength: number };

export type NewTransfer = Omit<TransferRow, 'state' | 'reason' | 'settledAt'> & { holdsLock: 0 | 1; deadline: Deadline };

const TRANSFER_COLUMNS = `id, customer_id AS customerId, from_account_id AS fromAccountId, to_account_id AS toAccountId,
  amount_won AS amountWon, memo, state, reason, requested_at AS requestedAt, settled_at AS settledAt, snapshot,
  idempotency_key AS idempotencyKey, body_hash AS bodyHash`;
const UNFINISHED = "('requested', 'sent', 'timedOut', 'querying')";

export function createTransferStore(db: Db) {
  const s = {
    insert: db.prepare(
      `INSERT INTO transfers (id, customer_id, from_account_id, to_account_id, amount_won, memo, state, requested_at, snapshot,
         idempotency_key, body_hash, holds_lock, next_deadline_at, deadline_event, journal_length)
       VALUES (@id, @customerId, @fromAccountId, @toAccountId, @amountWon, @memo, 'requested', @requestedAt, @snapshot,
         @idempotencyKey, @bodyHash, @holdsLock, @deadlineAt, @deadlineEvent, 1)`,
    ),
    actor: db.prepare(
      'SELECT state, snapshot, next_deadline_at AS deadlineAt, deadline_event AS deadlineEvent, journal_length AS journalLength FROM transfers WHERE id = ?',
    ),
    update: db.prepare(
      `UPDATE transfers SET state = ?, reason = ?, settled_at = ?, next_deadline_at = ?, deadline_event = ?, snapshot = ?,
         journal_length = journal_length + 1 WHERE id = ?`,
    ),
    clearDeadline: db.prepare('UPDATE transfers SET next_deadline_at = NULL, deadline_event = NULL WHERE id = ?'),
    get: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE id = ?`),
    byKey: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE customer_id = ? AND idempotency_key = ?`),
    inFlightFrom: db.prepare(`SELECT id FROM transfers WHERE from_account_id = ? AND holds_lock = 1 AND state IN ${UNFINISHED}`).pluck(),
    // The deadline index (db/007): the earliest due rows first, a bounded batch at a time.
    due: db.prepare('SELECT id, deadline_event AS event FROM transfers WHERE next_deadline_at <= ? ORDER BY next_deadline_at, id LIMIT ?').raw(),
    earliest: db.prepare('SELECT MIN(next_deadline_at) FROM transfers WHERE next_deadline_at IS NOT NULL').pluck(),
    unfinished: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE state IN ${UNFINISHED} ORDER BY requested_at, id`),
    unfinishedCount: db.prepare(`SELECT COUNT(*) FROM transfers WHERE state IN ${UNFINISHED}`).pluck(),
    all: db.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers ORDER BY requested_at, id`),
    insertJournal: db.prepare('INSERT INTO transfer_journal (transfer_id, n, at, event, from_state, to_state) VALUES (?, ?, ?, ?, ?, ?)'),
    journalOf: db.prepare('SELECT at, event, from_state AS "from", to_state AS "to" FROM transfer_journal WHERE transfer_id = ? ORDER BY n'),
    // Only for a transfer this channel holds; a redelivered record is already there.
    insertAudit: db.prepare(
      'INSERT OR IGNORE INTO transfer_audit (transfer_id, at, event, reason) SELECT @id, @at, @event, @reason WHERE EXISTS (SELECT 1 FROM transfers WHERE id = @id)',
    ),
    auditOf: db.prepare('SELECT at, event, reason FROM transfer_audit WHERE transfer_id = ? ORDER BY at, event, reason'),
  };

  return {
    /** A new transfer in `requested`, with its first journal row. */
    insert(row: NewTransfer): void {
      const { deadline, ...rest } = row;
      s.insert.run({ ...rest, deadlineAt: deadline.at, deadlineEvent: deadline.event });
      s.insertJournal.run(row.id, 1, row.requestedAt, 'REQUEST', null, 'requested');
    },
    actor: (id: string) => s.actor.get(id) as ActorRow | undefined,
    /** One committed transition: the state columns, the snapshot, the deadline and one journal row. */
    transition(id: string, n: number, t: { at: number; event: string; from: TransferState; to: TransferState; reason: string | null; settledAt: number | null; deadline: Deadline | null; snapshot: string }): void {
      s.update.run(t.to, t.reason, t.settledAt, t.deadline?.at ?? null, t.deadline?.event ?? null, t.snapshot, id);
      s.insertJournal.run(id, n, t.at, t.event, t.from, t.to);
    },
    clearDeadline: (id: string) => void s.clearDeadline.run(id),
    /** Rows due by `now`, earliest first: [id, the event their deadline delivers]. */
    due: (now: number, limit: number) => s.due.all(now, limit) as [string, string][],
    earliestDeadline: () => s.earliest.get() as number | null,
    transfer: (id: string) => s.get.get(id) as TransferRow | undefined,
    byKey: (customerId: number, key: string) => s.byKey.get(customerId, key) as TransferRow | undefined,
    inFlightFrom: (accountId: number) => s.inFlightFrom.get(accountId) as string | undefined,
    unfinished: () => s.unfinished.all() as TransferRow[],
    unfinishedCount: () => s.unfinishedCount.get() as number,
    all: () => s.all.all() as TransferRow[],
    journalOf: (id: string) => s.journalOf.all(id) as JournalRow[],
    /** Records an audit entry on a transfer this channel holds: true if it is new. */
    addAudit: (id: string, entry: AuditRow) => s.insertAudit.run({ id, ...entry }).changes === 1,
    auditOf: (id: string) => s.auditOf.all(id) as AuditRow[],
  };
}

export type TransferStore = ReturnType<typeof createTransferStore>;
