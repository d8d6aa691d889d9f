/**
 * The simulated customers: transfers with and without an Idempotency-Key, retries after a
 * timeout (same key: the original comes back; no key: refused while in flight), deposits
 * from other banks, and history scrolled page by page while it syncs.
 */
import type { SimRun } from './simulator.ts';

const OPENING_MAX_WON = 1_000_000;
/** An account the core has never heard of: a transfer to it is refused as unknown-account. */
const UNKNOWN_ACCOUNT = 9_999_999;

type Customer = { customerId: number; accountId: number; name: string; keys: number };

/** One thing a customer meant to do once, whatever retries it took. */
type Intent = {
  n: number;
  customer: Customer;
  toAccountId: number;
  amountWon: number;
  key: string | null;
  transferIds: string[];
};

export type Workload = { done(): boolean; checkAtEnd(): void };

export function createWorkload(run: SimRun, transfers: number): Workload {
  const { bank, prng, time } = run;
  const customers: Customer[] = [];
  const intents: Intent[] = [];
  let started = 0;
  let scrolling = 0;

  run.guard(() => {
    for (let i = 0; i < run.profile.customers; i++) {
      const name = `customer-${i + 1}`;
      const { customer } = bank.channel.createCustomer(name);
      const { accountId } = bank.core.openAccount(name, prng.int(0, OPENING_MAX_WON));
      bank.channel.registerAccount(customer.id, accountId);
      customers.push({ customerId: customer.id, accountId, name, keys: 0 });
    }
  });

  function request(intent: Intent, key: string | null, amountWon = intent.amountWon) {
    return bank.channel.requestTransfer({
      customerId: intent.customer.customerId,
      fromAccountId: intent.customer.accountId,
      toAccountId: intent.toAccountId,
      amountWon,
      memo: `#${intent.n}`,
      idempotencyKey: key,
    });
  }

  function newTransfer(): void {
    const customer = prng.pick(customers);
    const others = customers.filter((c) => c !== customer);
    const toAccountId = prng.chance(0.02) ? UNKNOWN_ACCOUNT : prng.pick(others).accountId;
    const key = prng.chance(0.5) ? `key-${customer.customerId}-${++customer.keys}` : null;
    const intent: Intent = { n: intents.length + 1, customer, toAccountId, amountWon: prng.int(1, OPENING_MAX_WON / 4), key, transferIds: [] };
    if (!run.isUp('channel')) {
      run.trace(`customer ${customer.name} intent #${intent.n}: the channel is down`);
      return;
    }
    const outcome = request(intent, key);
    run.trace(`customer ${customer.name} intent #${intent.n} ${intent.amountWon} won to ${toAccountId}${key ? ` key ${key}` : ''}: ${outcome.kind}`);
    switch (outcome.kind) {
      case 'created':
        intents.push(intent);
        intent.transferIds.push(outcome.transfer.id);
        run.stats.transfers++;
        run.checkNow();
        // The customer's app waits for the answer, then gives up (Prefer: wait).
        time.schedule(() => run.guard(() => afterWait(intent)), prng.int(500, 10_000));
        return;
      case 'in-flight':
        run.stats.inFlightRefusals++;
        return;
      default:
        run.report('invariant 7 (idempotency)', `a new key ${key} answered ${outcome.kind}`);
    }
  }

  function unfinished(id: string): boolean {
    const t = bank.channel.transfer(id);
    return t !== undefined && t.state !== 'succeeded' && t.state !== 'failed';
  }

  /** The customer heard nothing in time and may retry, not knowing whether money moved. */
  function afterWait(intent: Intent): void {
    if (!run.isUp('channel')) return;
    const first = intent.transferIds[0]!;
    if (!unfinished(first) || !prng.chance(0.6)) return;
    if (intent.key !== null) {
      const again = request(intent, intent.key);
      run.trace(`customer ${intent.customer.name} retries intent #${intent.n} with key ${intent.key}: ${again.kind}`);
      if (again.kind !== 'replayed' || again.transfer.id !== first) {
        run.report('invariant 7 (idempotency)', `a retry with key ${intent.key} answered ${again.kind} instead of transfer ${first}`);
      } else run.stats.replays++;
      if (prng.chance(0.2)) {
        const other = request(intent, intent.key, intent.amountWon + 1);
        if (other.kind !== 'key-reused') run.report('invariant 7 (idempotency)', `key ${intent.key} with another body answered ${other.kind}`);
      }
      return;
    }
    const again = request(intent, null);
    run.trace(`customer ${intent.customer.name} retries intent #${intent.n} without a key: ${again.kind}`);
    if (again.kind === 'created') {
      intent.transferIds.push(again.transfer.id);
      run.stats.transfers++;
      run.checkNow();
    } else if (again.kind === 'in-flight') run.stats.inFlightRefusals++;
  }

  function deposit(): void {
    if (!run.isUp('core')) return;
    const to = prng.pick(customers);
    const amountWon = prng.int(1, 200_000);
    run.trace(`deposit ${amountWon} won from another bank to ${to.accountId}`);
    bank.core.deposit({ accountId: to.accountId, amountWon, fromBank: 'KB', fromName: 'Park' });
    run.stats.deposits++;
  }

  /** A customer scrolls their history a page at a time while new rows keep arriving. */
  function scroll(customer: Customer, pageSize: number, beforeSeq: number, pagesLeft: number): void {
    if (pagesLeft === 0 || !run.isUp('channel')) {
      scrolling--;
      return;
    }
    const rows = bank.channel.pageHistoryBefore(customer.accountId, beforeSeq, pageSize);
    run.stats.pagesRead++;
    const where = `account ${customer.accountId} page before seq ${beforeSeq}`;
    const top = beforeSeq === Number.MAX_SAFE_INTEGER ? undefined : beforeSeq - 1;
    rows.forEach((row, i) => {
      const expected = i === 0 ? top : rows[i - 1]!.seq - 1;
      if (expected !== undefined && row.seq !== expected) run.report('invariant 6 (convergence)', `${where}: row seq ${row.seq} where ${expected} was due (a row missing or shown twice)`);
    });
    if (rows.length === 0 && top !== undefined && top >= 1) run.report('invariant 6 (convergence)', `${where}: an empty page where seq ${top} was due`);
    if (run.isUp('core')) {
      const core = bank.core.inspect();
      for (const row of rows) {
        const p = core.postingsAfter(customer.accountId, row.seq - 1, 1)[0];
        const same = p !== undefined && p.seq === row.seq && p.amountWon === row.amountWon && p.balanceAfterWon === row.balanceAfterWon && p.transferId === row.transferId && p.kind === row.kind;
        if (!same) run.report('invariant 6 (convergence)', `${where}: row seq ${row.seq} is not the core's posting`);
      }
    }
    const last = rows[rows.length - 1];
    if (last === undefined || last.seq === 1) {
      scrolling--;
      return;
    }
    time.schedule(() => run.guard(() => scroll(customer, pageSize, last.seq, pagesLeft - 1)), prng.int(100, 2_000));
  }

  function startScroll(): void {
    scrolling++;
    scroll(prng.pick(customers), prng.int(1, 20), Number.MAX_SAFE_INTEGER, prng.int(1, 6));
  }

  function tick(): void {
    if (started >= transfers) return;
    started++;
    run.guard(newTransfer);
    if (prng.chance(0.1)) run.guard(deposit);
    if (prng.chance(0.1)) run.guard(startScroll);
    const meanMs = run.profile.transferEveryMs;
    time.schedule(tick, prng.int(0, 2 * meanMs));
  }
  time.schedule(tick, 0);

  return {
    done: () => started >= transfers && scrolling === 0,
    checkAtEnd(): void {
      const core = bank.core.inspect();
      for (const intent of intents) {
        const executed = intent.transferIds.filter((id) => core.decisionOf(id)?.kind === 'executed');
        if (executed.length > 1) {
          run.report('invariant 2 (at-most-once)', `customer ${intent.customer.name}'s one transfer #${intent.n} executed ${executed.length} times (${executed.join(', ')})`);
        }
      }
    },
  };
}
