/**
 * The crash test's checks over a stopped bank's core.db and channel.db, opened read-only and
 * read with plain SQL (no module of the bank): DESIGN.md section 6, and every acknowledged
 * transfer as the customer was told it. Each check returns what it found wrong.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';

export type AcknowledgedTransfer = {
  id: string;
  customerId: number;
  fromAccountId: number;
  toAccountId: number;
  amountWon: number;
  memo: string;
  idempotencyKey: string | null;
  /** The state the customer was told (201, 202 or 200). */
  state: string;
  reason: string | null;
};

export type Problem = { check: string; detail: string };

type Db = Database.Database;
type ChannelTransfer = { id: string; customer_id: number; from_account_id: number; to_account_id: number; amount_won: number; memo: string | null; state: string; reason: string | null; idempotency_key: string | null };
type Row = { account_id: number; seq: number; amount_won: number; balance_after_won: number; kind: string; counterparty: string | null; memo: string | null; transfer_id: string | null; occurred_at: number };

const UNFINISHED = ['requested', 'sent', 'timedOut', 'querying'];
/** Report at most this many problems per check, so that one broken thing stays readable. */
const MAX_PER_CHECK = 10;

/** One DATA_DIR for the whole bank, or the split mode's two. */
export type DataDirs = string | { core: string; channel: string };

export function openReadOnly(dirs: DataDirs): { core: Db; channel: Db; close: () => void } {
  const { core: coreDir, channel: channelDir } = typeof dirs === 'string' ? { core: dirs, channel: dirs } : dirs;
  const core = new Database(join(coreDir, 'core.db'), { readonly: true, fileMustExist: true });
  const channel = new Database(join(channelDir, 'channel.db'), { readonly: true, fileMustExist: true });
  return { core, channel, close: () => (core.close(), channel.close()) };
}

export function checkDatabases(dataDir: DataDirs, acknowledged: AcknowledgedTransfer[], externalInWon: number): Problem[] {
  const { core, channel, close } = openReadOnly(dataDir);
  try {
    const checks: [string, () => string[]][] = [
      ['acknowledged transfers kept', () => acknowledgedKept(channel, acknowledged)],
      ['idempotency', () => oneTransferPerKey(channel, acknowledged)],
      ['conservation', () => conservation(core, externalInWon)],
      ['at most once', () => atMostOnce(core)],
      ['agreement', () => agreement(core, channel)],
      ['ledger', () => ledgerConsistent(core)],
      ['convergence', () => convergence(core, channel)],
      ['nothing unfinished', () => nothingUnfinished(channel)],
    ];
    return checks.flatMap(([check, run]) => run().slice(0, MAX_PER_CHECK).map((detail) => ({ check, detail })));
  } finally {
    close();
  }
}

function acknowledgedKept(channel: Db, acknowledged: AcknowledgedTransfer[]): string[] {
  const byId = channel.prepare('SELECT * FROM transfers WHERE id = ?');
  const out: string[] = [];
  for (const a of acknowledged) {
    const t = byId.get(a.id) as ChannelTransfer | undefined;
    if (t === undefined) {
      out.push(`${a.id} (acknowledged ${a.state}) is gone`);
      continue;
    }
    const same = t.customer_id === a.customerId && t.from_account_id === a.fromAccountId && t.to_account_id === a.toAccountId && t.amount_won === a.amountWon && t.memo === a.memo && t.idempotency_key === a.idempotencyKey;
    if (!same) out.push(`${a.id} changed: acknowledged ${JSON.stringify(a)}, stored ${JSON.stringify({ ...t, snapshot: undefined })}`);
    if ((a.state === 'succeeded' || a.state === 'failed') && (t.state !== a.state || t.reason !== a.reason)) {
      out.push(`${a.id} was acknowledged ${a.state} (${a.reason}) and is now ${t.state} (${t.reason})`);
    }
  }
  return out;
}

function oneTransferPerKey(channel: Db, acknowledged: AcknowledgedTransfer[]): string[] {
  const doubled = channel
    .prepare('SELECT customer_id AS c, idempotency_key AS k, COUNT(*) AS n FROM transfers WHERE idempotency_key IS NOT NULL GROUP BY c, k HAVING n > 1')
    .all() as { c: number; k: string; n: number }[];
  const out = doubled.map((d) => `customer ${d.c} key ${d.k} has ${d.n} transfers`);
  const byKey = channel.prepare('SELECT id FROM transfers WHERE customer_id = ? AND idempotency_key = ?').pluck();
  for (const a of acknowledged) {
    if (a.idempotencyKey === null) continue;
    const id = byKey.get(a.customerId, a.idempotencyKey);
    if (id !== a.id) out.push(`key ${a.idempotencyKey} was acknowledged as ${a.id} but maps to ${String(id)}`);
  }
  return out;
}

function conservation(core: Db, externalInWon: number): string[] {
  const total = core.prepare('SELECT COALESCE(SUM(balance_won), 0) FROM accounts').pluck().get() as number;
  const external = core.prepare("SELECT COALESCE(SUM(amount_won), 0) FROM postings WHERE kind IN ('opening', 'deposit')").pluck().get() as number;
  const out: string[] = [];
  if (total !== external) out.push(`core balances sum to ${total}, opening balances and deposits to ${external}`);
  if (external !== externalInWon) out.push(`the core's opening balances and deposits sum to ${external}, but ${externalInWon} was opened`);
  return out;
}

function atMostOnce(core: Db): string[] {
  const rows = core
    .prepare("SELECT transfer_id AS id, kind, COUNT(*) AS n FROM postings WHERE kind IN ('transfer-out', 'transfer-in') GROUP BY transfer_id, kind HAVING n > 1")
    .all() as { id: string; kind: string; n: number }[];
  return rows.map((r) => `transfer ${r.id} has ${r.n} ${r.kind} postings`);
}

/** A transfer the channel calls succeeded executed in the core, exactly as asked; one it calls failed did not. */
function agreement(core: Db, channel: Db): string[] {
  const decision = core.prepare('SELECT outcome FROM decisions WHERE request_id = ?').pluck();
  const postingsOfTransfer = core.prepare('SELECT account_id, amount_won, kind FROM postings WHERE transfer_id = ? ORDER BY kind');
  const out: string[] = [];
  const states = new Map<string, string>();
  for (const t of channel.prepare('SELECT * FROM transfers').all() as ChannelTransfer[]) {
    states.set(t.id, t.state);
    const executed = decision.get(t.id) === 'executed';
    const moved = JSON.stringify(postingsOfTransfer.all(t.id));
    if (t.state === 'succeeded') {
      if (!executed) out.push(`${t.id} is succeeded in the channel but has no executed decision in the core`);
      const expected = JSON.stringify([
        { account_id: t.to_account_id, amount_won: t.amount_won, kind: 'transfer-in' },
        { account_id: t.from_account_id, amount_won: -t.amount_won, kind: 'transfer-out' },
      ]);
      if (moved !== expected) out.push(`${t.id} is succeeded but its postings are ${moved}, not ${expected}`);
    }
    if (t.state === 'failed' && (executed || moved !== '[]')) out.push(`${t.id} is failed (${t.reason}) in the channel but executed in the core: ${moved}`);
  }
  for (const id of core.prepare("SELECT request_id FROM decisions WHERE outcome = 'executed'").pluck().all() as string[]) {
    if (states.get(id) !== 'succeeded') out.push(`the core executed ${id}, which the channel calls ${states.get(id) ?? 'unknown'}`);
  }
  return out;
}

/** Each core account's postings run seq 1..n with the running balance, ending at its balance. */
function ledgerConsistent(core: Db): string[] {
  const out: string[] = [];
  const postingsOf = core.prepare('SELECT * FROM postings WHERE account_id = ? ORDER BY seq');
  for (const a of core.prepare('SELECT id, balance_won, last_seq FROM accounts ORDER BY id').all() as { id: number; balance_won: number; last_seq: number }[]) {
    let balance = 0;
    const rows = postingsOf.all(a.id) as Row[];
    rows.forEach((p, i) => {
      balance += p.amount_won;
      if (p.seq !== i + 1 || p.balance_after_won !== balance) out.push(`account ${a.id}: posting ${i + 1} has seq ${p.seq}, balance after ${p.balance_after_won} (running ${balance})`);
    });
    if (a.balance_won !== balance || a.last_seq !== rows.length) out.push(`account ${a.id}: balance ${a.balance_won} last seq ${a.last_seq}, postings sum to ${balance} over ${rows.length}`);
  }
  return out;
}

/** Every account's channel history equals the core's postings, row for row, and so do the balances. */
function convergence(core: Db, channel: Db): string[] {
  const out: string[] = [];
  const columns = 'account_id, seq, amount_won, balance_after_won, kind, counterparty, memo, transfer_id, occurred_at';
  const postingsOf = core.prepare(`SELECT ${columns} FROM postings WHERE account_id = ? ORDER BY seq`);
  const historyOf = channel.prepare(`SELECT ${columns} FROM history WHERE account_id = ? ORDER BY seq`);
  const copyOf = channel.prepare('SELECT balance_won, last_seq FROM accounts WHERE id = ?');
  const coreIds = new Set<number>();
  for (const a of core.prepare('SELECT id, balance_won, last_seq FROM accounts ORDER BY id').all() as { id: number; balance_won: number; last_seq: number }[]) {
    coreIds.add(a.id);
    const copy = copyOf.get(a.id) as { balance_won: number; last_seq: number } | undefined;
    if (copy === undefined) {
      out.push(`account ${a.id} is missing from the channel`);
      continue;
    }
    if (copy.balance_won !== a.balance_won || copy.last_seq !== a.last_seq) out.push(`account ${a.id}: channel balance ${copy.balance_won} seq ${copy.last_seq}, core ${a.balance_won} seq ${a.last_seq}`);
    const postings = postingsOf.all(a.id) as Row[];
    const history = historyOf.all(a.id) as Row[];
    if (history.length !== postings.length) out.push(`account ${a.id}: channel history has ${history.length} rows, core ${postings.length} postings`);
    for (let i = 0; i < Math.min(history.length, postings.length); i++) {
      if (JSON.stringify(history[i]) !== JSON.stringify(postings[i])) {
        out.push(`account ${a.id} row ${i + 1}: channel ${JSON.stringify(history[i])}, core ${JSON.stringify(postings[i])}`);
        break;
      }
    }
  }
  const strays = (channel.prepare('SELECT DISTINCT account_id FROM history').pluck().all() as number[]).filter((id) => !coreIds.has(id));
  if (strays.length > 0) out.push(`the channel has history for accounts the core does not know: ${strays.join(', ')}`);
  return out;
}

function nothingUnfinished(channel: Db): string[] {
  const rows = channel.prepare(`SELECT id, state FROM transfers WHERE state IN (${UNFINISHED.map(() => '?').join(', ')})`).all(...UNFINISHED) as { id: string; state: string }[];
  return rows.map((r) => `${r.id} is still ${r.state}`);
}
