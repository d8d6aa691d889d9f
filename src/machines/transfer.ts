/**
 * The transfer machine: one actor per transfer, from stored request to settled outcome.
 * Definition only: time comes in on events, effects are named actions the channel provides.
 */
import { assign, setup } from 'xstate';
import type { Posting, RejectReason } from '../net/messages.ts';

export type TransferState = 'requested' | 'sent' | 'timedOut' | 'querying' | 'succeeded' | 'failed';
export const TRANSFER_STATES: readonly TransferState[] = ['requested', 'sent', 'timedOut', 'querying', 'succeeded', 'failed'];
export const UNFINISHED_STATES: readonly TransferState[] = ['requested', 'sent', 'timedOut', 'querying'];

export type FailureReason = RejectReason | 'not-received';
/** Where an outcome came from: the answer to EXECUTE, the event log, or the answer to QUERY. */
export type OutcomeSource = 'response' | 'log' | 'query';

/** Timing rules a transfer is started with; they travel in its snapshot. */
export type TransferPolicy = {
  responseTimeoutMs: number;
  queryTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** No QUERY before this time: requestedAt + cutoff + margin when the fence (S6) is off. */
  queryNotBeforeAt: number;
  /** S4: ask the core after a timeout. Off, a timed-out transfer waits for the log forever. */
  queryAfterTimeout: boolean;
};

export type TransferInput = {
  transferId: string;
  fromAccountId: number;
  toAccountId: number;
  amountWon: number;
  memo: string | null;
  requestedAt: number;
  policy: TransferPolicy;
};

export type TransferContext = TransferInput & {
  /** The latest time this actor knows of, taken from events: delays are computed from it. */
  clockAt: number;
  responseDeadlineAt: number | null;
  nextQueryAt: number | null;
  queryDeadlineAt: number | null;
  queryAttempts: number;
  reason: FailureReason | null;
  settledAt: number | null;
  settledBy: OutcomeSource | null;
};

export type TransferEvent =
  | { type: 'DISPATCH'; at: number }
  | { type: 'RESUME'; at: number }
  /** posting: the sender's row of this transfer; catchUp: the sender's rows before it the channel may lack. */
  | { type: 'EXECUTED'; at: number; via: OutcomeSource; posting: Posting | null; catchUp?: Posting[] }
  | { type: 'REJECTED'; at: number; via: OutcomeSource; reason: RejectReason }
  | { type: 'NOT_FOUND'; at: number };

/** Capped exponential backoff before the n-th re-query (n from 1). */
export function queryBackoffMs(policy: Pick<TransferPolicy, 'backoffBaseMs' | 'backoffMaxMs'>, attempt: number): number {
  return Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
}

const at = ({ event }: { event: TransferEvent }) => event.at;

export const transferMachine = setup({
  types: {
    context: {} as TransferContext,
    events: {} as TransferEvent,
    input: {} as TransferInput,
  },
  actions: {
    /** Effect: send EXECUTE to the core (after this transition is committed). */
    sendExecute: () => {},
    /** Effect: send QUERY to the core (after this transition is committed). */
    sendQuery: () => {},
    /** Effect: apply the sender's posting to history in the same commit (read your writes). */
    applySenderPosting: () => {},
    rememberTime: assign({ clockAt: at }),
    armResponseDeadline: assign(({ context, event }) => ({
      clockAt: event.at,
      responseDeadlineAt: event.at + context.policy.responseTimeoutMs,
    })),
    planFirstQuery: assign(({ context }) => {
      // Never let clockAt go backwards: a restored actor may fire after its planned time.
      const deadline = Math.max(context.responseDeadlineAt ?? context.clockAt, context.clockAt);
      return { clockAt: deadline, nextQueryAt: Math.max(deadline, context.policy.queryNotBeforeAt) };
    }),
    armQueryDeadline: assign(({ context }) => {
      const startedAt = Math.max(context.nextQueryAt ?? context.clockAt, context.clockAt);
      return {
        clockAt: startedAt,
        queryAttempts: context.queryAttempts + 1,
        queryDeadlineAt: startedAt + context.policy.queryTimeoutMs,
      };
    }),
    planRetryQuery: assign(({ context }) => {
      const lostAt = Math.max(context.queryDeadlineAt ?? context.clockAt, context.clockAt);
      return { clockAt: lostAt, nextQueryAt: lostAt + queryBackoffMs(context.policy, context.queryAttempts) };
    }),
    settleSucceeded: assign(({ event }) => {
      if (event.type !== 'EXECUTED') return {};
      return { clockAt: event.at, settledAt: event.at, settledBy: event.via, reason: null };
    }),
    settleRejected: assign(({ event }) => {
      if (event.type !== 'REJECTED') return {};
      return { clockAt: event.at, settledAt: event.at, settledBy: event.via, reason: event.reason };
    }),
    settleNotReceived: assign(({ event }) => ({
      clockAt: event.at,
      settledAt: event.at,
      settledBy: 'query' as const,
      reason: 'not-received' as const,
    })),
  },
  guards: {
    queryAfterTimeout: ({ context }) => context.policy.queryAfterTimeout,
  },
  delays: {
    untilResponseDeadline: ({ context }) => Math.max(0, (context.responseDeadlineAt ?? context.clockAt) - context.clockAt),
    untilNextQuery: ({ context }) => Math.max(0, (context.nextQueryAt ?? context.clockAt) - context.clockAt),
    untilQueryDeadline: ({ context }) => Math.max(0, (context.queryDeadlineAt ?? context.clockAt) - context.clockAt),
  },
}).createMachine({
  id: 'transfer',
  initial: 'requested',
  context: ({ input }) => ({
    ...input,
    clockAt: input.requestedAt,
    responseDeadlineAt: null,
    nextQueryAt: null,
    queryDeadlineAt: null,
    queryAttempts: 0,
    reason: null,
    settledAt: null,
    settledBy: null,
  }),
  states: {
    requested: {
      description: 'Stored in channel.db, not yet sent (S3: stored before sent).',
      on: {
        DISPATCH: { target: 'sent', actions: ['armResponseDeadline', 'sendExecute'] },
        RESUME: { target: 'sent', actions: ['armResponseDeadline', 'sendExecute'] },
      },
    },
    sent: {
      description: 'EXECUTE is on its way; waiting for the answer or the event log.',
      after: { untilResponseDeadline: { target: 'timedOut', actions: 'planFirstQuery' } },
      on: {
        EXECUTED: { target: 'succeeded', actions: ['settleSucceeded', 'applySenderPosting'] },
        REJECTED: { target: 'failed', actions: 'settleRejected' },
        RESUME: { target: 'sent', reenter: true, actions: 'rememberTime' },
      },
    },
    timedOut: {
      description: 'No answer in time (S4): ask the core, after the cutoff when the fence is off (S5).',
      after: {
        untilNextQuery: { guard: 'queryAfterTimeout', target: 'querying', actions: ['armQueryDeadline', 'sendQuery'] },
      },
      on: {
        EXECUTED: { target: 'succeeded', actions: ['settleSucceeded', 'applySenderPosting'] },
        REJECTED: { target: 'failed', actions: 'settleRejected' },
        NOT_FOUND: { target: 'failed', actions: 'settleNotReceived' },
        RESUME: { target: 'timedOut', reenter: true, actions: 'rememberTime' },
      },
    },
    querying: {
      description: 'QUERY is on its way; a lost answer goes back to timedOut with backoff.',
      after: { untilQueryDeadline: { target: 'timedOut', actions: 'planRetryQuery' } },
      on: {
        EXECUTED: { target: 'succeeded', actions: ['settleSucceeded', 'applySenderPosting'] },
        REJECTED: { target: 'failed', actions: 'settleRejected' },
        NOT_FOUND: { target: 'failed', actions: 'settleNotReceived' },
        RESUME: { target: 'querying', reenter: true, actions: 'rememberTime' },
      },
    },
    succeeded: { type: 'final', description: 'Executed in the core.' },
    failed: { type: 'final', description: 'Did not execute in the core, and never will.' },
  },
});

export type TransferMachine = typeof transferMachine;
