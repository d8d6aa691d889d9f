/**
 * The simulated customers: each new payment is one intent that its customer keeps at until
 * they know how it ended, retrying after a timeout or a failure with or without an
 * Idempotency-Key, as a real customer would; deposits from other banks; history scrolling.
 */
import type { SimRun } from './simulator.ts';
import { createScrolling, type Scrolling } from './scrolling.ts';

const OPENING_MAX_WON = 1_000_000;
/** An account the core has never heard of: a transfer to it is refused as unknown-account. */
const UNKNOWN_ACCOUNT = 9_999_999;
/** A customer sends one payment at most this many times before giving up on it. */
const MAX_ATTEMPTS = 4;
/** A customer looks at one transfer at most this many times while it stays unfinished. */
const MAX_LOOKS = 15;

export type SimCustomer = { customerId: number; accountId: number; name: string; token: string; keys: number };

/** One payment a customer meant to make once, whatever it took; its memo `#n` marks every try. */
type Intent = {
  n: number;
  customer: SimCustomer;
  toAccountId: number;
  amountWon: number;
  /** The key of the current try (a new try after "failed" gets a new key); null: the app sends none. */
  key: string | null;
  attempts: number;
  looks: number;
};

export type Workload = {
  done(): boolean;
  /** Lets every HTTP call in flight finish (they run on the microtask queue, not on virtual time). */
  flush(): Promise<void>;
  checkAtEnd(): void;
};

const memoOf = (intent: Intent) => `#${intent.n}`;

export function createWorkload(run: SimRun, transfers: number): Workload {
  const { bank, prng, time } = run;
  const customers: SimCustomer[] = [];
  const intents: Intent[] = [];
  let started = 0;
  let open = 0;

  run.guard(() => {
    for (let i = 0; i < run.profile.customers; i++) {
      const name = `customer-${i + 1}`;
      const { customerId, token, accountId } = bank.openCustomer(name, prng.int(0, OPENING_MAX_WON));
      customers.push({ customerId, accountId, name, token, keys: 0 });
    }
  });
  const scrolling: Scrolling = createScrolling(run, customers);

  const say = (intent: Intent, what: string) => run.trace(`customer ${intent.customer.name} payment #${intent.n}: ${what}`);
  const newKey = (c: SimCustomer) => `key-${c.customerId}-${++c.keys}`;

  function request(intent: Intent, key: string | null, amountWon = intent.amountWon) {
    return bank.channel.requestTransfer({
      customerId: intent.customer.customerId,
      fromAccountId: intent.customer.accountId,
      toAccountId: intent.toAccountId,
      amountWon,
      memo: memoOf(intent),
      idempotencyKey: key,
    });
  }

  function newIntent(): void {
    const customer = prng.pick(customers);
    const toAccountId = prng.chance(0.02) ? UNKNOWN_ACCOUNT : prng.pick(customers.filter((c) => c !== customer)).accountId;
    const key = prng.chance(0.5) ? newKey(customer) : null;
    const intent: Intent = { n: intents.length + 1, customer, toAccountId, amountWon: prng.int(1, OPENING_MAX_WON / 4), key, attempts: 0, looks: 0 };
    intents.push(intent);
    open++;
    say(intent, `${intent.amountWon} won to ${toAccountId}${key ? ` key ${key}` : ''}`);
    attempt(intent);
  }

  function finish(intent: Intent, why: string): void {
    say(intent, why);
    open--;
  }

  /** Tries again later if tries are left: the customer heard nothing, or was told to wait. */
  function later(intent: Intent, why: string): void {
    if (intent.attempts >= MAX_ATTEMPTS) return finish(intent, `${why}; gives up`);
    say(intent, `${why}; tries again later`);
    time.schedule(() => run.guard(() => attempt(intent)), prng.int(1_000, 6_000));
  }

  /** Follows a transfer the bank named: the app waits for the answer (Prefer: wait), then looks. */
  function follow(intent: Intent, id: string): void {
    time.schedule(() => run.guard(() => look(intent, id)), prng.int(200, 4_000));
  }

  /** One send of the payment, as the app makes it. */
  function attempt(intent: Intent): void {
    intent.attempts++;
    if (intent.attempts > 1) run.stats.retries++;
    if (!run.isUp('channel')) return later(intent, 'the call timed out (the channel is down)');
    if (intent.attempts > 1 && intent.key === null && paidAlready(intent)) return finish(intent, 'the history shows it paid');
    let outcome: ReturnType<typeof request> | undefined;
    // A crash in the middle of the call: the customer gets no answer, whatever was committed.
    if (!run.guard(() => void (outcome = request(intent, intent.key))) || outcome === undefined) return later(intent, 'the call timed out (the channel crashed)');
    say(intent, `try ${intent.attempts}${intent.key ? ` with key ${intent.key}` : ' without a key'}: ${outcome.kind}`);
    switch (outcome.kind) {
      case 'created':
        run.stats.transfers++;
        run.checkNow();
        return follow(intent, outcome.transfer.id);
      case 'replayed':
        run.stats.replays++;
        if (intent.attempts === 1) run.report('invariant 7 (idempotency)', `a new key ${intent.key} answered with transfer ${outcome.transfer.id}`);
        if (outcome.transfer.memo !== memoOf(intent)) run.report('invariant 7 (idempotency)', `key ${intent.key} answered another payment's transfer ${outcome.transfer.id}`);
        if (prng.chance(0.2)) reuseKey(intent);
        return follow(intent, outcome.transfer.id);
      case 'in-flight': {
        run.stats.inFlightRefusals++;
        // The 409 names the unfinished transfer; the app shows it, and the customer knows their own.
        const holder = bank.channel.transfer(outcome.inFlightTransferId);
        if (holder?.memo === memoOf(intent)) return follow(intent, holder.id);
        return later(intent, `another payment ${holder?.memo ?? '?'} is unfinished`);
      }
      case 'key-reused':
        run.report('invariant 7 (idempotency)', `key ${intent.key} with its own body answered key-reused`);
        return finish(intent, 'refused');
    }
  }

  /** Without a key, after a call that got no answer, the customer first checks whether the money left. */
  function paidAlready(intent: Intent): boolean {
    const rows = bank.channel.pageHistoryBefore(intent.customer.accountId, Number.MAX_SAFE_INTEGER, 100);
    return rows.some((r) => r.memo === memoOf(intent) && r.amountWon < 0);
  }

  function reuseKey(intent: Intent): void {
    const other = request(intent, intent.key, intent.amountWon + 1);
    if (other.kind !== 'key-reused') run.report('invariant 7 (idempotency)', `key ${intent.key} with another body answered ${other.kind}`);
  }

  /** The app shows the transfer: succeeded, failed, or still going (the customer was told to wait). */
  function look(intent: Intent, id: string): void {
    intent.looks++;
    if (!run.isUp('channel')) return intent.looks >= MAX_LOOKS ? finish(intent, 'never learned the outcome') : follow(intent, id);
    const t = bank.channel.transfer(id);
    if (t === undefined) return run.report('assertion', `transfer ${id}, created for the customer, is gone`);
    if (t.state === 'succeeded') {
      checkReadYourWrites(intent, id);
      return finish(intent, `${id} succeeded`);
    }
    if (t.state === 'failed') {
      // A customer told "failed" pays again, as a new payment try (a new key if the app uses keys).
      if (!prng.chance(0.5) || intent.attempts >= MAX_ATTEMPTS) return finish(intent, `${id} failed (${t.reason})`);
      if (intent.key !== null) intent.key = newKey(intent.customer);
      say(intent, `${id} failed (${t.reason}); pays again`);
      return attempt(intent);
    }
    if (intent.looks >= MAX_LOOKS) return finish(intent, `${id} is still ${t.state}; gives up watching`);
    // Still going: the app said the call timed out. Some customers press "send" again.
    if (intent.attempts < MAX_ATTEMPTS && prng.chance(0.6)) return attempt(intent);
    follow(intent, id);
  }

  /**
   * DESIGN.md section 5: once a transfer succeeded, the sender's own history shows it, even
   * while the log is behind: the answer brings the rows the copy lacks, and an outcome from the
   * log waits until the sender's row is there.
   */
  function checkReadYourWrites(intent: Intent, id: string): void {
    const channel = bank.channel.readModel();
    const accountId = intent.customer.accountId;
    const found = channel.db.prepare('SELECT COUNT(*) FROM history WHERE account_id = ? AND transfer_id = ?').pluck().get(accountId, id) as number;
    if (found === 1) return;
    run.report('read your writes', `transfer ${id} succeeded but the sender's history has ${found} rows of it`);
  }

  function deposit(): void {
    if (!run.isUp('core')) return;
    const to = prng.pick(customers);
    const amountWon = prng.int(1, 200_000);
    run.trace(`deposit ${amountWon} won from another bank to ${to.accountId}`);
    bank.core.deposit({ accountId: to.accountId, amountWon, fromBank: 'KB', fromName: 'Park' });
    run.stats.deposits++;
  }

  function tick(): void {
    if (started >= transfers) return;
    started++;
    run.guard(newIntent);
    if (prng.chance(0.1)) run.guard(deposit);
    if (prng.chance(0.1)) run.guard(() => scrolling.start());
    time.schedule(tick, prng.int(0, 2 * run.profile.transferEveryMs));
  }
  time.schedule(tick, 0);

  return {
    done: () => started >= transfers && open === 0 && scrolling.active() === 0,
    flush: () => scrolling.flush(),
    checkAtEnd(): void {
      const core = bank.core.readModel();
      const triesOf = new Map<string, string[]>();
      for (const t of bank.channel.readModel().allTransfers()) {
        if (t.memo !== null) triesOf.set(t.memo, [...(triesOf.get(t.memo) ?? []), t.id]);
      }
      for (const intent of intents) {
        const executed = (triesOf.get(memoOf(intent)) ?? []).filter((id) => core.decisionOf(id)?.kind === 'executed');
        if (executed.length > 1) {
          run.report(
            'double execution',
            `customer ${intent.customer.name}'s one payment #${intent.n} (${intent.amountWon} won to ${intent.toAccountId}) executed ${executed.length} times in the core (${executed.join(', ')})`,
          );
        }
      }
    },
  };
}
