/**
 * The transfer machine on XState's simulated clock: every transition, every effect, and a
 * persisted snapshot of each unfinished state restored and carrying on with its deadlines.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, SimulatedClock, type Actor, type Snapshot } from 'xstate';
import {
  queryBackoffMs,
  transferMachine,
  type TransferEvent,
  type TransferInput,
  type TransferPolicy,
  type TransferState,
} from '../../src/machines/transfer.ts';
import type { Posting } from '../../src/net/messages.ts';

/** Every time below is in ms after this instant, the moment the customer asked. */
const T0 = Date.UTC(2026, 0, 1);

const POLICY: TransferPolicy = {
  responseTimeoutMs: 3_000,
  queryTimeoutMs: 3_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 8_000,
  queryNotBeforeAt: T0, // fence on (S6): ask right after the timeout
  queryAfterTimeout: true, // S4 on
};

/** With the fence off the channel asks only after requestedAt + cutoff + margin (S5). */
const CUTOFF_WAIT_MS = 65_000;

/**
 * XState's SimulatedClock, moved one due timer at a time, so every timer fires at its own due
 * millisecond. It also fires a zero-delay timer armed by the last callback of a flush (or by
 * an event), which SimulatedClock alone leaves for its next move.
 */
class SteppedClock extends SimulatedClock {
  private readonly dueAt = new Map<number, number>();

  override setTimeout(fn: (...args: any[]) => void, timeoutMs: number): number {
    const id: number = super.setTimeout(() => {
      this.dueAt.delete(id);
      fn();
    }, timeoutMs);
    this.dueAt.set(id, this.now() + timeoutMs);
    return id;
  }

  override clearTimeout(id: number): void {
    this.dueAt.delete(id);
    super.clearTimeout(id);
  }

  /** Moves to `time`, firing every timer due on the way, including ones armed meanwhile. */
  advanceTo(time: number): void {
    for (let fired = 0; ; fired++) {
      assert.ok(fired < 10_000, 'timers keep arming each other without time passing');
      const next = Math.min(...this.dueAt.values());
      if (!(next <= time)) break;
      this.set(Math.max(this.now(), next));
    }
    this.set(time);
  }

  pendingTimers(): number {
    return this.dueAt.size;
  }
}

type EffectName = 'sendExecute' | 'sendQuery' | 'applySenderPosting';
type Effect = { name: EffectName; at: number; posting: Posting | null };
type Step = { to: TransferState; at: number };

function senderPosting(seq = 7): Posting {
  return {
    accountId: 1,
    seq,
    amountWon: -30_000,
    balanceAfterWon: 70_000,
    kind: 'transfer-out',
    counterparty: 'Lee',
    memo: null,
    transferId: 'tr-1',
    occurredAt: T0 + 10,
  };
}

/**
 * One transfer actor on a stepped simulated clock, with spies for its effects and a journal of
 * its state changes. `restart` does what a channel crash and restart do to it.
 */
function transferDesk(policy: Partial<TransferPolicy> = {}) {
  const clock = new SteppedClock();
  clock.set(T0);
  const effects: Effect[] = [];
  const journal: Step[] = [];
  const spy =
    (name: EffectName) =>
    ({ event }: { event: TransferEvent }) => {
      effects.push({ name, at: clock.now() - T0, posting: event.type === 'EXECUTED' ? event.posting : null });
    };
  const machine = transferMachine.provide({
    actions: { sendExecute: spy('sendExecute'), sendQuery: spy('sendQuery'), applySenderPosting: spy('applySenderPosting') },
  });
  const input: TransferInput = {
    transferId: 'tr-1',
    fromAccountId: 1,
    toAccountId: 2,
    amountWon: 30_000,
    memo: null,
    requestedAt: T0,
    policy: { ...POLICY, ...policy },
  };

  let actor: Actor<typeof machine>;
  let last: TransferState;
  const watch = (a: Actor<typeof machine>) => {
    actor = a;
    last = a.getSnapshot().value as TransferState;
    a.subscribe((s) => {
      if (s.value === last) return;
      last = s.value as TransferState;
      journal.push({ to: last, at: clock.now() - T0 });
    });
    a.start();
  };
  watch(createActor(machine, { input, clock }));

  const desk = {
    clock,
    effects,
    journal,
    now: () => clock.now() - T0,
    state: () => actor.getSnapshot().value as TransferState,
    status: () => actor.getSnapshot().status,
    context: () => actor.getSnapshot().context,
    /** Times (after T0) at which the named effect went out. */
    timesOf: (name: EffectName) => effects.filter((e) => e.name === name).map((e) => e.at),
    advanceTo(ms: number): void {
      clock.advanceTo(T0 + ms);
    },
    /** Delivers an event stamped with the current time, then lets any timer due now fire. */
    send(event: TransferEvent): void {
      actor.send(event);
      clock.advanceTo(clock.now());
    },
    dispatch(): void {
      desk.send({ type: 'DISPATCH', at: clock.now() });
    },
    executed(via: 'response' | 'log' | 'query', posting: Posting | null = senderPosting()): void {
      desk.send({ type: 'EXECUTED', at: clock.now(), via, posting });
    },
    rejected(via: 'response' | 'log' | 'query', reason: 'insufficient-funds' | 'past-cutoff' = 'insufficient-funds'): void {
      desk.send({ type: 'REJECTED', at: clock.now(), via, reason });
    },
    notFound(): void {
      desk.send({ type: 'NOT_FOUND', at: clock.now() });
    },
    /**
     * A channel crash and restart: the persisted snapshot goes through JSON (as in channel.db),
     * the actor stops, time moves on to `restartAtMs`, and a new actor is restored from the
     * snapshot and, unless told otherwise, sent RESUME as the channel does.
     */
    restart(restartAtMs: number, { resume = true } = {}): void {
      const stored = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as Snapshot<unknown>;
      actor.stop();
      assert.is(clock.pendingTimers(), 0, 'a stopped actor leaves no timer behind');
      desk.advanceTo(restartAtMs);
      // A restore reads no input, but createActor's typings ask for one when the machine takes input.
      const restoring = { snapshot: stored, clock } as unknown as Parameters<typeof createActor<typeof machine>>[1];
      watch(createActor(machine, restoring));
      if (resume) desk.send({ type: 'RESUME', at: clock.now() });
    },
  };
  return desk;
}

// --- queryBackoffMs ---------------------------------------------------------------------------

test('the wait before each re-query doubles from the base and stops at the cap', () => {
  const waits = [1, 2, 3, 4, 5, 6].map((n) => queryBackoffMs(POLICY, n));
  assert.equal(waits, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  const wide = { ...POLICY, backoffMaxMs: 30_000 };
  assert.equal([1, 2, 3, 4, 5, 6].map((n) => queryBackoffMs(wide, n)), [1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
});

test('the re-query wait never drops below the base nor overflows after a very long outage', () => {
  assert.is(queryBackoffMs(POLICY, 0), 1_000);
  assert.is(queryBackoffMs(POLICY, -5), 1_000);
  assert.is(queryBackoffMs(POLICY, 1_000_000), 8_000);
  const huge = { ...POLICY, backoffMaxMs: Number.MAX_SAFE_INTEGER };
  assert.ok(Number.isFinite(queryBackoffMs(huge, 1_000_000)), 'the exponent is capped, so the wait stays finite');
});

// --- requested ----------------------------------------------------------------------------------

test('a stored transfer sends nothing and arms no timer until it is dispatched', () => {
  const t = transferDesk();
  t.advanceTo(600_000);
  assert.is(t.state(), 'requested');
  assert.equal(t.effects, []);
  assert.is(t.clock.pendingTimers(), 0);
});

test('dispatching a stored transfer sends EXECUTE once and arms the response deadline from the dispatch time', () => {
  const t = transferDesk();
  t.advanceTo(250);
  t.dispatch();
  assert.is(t.state(), 'sent');
  assert.equal(t.timesOf('sendExecute'), [250]);
  assert.is(t.context().responseDeadlineAt, T0 + 250 + 3_000);
  assert.is(t.context().clockAt, T0 + 250);
  assert.equal(t.journal, [{ to: 'sent', at: 250 }]);
});

test('a RESUME reaching a transfer that was stored but never sent sends it then', () => {
  const t = transferDesk();
  t.advanceTo(400);
  t.send({ type: 'RESUME', at: t.clock.now() });
  assert.is(t.state(), 'sent');
  assert.equal(t.timesOf('sendExecute'), [400]);
  assert.is(t.context().responseDeadlineAt, T0 + 3_400);
});

test('an outcome cannot reach a transfer that was never sent: it stays stored and unsent', () => {
  const t = transferDesk();
  t.executed('log');
  t.rejected('response');
  t.notFound();
  assert.is(t.state(), 'requested');
  assert.equal(t.effects, []);
});

// --- sent ---------------------------------------------------------------------------------------

test('an executed answer settles a sent transfer as succeeded and applies the sender posting', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(120);
  t.executed('response');
  assert.is(t.state(), 'succeeded');
  assert.is(t.status(), 'done');
  assert.equal(t.effects.map((e) => e.name), ['sendExecute', 'applySenderPosting']);
  assert.equal(t.effects[1]!.posting, senderPosting());
  assert.is(t.context().settledAt, T0 + 120);
  assert.is(t.context().settledBy, 'response');
  assert.is(t.context().reason, null);
  assert.is(t.clock.pendingTimers(), 0, 'the response deadline is disarmed');
});

test('a rejected answer fails a sent transfer with the core reason and posts nothing', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(80);
  t.rejected('response', 'insufficient-funds');
  assert.is(t.state(), 'failed');
  assert.is(t.context().reason, 'insufficient-funds');
  assert.is(t.context().settledBy, 'response');
  assert.is(t.context().settledAt, T0 + 80);
  assert.equal(t.timesOf('applySenderPosting'), []);
  assert.is(t.clock.pendingTimers(), 0);
});

test('the outcome of a sent transfer also arrives from the event log and settles it (S2)', () => {
  const ok = transferDesk();
  ok.dispatch();
  ok.executed('log');
  assert.is(ok.state(), 'succeeded');
  assert.is(ok.context().settledBy, 'log');
  assert.equal(ok.timesOf('applySenderPosting'), [0]);

  const refused = transferDesk();
  refused.dispatch();
  refused.rejected('log', 'past-cutoff');
  assert.is(refused.state(), 'failed');
  assert.is(refused.context().reason, 'past-cutoff');
  assert.is(refused.context().settledBy, 'log');
});

test('a sent transfer times out exactly responseTimeoutMs after sending, not a millisecond sooner', () => {
  const t = transferDesk({ queryAfterTimeout: false });
  t.dispatch();
  t.advanceTo(2_999);
  assert.is(t.state(), 'sent');
  t.advanceTo(3_000);
  assert.is(t.state(), 'timedOut');
  assert.equal(t.journal, [
    { to: 'sent', at: 0 },
    { to: 'timedOut', at: 3_000 },
  ]);
});

test('with the fence on, a timed-out transfer asks the core at the moment it times out (S4, S6)', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(2_999);
  assert.equal(t.timesOf('sendQuery'), []);
  t.advanceTo(3_000);
  assert.is(t.state(), 'querying');
  assert.equal(t.timesOf('sendQuery'), [3_000]);
  assert.equal(t.journal, [
    { to: 'sent', at: 0 },
    { to: 'timedOut', at: 3_000 },
    { to: 'querying', at: 3_000 },
  ]);
  assert.is(t.context().queryAttempts, 1);
  assert.is(t.context().queryDeadlineAt, T0 + 6_000);
});

test('a RESUME while sent neither sends EXECUTE again nor moves the response deadline', () => {
  const t = transferDesk({ queryAfterTimeout: false });
  t.dispatch();
  t.advanceTo(1_500);
  t.send({ type: 'RESUME', at: t.clock.now() });
  assert.equal(t.timesOf('sendExecute'), [0]);
  t.advanceTo(2_999);
  assert.is(t.state(), 'sent');
  t.advanceTo(3_000);
  assert.is(t.state(), 'timedOut');
});

// --- timedOut ------------------------------------------------------------------------------------

test('with the fence off, a timed-out transfer asks only once the cutoff has passed (S5)', () => {
  const t = transferDesk({ queryNotBeforeAt: T0 + CUTOFF_WAIT_MS });
  t.dispatch();
  t.advanceTo(3_000);
  assert.is(t.state(), 'timedOut');
  assert.is(t.context().nextQueryAt, T0 + CUTOFF_WAIT_MS);
  t.advanceTo(CUTOFF_WAIT_MS - 1);
  assert.is(t.state(), 'timedOut');
  assert.equal(t.timesOf('sendQuery'), []);
  t.advanceTo(CUTOFF_WAIT_MS);
  assert.is(t.state(), 'querying');
  assert.equal(t.timesOf('sendQuery'), [CUTOFF_WAIT_MS]);
});

test('with S4 off, a timed-out transfer never asks the core and waits for the log forever', () => {
  const t = transferDesk({ queryAfterTimeout: false });
  t.dispatch();
  t.advanceTo(24 * 3_600_000);
  assert.is(t.state(), 'timedOut');
  assert.equal(t.timesOf('sendQuery'), []);
  assert.is(t.clock.pendingTimers(), 0, 'nothing is left that could wake it');
  t.executed('log');
  assert.is(t.state(), 'succeeded');
  assert.is(t.context().settledAt, T0 + 24 * 3_600_000);
});

test('an executed outcome from the log settles a timed-out transfer and applies the sender posting (S2)', () => {
  const t = transferDesk({ queryNotBeforeAt: T0 + CUTOFF_WAIT_MS });
  t.dispatch();
  t.advanceTo(10_000);
  assert.is(t.state(), 'timedOut');
  t.executed('log');
  assert.is(t.state(), 'succeeded');
  assert.is(t.context().settledBy, 'log');
  assert.equal(t.timesOf('applySenderPosting'), [10_000]);
  assert.is(t.clock.pendingTimers(), 0, 'the planned query is called off');
  t.advanceTo(CUTOFF_WAIT_MS + 1);
  assert.equal(t.timesOf('sendQuery'), []);
});

test('a rejected outcome from the log fails a timed-out transfer with the core reason', () => {
  const t = transferDesk({ queryNotBeforeAt: T0 + CUTOFF_WAIT_MS });
  t.dispatch();
  t.advanceTo(10_000);
  t.rejected('log', 'past-cutoff');
  assert.is(t.state(), 'failed');
  assert.is(t.context().reason, 'past-cutoff');
  assert.is(t.context().settledBy, 'log');
  assert.equal(t.timesOf('applySenderPosting'), []);
});

test('a late not-found answer reaching a timed-out transfer fails it as not received', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(6_500); // the first query was declared lost at 6_000; the next goes at 7_000
  assert.is(t.state(), 'timedOut');
  t.notFound();
  assert.is(t.state(), 'failed');
  assert.is(t.context().reason, 'not-received');
  assert.is(t.context().settledBy, 'query');
  t.advanceTo(60_000);
  assert.equal(t.timesOf('sendQuery'), [3_000], 'no further query once failed');
});

// --- querying -----------------------------------------------------------------------------------

test('a query answered executed settles the transfer as succeeded with the sender posting applied', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(3_200);
  assert.is(t.state(), 'querying');
  t.executed('query');
  assert.is(t.state(), 'succeeded');
  assert.is(t.context().settledBy, 'query');
  assert.is(t.context().settledAt, T0 + 3_200);
  assert.equal(t.timesOf('applySenderPosting'), [3_200]);
  assert.is(t.clock.pendingTimers(), 0);
});

test('a query answered rejected fails the transfer with the core reason', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(3_200);
  t.rejected('query', 'insufficient-funds');
  assert.is(t.state(), 'failed');
  assert.is(t.context().reason, 'insufficient-funds');
  assert.is(t.context().settledBy, 'query');
  assert.equal(t.timesOf('applySenderPosting'), []);
});

test('a query answered not-found fails the transfer as not received (S4)', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(3_200);
  t.notFound();
  assert.is(t.state(), 'failed');
  assert.is(t.context().reason, 'not-received');
  assert.is(t.context().settledAt, T0 + 3_200);
  assert.is(t.clock.pendingTimers(), 0);
});

test('an outcome from the log settles a transfer whose query is still out', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(4_000);
  t.executed('log');
  assert.is(t.state(), 'succeeded');
  assert.is(t.context().settledBy, 'log');
  assert.equal(t.timesOf('applySenderPosting'), [4_000]);
});

test('a lost query times out after queryTimeoutMs and is asked again with capped exponential backoff', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(5_999);
  assert.is(t.state(), 'querying');
  t.advanceTo(6_000);
  assert.is(t.state(), 'timedOut');
  assert.is(t.context().nextQueryAt, T0 + 7_000);
  t.advanceTo(45_000);
  const queries = t.timesOf('sendQuery');
  assert.equal(queries, [3_000, 7_000, 12_000, 19_000, 30_000, 41_000]);
  // Each query waits its timeout; the gap after it is the backoff: 1, 2, 4, 8, then 8 s (the cap).
  const backoffs = queries.slice(1).map((at, i) => at - queries[i]! - POLICY.queryTimeoutMs);
  assert.equal(backoffs, [1_000, 2_000, 4_000, 8_000, 8_000]);
  assert.equal(
    t.journal.filter((s) => s.to === 'timedOut').map((s) => s.at),
    [3_000, 6_000, 10_000, 15_000, 22_000, 33_000, 44_000],
  );
  assert.is(t.context().queryAttempts, 6);
  assert.equal(t.timesOf('sendExecute'), [0], 'EXECUTE is never sent again');
});

test('a transfer still settles on the first answer after several lost queries', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(19_500);
  assert.is(t.state(), 'querying');
  assert.is(t.context().queryAttempts, 4);
  t.executed('query');
  assert.is(t.state(), 'succeeded');
  t.advanceTo(120_000);
  assert.equal(t.timesOf('sendQuery'), [3_000, 7_000, 12_000, 19_000]);
});

test('a settled transfer ignores every later outcome, RESUME and timer', () => {
  const t = transferDesk();
  t.dispatch();
  t.executed('response');
  const settled = t.context();
  t.executed('log');
  t.rejected('query');
  t.notFound();
  t.send({ type: 'RESUME', at: t.clock.now() });
  t.advanceTo(600_000);
  assert.is(t.state(), 'succeeded');
  assert.equal(t.context(), settled);
  assert.equal(t.effects.map((e) => e.name), ['sendExecute', 'applySenderPosting'], 'the posting is applied once');
});

// --- persisted snapshots, restored -----------------------------------------------------------------

test('a restored actor arms no timer until RESUME tells it the time', () => {
  const t = transferDesk({ queryAfterTimeout: false });
  t.dispatch();
  t.restart(1_000, { resume: false });
  assert.is(t.state(), 'sent');
  assert.is(t.clock.pendingTimers(), 0, 'XState does not persist delayed events');
  t.advanceTo(10_000);
  assert.is(t.state(), 'sent', 'the channel must send RESUME after restoring');
});

test('a transfer stored but not sent before a restart is sent when restored', () => {
  const t = transferDesk();
  t.advanceTo(500);
  t.restart(20_000);
  assert.is(t.state(), 'sent');
  assert.equal(t.timesOf('sendExecute'), [20_000]);
  assert.is(t.context().responseDeadlineAt, T0 + 23_000);
  t.advanceTo(22_999);
  assert.is(t.state(), 'sent');
  t.advanceTo(23_000);
  assert.is(t.state(), 'querying');
});

test('a sent transfer restored before its deadline times out at the original deadline, not a full timeout after the restart', () => {
  const t = transferDesk({ queryAfterTimeout: false });
  t.dispatch();
  t.advanceTo(1_000);
  t.restart(2_000);
  assert.is(t.state(), 'sent');
  assert.is(t.context().responseDeadlineAt, T0 + 3_000);
  assert.equal(t.timesOf('sendExecute'), [0], 'the restored transfer does not send EXECUTE again');
  t.advanceTo(2_999);
  assert.is(t.state(), 'sent');
  t.advanceTo(3_000);
  assert.is(t.state(), 'timedOut');
});

test('a sent transfer restored after its deadline times out at once and asks the core', () => {
  const t = transferDesk();
  t.dispatch();
  t.restart(10_000);
  assert.is(t.state(), 'querying');
  assert.equal(t.journal.slice(-2), [
    { to: 'timedOut', at: 10_000 },
    { to: 'querying', at: 10_000 },
  ]);
  assert.equal(t.timesOf('sendQuery'), [10_000]);
  assert.equal(t.timesOf('sendExecute'), [0]);
  t.advanceTo(12_999);
  assert.is(t.state(), 'querying', 'the query gets its full timeout from when it was sent');
  t.advanceTo(13_000);
  assert.is(t.state(), 'timedOut');
});

test('a sent transfer restored after its deadline still settles from the answer that arrives next', () => {
  const t = transferDesk();
  t.dispatch();
  t.restart(10_000);
  t.executed('response');
  assert.is(t.state(), 'succeeded');
  assert.equal(t.timesOf('applySenderPosting'), [10_000]);
});

test('a timed-out transfer restored before the cutoff asks at the original time (S5)', () => {
  const t = transferDesk({ queryNotBeforeAt: T0 + CUTOFF_WAIT_MS });
  t.dispatch();
  t.advanceTo(5_000);
  assert.is(t.state(), 'timedOut');
  t.restart(30_000);
  assert.is(t.state(), 'timedOut');
  t.advanceTo(CUTOFF_WAIT_MS - 1);
  assert.equal(t.timesOf('sendQuery'), []);
  t.advanceTo(CUTOFF_WAIT_MS);
  assert.is(t.state(), 'querying');
  assert.equal(t.timesOf('sendQuery'), [CUTOFF_WAIT_MS]);
});

test('a timed-out transfer restored after its query time asks at once', () => {
  const t = transferDesk({ queryNotBeforeAt: T0 + CUTOFF_WAIT_MS });
  t.dispatch();
  t.advanceTo(5_000);
  t.restart(CUTOFF_WAIT_MS + 20_000);
  assert.is(t.state(), 'querying');
  assert.equal(t.timesOf('sendQuery'), [CUTOFF_WAIT_MS + 20_000]);
  t.notFound();
  assert.is(t.state(), 'failed');
  assert.is(t.context().reason, 'not-received');
});

test('a transfer waiting out its backoff after a lost query keeps its next query time across a restart', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(10_500); // second query lost at 10_000; the third is due at 12_000
  assert.is(t.state(), 'timedOut');
  t.restart(11_000);
  assert.is(t.state(), 'timedOut');
  t.advanceTo(11_999);
  assert.equal(t.timesOf('sendQuery'), [3_000, 7_000]);
  t.advanceTo(12_000);
  assert.equal(t.timesOf('sendQuery'), [3_000, 7_000, 12_000]);
  assert.is(t.context().queryAttempts, 3, 'the attempt count survives, so the backoff keeps growing');
  t.advanceTo(19_000);
  assert.equal(t.timesOf('sendQuery'), [3_000, 7_000, 12_000, 19_000]);
});

test('a timed-out transfer with S4 off is still waiting after a restart, and settles from the log', () => {
  const t = transferDesk({ queryAfterTimeout: false });
  t.dispatch();
  t.advanceTo(5_000);
  t.restart(600_000);
  assert.is(t.state(), 'timedOut');
  t.advanceTo(3_600_000);
  assert.is(t.state(), 'timedOut');
  assert.equal(t.timesOf('sendQuery'), []);
  t.rejected('log', 'insufficient-funds');
  assert.is(t.state(), 'failed');
});

test('a querying transfer restored before its query deadline keeps that deadline and does not ask again', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(4_000);
  t.restart(5_000);
  assert.is(t.state(), 'querying');
  assert.equal(t.timesOf('sendQuery'), [3_000]);
  t.advanceTo(5_999);
  assert.is(t.state(), 'querying');
  t.advanceTo(6_000);
  assert.is(t.state(), 'timedOut');
  t.advanceTo(7_000);
  assert.equal(t.timesOf('sendQuery'), [3_000, 7_000]);
});

test('a querying transfer restored after its query deadline treats the query as lost and asks again after the backoff', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(4_000);
  t.restart(20_000);
  assert.is(t.state(), 'timedOut');
  assert.equal(t.journal.slice(-1), [{ to: 'timedOut', at: 20_000 }]);
  t.advanceTo(20_999);
  assert.equal(t.timesOf('sendQuery'), [3_000]);
  t.advanceTo(21_000);
  assert.equal(t.timesOf('sendQuery'), [3_000, 21_000]);
});

test('a querying transfer restored still settles from its answer', () => {
  const t = transferDesk();
  t.dispatch();
  t.advanceTo(4_000);
  t.restart(4_500);
  t.executed('query');
  assert.is(t.state(), 'succeeded');
  assert.is(t.context().settledBy, 'query');
  assert.equal(t.timesOf('applySenderPosting'), [4_500]);
});

test('a query sent after a long outage keeps its full timeout across a second restart', () => {
  const t = transferDesk();
  t.dispatch();
  t.restart(60_000); // down past the response deadline: it times out and asks at once
  assert.equal(t.timesOf('sendQuery'), [60_000]);
  assert.is(t.context().queryDeadlineAt, T0 + 63_000, 'the stored deadline is when the query really times out');
  t.restart(61_000); // a second restart while that query is out
  t.advanceTo(62_999);
  assert.equal(t.timesOf('sendQuery'), [60_000]);
  assert.is(t.state(), 'querying');
  t.advanceTo(63_000);
  assert.is(t.state(), 'timedOut');
});

test.run();
