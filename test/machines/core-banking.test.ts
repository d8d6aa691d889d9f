/**
 * The coreBanking machine on XState's simulated clock: every guard that decides EXECUTE and
 * QUERY, in order and at its boundaries, and the pruning timer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, SimulatedClock } from 'xstate';
import { coreBankingMachine, type CoreEvent, type CoreRules, type RequestFacts } from '../../src/machines/core-banking.ts';
import type { Decision, ExecuteRequest, Posting, RejectReason } from '../../src/net/messages.ts';

const T0 = Date.UTC(2026, 0, 1);

const RULES: CoreRules = {
  cutoffMs: 60_000,
  allowedSkewMs: 5_000,
  enforceCutoff: true, // S5
  fence: true, // S6
  pruneIntervalMs: 10_000,
};

/** An account with 50,000 won sends 30,000 to an account that exists; no record of the id yet. */
const REQUEST: ExecuteRequest = {
  requestId: 'tr-1',
  fromAccountId: 1,
  toAccountId: 2,
  amountWon: 30_000,
  memo: null,
  requestedAt: T0,
};
const FACTS: RequestFacts = { decision: null, tombstoned: false, fromBalanceWon: 50_000, toExists: true };

function posting(accountId: number, amountWon: number, balanceAfterWon: number): Posting {
  return {
    accountId,
    seq: 3,
    amountWon,
    balanceAfterWon,
    kind: amountWon < 0 ? 'transfer-out' : 'transfer-in',
    counterparty: null,
    memo: null,
    transferId: 'tr-1',
    occurredAt: T0,
  };
}
const EXECUTED: Decision = { kind: 'executed', postings: { from: posting(1, -30_000, 20_000), to: posting(2, 30_000, 30_000) } };
const REJECTED: Decision = { kind: 'rejected', reason: 'insufficient-funds' };

/** What the core did for one event: the action and, for a refusal, its reason. */
type Verdict = 'answerStoredDecision' | 'execute' | 'answerNotFound' | `reject: ${RejectReason}`;

/** The core actor with spies for its effects, on a simulated clock started at T0. */
function coreDesk(rules: Partial<CoreRules> = {}) {
  const clock = new SimulatedClock();
  clock.set(T0);
  let verdicts: Verdict[] = [];
  const prunedAt: number[] = [];
  const seen: CoreEvent[] = [];
  const machine = coreBankingMachine.provide({
    actions: {
      answerStoredDecision: ({ event }) => {
        seen.push(event);
        verdicts.push('answerStoredDecision');
      },
      reject: ({ event }, { reason }) => {
        seen.push(event);
        verdicts.push(`reject: ${reason}`);
      },
      execute: ({ event }) => {
        seen.push(event);
        verdicts.push('execute');
      },
      answerNotFound: ({ event }) => {
        seen.push(event);
        verdicts.push('answerNotFound');
      },
      pruneExpired: () => {
        prunedAt.push(clock.now() - T0);
      },
    },
  });
  const actor = createActor(machine, { input: { ...RULES, ...rules }, clock });
  actor.start();

  /** Sends one event and returns what the core did; every event gets exactly one answer. */
  const decide = (event: CoreEvent): Verdict => {
    verdicts = [];
    actor.send(event);
    assert.is(verdicts.length, 1, `one answer for ${event.type}, got ${JSON.stringify(verdicts)}`);
    return verdicts[0]!;
  };

  return {
    clock,
    actor,
    prunedAt,
    seen,
    /** EXECUTE with the core's clock at `nowMs` after T0. */
    execute(request: Partial<ExecuteRequest> = {}, facts: Partial<RequestFacts> = {}, nowMs = 0): Verdict {
      return decide({ type: 'EXECUTE', now: T0 + nowMs, request: { ...REQUEST, ...request }, facts: { ...FACTS, ...facts } });
    },
    query(facts: Partial<RequestFacts> = {}, nowMs = 0): Verdict {
      return decide({ type: 'QUERY', now: T0 + nowMs, requestId: REQUEST.requestId, facts: { ...FACTS, fromBalanceWon: 0, ...facts } });
    },
  };
}

// --- EXECUTE -----------------------------------------------------------------------------------

test('a request that passes every rule is executed', () => {
  const core = coreDesk();
  assert.is(core.execute(), 'execute');
  const event = core.seen[0]!;
  assert.is(event.type, 'EXECUTE');
  if (event.type === 'EXECUTE') assert.equal(event.request, REQUEST, 'the execute effect gets the request as sent');
  assert.is(core.actor.getSnapshot().value, 'serving');
});

test('a duplicate EXECUTE for an executed request answers the stored decision and executes nothing', () => {
  const core = coreDesk();
  assert.is(core.execute({}, { decision: EXECUTED }), 'answerStoredDecision');
  // Even when the facts now would refuse or execute it differently, the record answers.
  assert.is(core.execute({}, { decision: EXECUTED, fromBalanceWon: 0 }), 'answerStoredDecision');
  assert.is(core.execute({ requestedAt: T0 - 3_600_000 }, { decision: EXECUTED }), 'answerStoredDecision');
});

test('a duplicate EXECUTE for a refused request answers the stored refusal, even when it would pass now', () => {
  const core = coreDesk();
  assert.is(core.execute({}, { decision: REJECTED, fromBalanceWon: 1_000_000 }), 'answerStoredDecision');
});

test('a request the core has answered not-found is refused as fenced (S6)', () => {
  const core = coreDesk();
  assert.is(core.execute({}, { tombstoned: true }), 'reject: fenced');
});

test('with the fence off, a tombstone refuses nothing', () => {
  const core = coreDesk({ fence: false });
  assert.is(core.execute({}, { tombstoned: true }), 'execute');
});

test('a request exactly cutoffMs old is executed; one a millisecond older is refused as past the cutoff (S5)', () => {
  const core = coreDesk();
  assert.is(core.execute({}, {}, 60_000), 'execute');
  assert.is(core.execute({}, {}, 60_001), 'reject: past-cutoff');
});

test('with the cutoff off, an hour-old request still executes', () => {
  const core = coreDesk({ enforceCutoff: false });
  assert.is(core.execute({}, {}, 3_600_000), 'execute');
});

test('a request dated up to allowedSkewMs ahead of the core clock is executed; one a millisecond further is refused', () => {
  const core = coreDesk();
  assert.is(core.execute({ requestedAt: T0 + 5_000 }), 'execute');
  assert.is(core.execute({ requestedAt: T0 + 5_001 }), 'reject: future-dated');
});

test('an amount that is not a positive whole number of won is refused', () => {
  const core = coreDesk();
  for (const amountWon of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1]) {
    assert.is(core.execute({ amountWon }, { fromBalanceWon: Number.MAX_VALUE }), 'reject: invalid-amount', `amount ${amountWon}`);
  }
  assert.is(core.execute({ amountWon: 1 }), 'execute');
});

test('a transfer from an account to itself is refused', () => {
  const core = coreDesk();
  assert.is(core.execute({ toAccountId: REQUEST.fromAccountId }), 'reject: same-account');
});

test('a transfer from or to an account the core does not know is refused', () => {
  const core = coreDesk();
  assert.is(core.execute({}, { fromBalanceWon: null }), 'reject: unknown-account');
  assert.is(core.execute({}, { toExists: false }), 'reject: unknown-account');
});

test('a sender may spend the whole balance but not a won more', () => {
  const core = coreDesk();
  assert.is(core.execute({ amountWon: 50_000 }), 'execute');
  assert.is(core.execute({ amountWon: 50_001 }), 'reject: insufficient-funds');
  assert.is(core.execute({ amountWon: 1 }, { fromBalanceWon: 0 }), 'reject: insufficient-funds');
});

test('a request that breaks several rules is refused for the first in order', () => {
  const core = coreDesk();
  // Each row breaks its own rule and every rule after it; the reason is always its own.
  const late = { requestedAt: T0 - 60_001 };
  const ahead = { requestedAt: T0 + 5_001 };
  const all = { tombstoned: true, fromBalanceWon: null, toExists: false };
  const rows: [Partial<ExecuteRequest>, Partial<RequestFacts>, Verdict][] = [
    [{ ...late, amountWon: 0, toAccountId: 1 }, all, 'reject: fenced'],
    [{ ...late, amountWon: 0, toAccountId: 1 }, { ...all, tombstoned: false }, 'reject: past-cutoff'],
    [{ ...ahead, amountWon: 0, toAccountId: 1 }, { ...all, tombstoned: false }, 'reject: future-dated'],
    [{ amountWon: 0, toAccountId: 1 }, { fromBalanceWon: null, toExists: false }, 'reject: invalid-amount'],
    [{ toAccountId: 1 }, { fromBalanceWon: null, toExists: false }, 'reject: same-account'],
    [{ amountWon: 1_000_000 }, { toExists: false }, 'reject: unknown-account'],
    [{ amountWon: 1_000_000 }, {}, 'reject: insufficient-funds'],
  ];
  for (const [request, facts, verdict] of rows) assert.is(core.execute(request, facts), verdict);
});

test('the core keeps serving after every kind of answer', () => {
  const core = coreDesk();
  core.execute();
  core.execute({}, { tombstoned: true });
  core.query();
  assert.is(core.actor.getSnapshot().value, 'serving');
  assert.is(core.actor.getSnapshot().status, 'active');
});

// --- QUERY ---------------------------------------------------------------------------------------

test('a query for a decided request answers the stored decision', () => {
  const core = coreDesk();
  assert.is(core.query({ decision: EXECUTED }), 'answerStoredDecision');
  assert.is(core.query({ decision: REJECTED }), 'answerStoredDecision');
});

test('a query for a request the core never saw answers not-found, at any age and again after a tombstone', () => {
  const core = coreDesk();
  assert.is(core.query(), 'answerNotFound');
  assert.is(core.query({}, 3_600_000), 'answerNotFound');
  assert.is(core.query({ tombstoned: true }), 'answerNotFound');
  const event = core.seen[0]!;
  assert.ok(event.type === 'QUERY' && event.requestId === REQUEST.requestId, 'the answer is for the id asked');
});

// --- pruning -------------------------------------------------------------------------------------

test('expired decisions and tombstones are pruned every pruneIntervalMs, whatever the traffic', () => {
  const core = coreDesk();
  core.clock.increment(9_999);
  assert.equal(core.prunedAt, []);
  core.clock.increment(1);
  assert.equal(core.prunedAt, [10_000]);
  // Requests in between do not restart the interval.
  core.clock.increment(5_000);
  core.execute({}, {}, 15_000);
  core.query({}, 15_000);
  core.clock.increment(4_999);
  assert.equal(core.prunedAt, [10_000]);
  core.clock.increment(1);
  assert.equal(core.prunedAt, [10_000, 20_000]);
  for (let i = 0; i < 10; i++) core.clock.increment(1_000);
  assert.equal(core.prunedAt, [10_000, 20_000, 30_000]);
});

test('a stopped core prunes nothing', () => {
  const core = coreDesk();
  core.clock.increment(10_000);
  core.actor.stop();
  core.clock.increment(60_000);
  assert.equal(core.prunedAt, [10_000]);
});

test.run();
