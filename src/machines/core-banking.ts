/**
 * The coreBanking machine: the ledger's long-lived actor. Its guards decide every EXECUTE
 * (duplicate, fence, cutoff, future date, accounts, funds) from facts the core read in the
 * same transaction; its actions are the core's effects, provided by src/core.
 */
import { setup } from 'xstate';
import type { Decision, ExecuteRequest, RejectReason } from '../net/messages.ts';

export type CoreRules = {
  cutoffMs: number;
  /** How far ahead of the core's clock a request time may be before it is refused. */
  allowedSkewMs: number;
  /** S5: refuse requests older than the cutoff. */
  enforceCutoff: boolean;
  /** S6: a "never seen" answer writes a tombstone, and a tombstone refuses the request. */
  fence: boolean;
  /** How often expired rejected decisions and tombstones are pruned. */
  pruneIntervalMs: number;
};

/** What the core knew about a request when the event was made, read in the deciding transaction. */
export type RequestFacts = {
  decision: Decision | null;
  tombstoned: boolean;
  fromBalanceWon: number | null; // null: no such account
  toExists: boolean;
};

export type CoreEvent =
  | { type: 'EXECUTE'; now: number; request: ExecuteRequest; facts: RequestFacts }
  | { type: 'QUERY'; now: number; requestId: string; facts: RequestFacts };

const rejectWith = (reason: RejectReason) => ({ type: 'reject' as const, params: { reason } });

export const coreBankingMachine = setup({
  types: {
    context: {} as CoreRules,
    events: {} as CoreEvent,
    input: {} as CoreRules,
  },
  actions: {
    /** Answer the decision already stored for this id; execute nothing. */
    answerStoredDecision: () => {},
    /** Store a rejection with its reason, log it, answer it. */
    reject: (_, _params: { reason: RejectReason }) => {},
    /** Post both sides, store the decision, log it, answer it: one core transaction. */
    execute: () => {},
    /** Answer "not-found"; with the fence on, write the tombstone in the same transaction. */
    answerNotFound: () => {},
    pruneExpired: () => {},
  },
  guards: {
    alreadyDecided: ({ event }) => event.facts.decision !== null,
    fenced: ({ context, event }) => context.fence && event.facts.tombstoned,
    pastCutoff: ({ context, event }) =>
      event.type === 'EXECUTE' && context.enforceCutoff && event.now - event.request.requestedAt > context.cutoffMs,
    futureDated: ({ context, event }) =>
      event.type === 'EXECUTE' && event.request.requestedAt - event.now > context.allowedSkewMs,
    sameAccount: ({ event }) => event.type === 'EXECUTE' && event.request.fromAccountId === event.request.toAccountId,
    invalidAmount: ({ event }) =>
      event.type === 'EXECUTE' && !(Number.isSafeInteger(event.request.amountWon) && event.request.amountWon > 0),
    unknownAccount: ({ event }) => event.facts.fromBalanceWon === null || !event.facts.toExists,
    insufficientFunds: ({ event }) =>
      event.type === 'EXECUTE' && (event.facts.fromBalanceWon ?? 0) < event.request.amountWon,
  },
  delays: {
    pruneInterval: ({ context }) => context.pruneIntervalMs,
  },
}).createMachine({
  id: 'coreBanking',
  context: ({ input }) => input,
  initial: 'serving',
  states: {
    serving: {
      description: 'Decides each request once, in one core transaction; answers duplicates from the record.',
      after: { pruneInterval: { target: 'serving', reenter: true, actions: 'pruneExpired' } },
      on: {
        EXECUTE: [
          { guard: 'alreadyDecided', actions: 'answerStoredDecision' },
          { guard: 'fenced', actions: rejectWith('fenced') },
          { guard: 'pastCutoff', actions: rejectWith('past-cutoff') },
          { guard: 'futureDated', actions: rejectWith('future-dated') },
          { guard: 'invalidAmount', actions: rejectWith('invalid-amount') },
          { guard: 'sameAccount', actions: rejectWith('same-account') },
          { guard: 'unknownAccount', actions: rejectWith('unknown-account') },
          { guard: 'insufficientFunds', actions: rejectWith('insufficient-funds') },
          { actions: 'execute' },
        ],
        QUERY: [{ guard: 'alreadyDecided', actions: 'answerStoredDecision' }, { actions: 'answerNotFound' }],
      },
    },
  },
});

export type CoreBankingMachine = typeof coreBankingMachine;
