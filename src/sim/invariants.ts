/**
 * DESIGN.md section 6, as checks over a bank's two databases. Each returns the violations
 * it finds; an empty list means the invariant holds.
 */
import type { ChannelReadModel } from '../channel/channel.ts';
import type { CoreStore } from '../core/core-store.ts';

/** What the checks read: each side's committed state (a bank here, or the split mode's two databases). */
export type Checked = { core: { readModel(): CoreStore }; channel: { readModel(): ChannelReadModel } };

export type InvariantId = 1 | 2 | 3 | 4 | 5 | 6 | 7;
export type Violation = { invariant: InvariantId; name: string; detail: string };

const NAMES: Record<InvariantId, string> = {
  1: 'conservation',
  2: 'at-most-once',
  3: 'agreement',
  4: 'liveness',
  5: 'one-in-flight',
  6: 'convergence',
  7: 'idempotency',
};

const v = (invariant: InvariantId, detail: string): Violation => ({ invariant, name: NAMES[invariant], detail });

export function checkConservation(bank: Checked): Violation[] {
  const core = bank.core.readModel();
  const total = core.totalBalanceWon();
  const external = core.externalInWon();
  return total === external ? [] : [v(1, `core balances sum to ${total} but money in from outside is ${external}`)];
}

export function checkAtMostOnce(bank: Checked): Violation[] {
  return bank.core.readModel().executedTwice().map((id) => v(2, `request ${id} executed more than once`));
}

export function checkAgreement(bank: Checked): Violation[] {
  const core = bank.core.readModel();
  const out: Violation[] = [];
  for (const t of bank.channel.readModel().allTransfers()) {
    const executed = core.decisionOf(t.id)?.kind === 'executed';
    if (t.state === 'succeeded' && !executed) out.push(v(3, `transfer ${t.id} is succeeded in the channel but did not execute in the core`));
    if (t.state === 'failed' && executed) out.push(v(3, `transfer ${t.id} is failed in the channel but executed in the core`));
  }
  return out;
}

export function checkSettled(bank: Checked): Violation[] {
  return bank.channel
    .readModel()
    .unfinishedTransfers()
    .map((t) => v(4, `transfer ${t.id} is still ${t.state}`));
}

export function checkOneInFlight(bank: Checked): Violation[] {
  const rows = bank.channel
    .readModel()
    .db.prepare(
      "SELECT from_account_id AS a, COUNT(*) AS n FROM transfers WHERE state IN ('requested','sent','timedOut','querying') GROUP BY from_account_id HAVING n > 1",
    )
    .all() as { a: number; n: number }[];
  return rows.map((r) => v(5, `account ${r.a} has ${r.n} unfinished transfers`));
}

export function checkConvergence(bank: Checked): Violation[] {
  const core = bank.core.readModel();
  const channel = bank.channel.readModel();
  const out: Violation[] = [];
  for (const account of core.allAccounts()) {
    const copy = channel.account(account.id);
    if (copy === undefined) {
      out.push(v(6, `account ${account.id} is missing from the channel`));
      continue;
    }
    if (copy.balanceWon !== account.balanceWon) out.push(v(6, `account ${account.id}: channel balance ${copy.balanceWon}, core ${account.balanceWon}`));
    const postings = core.postingsOf(account.id);
    const rows = channel.allHistory(account.id);
    if (rows.length !== postings.length) {
      out.push(v(6, `account ${account.id}: channel has ${rows.length} rows, core ${postings.length}`));
      continue;
    }
    postings.forEach((p, i) => {
      const r = rows[i]!;
      const same = r.seq === p.seq && r.amountWon === p.amountWon && r.balanceAfterWon === p.balanceAfterWon && r.kind === p.kind && r.transferId === p.transferId && r.counterparty === p.counterparty && r.memo === p.memo && r.occurredAt === p.occurredAt;
      if (!same) out.push(v(6, `account ${account.id} seq ${p.seq}: channel row differs from the core's posting`));
    });
  }
  return out;
}

export function checkIdempotency(bank: Checked): Violation[] {
  const rows = bank.channel
    .readModel()
    .db.prepare('SELECT customer_id AS c, idempotency_key AS k, COUNT(*) AS n FROM transfers WHERE idempotency_key IS NOT NULL GROUP BY c, k HAVING n > 1')
    .all() as { c: number; k: string; n: number }[];
  return rows.map((r) => v(7, `customer ${r.c} key ${r.k} has ${r.n} transfers`));
}

export const CHECKS: Record<InvariantId, (bank: Checked) => Violation[]> = {
  1: checkConservation,
  2: checkAtMostOnce,
  3: checkAgreement,
  4: checkSettled,
  5: checkOneInFlight,
  6: checkConvergence,
  7: checkIdempotency,
};

export function checkInvariants(bank: Checked, which: InvariantId[]): Violation[] {
  return which.flatMap((i) => CHECKS[i](bank));
}
