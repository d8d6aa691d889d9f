/**
 * The transfer machine as a pure step function: from a persisted snapshot and an event to the
 * next snapshot, the effects to run and the next deadline. No live actor, no timer.
 */
import { createActor, type AnyEventObject, type SnapshotFrom } from 'xstate';
import { assert } from '../../lib/assert.ts';
import { transferMachine, type TransferEvent, type TransferInput, type TransferState } from '../../machines/transfer.ts';

export type TransferSnapshot = SnapshotFrom<typeof transferMachine>;

/** What a transition asks for, named as the machine names its actions. */
export type TransferEffect =
  | { type: 'sendExecute' }
  | { type: 'sendQuery' }
  /** In the same commit: the sender's rows this outcome brought (read your writes). */
  | { type: 'applySenderPosting'; event: Extract<TransferEvent, { type: 'EXECUTED' }> };

/** The one delayed event a transfer waits for, at an absolute time on the channel's clock. */
export type Deadline = { at: number; event: string };

export type Step = {
  snapshot: TransferSnapshot;
  state: TransferState;
  effects: TransferEffect[];
  /** The one delayed event the transfer waits for now; null: nothing is due (settled, or waiting for the log alone). */
  deadline: Deadline | null;
};

type ExecutableAction = { type: string; params?: unknown };

/**
 * XState's transition() and initialTransition() build a throwaway actor on every call (about
 * 20 µs); the same pure step through one inert scope, made once, costs about 4 µs. The scope
 * is never started: it only collects the actions a step would execute.
 */
export function createTransferEngine() {
  let collected: ExecutableAction[] = [];
  const self = createActor(transferMachine, { input: placeholderInput() });
  const scope = {
    self,
    id: '',
    sessionId: '',
    system: self.system,
    logger: () => {},
    defer: () => {},
    emit: () => {},
    stopChild: () => {},
    actionExecutor: (action: ExecutableAction) => {
      collected.push(action);
    },
  } as unknown as Parameters<typeof transferMachine.transition>[2];

  /**
   * The effects of a step, and its deadline as a live actor's scheduler would hold it: the one
   * before it, unless it was the event just delivered (used up) or the step cancelled it; a
   * delayed event the step raised takes its place.
   */
  function stepOf(snapshot: TransferSnapshot, actions: ExecutableAction[], event: AnyEventObject, before: Deadline | null): Step {
    const effects: TransferEffect[] = [];
    let deadline = before !== null && before.event === event.type ? null : before;
    for (const a of actions) {
      if (a.type === 'sendExecute' || a.type === 'sendQuery') effects.push({ type: a.type });
      else if (a.type === 'applySenderPosting' && event.type === 'EXECUTED') effects.push({ type: 'applySenderPosting', event: event as Extract<TransferEvent, { type: 'EXECUTED' }> });
      else if (a.type === 'xstate.cancel' && deadline !== null && (a.params as { sendId: string }).sendId === deadline.event) deadline = null;
      else if (a.type === 'xstate.raise') {
        const p = a.params as { event: AnyEventObject; delay?: number };
        assert(p.delay !== undefined, 'the transfer machine raises only delayed events');
        // Delays are computed from the time the snapshot knows (clockAt): the deadline is absolute.
        deadline = { at: snapshot.context.clockAt + p.delay, event: p.event.type };
      }
    }
    const state = snapshot.value as TransferState;
    return { snapshot, state, effects, deadline: snapshot.status === 'done' ? null : deadline };
  }

  return {
    /** The snapshot a new transfer starts from, in `requested`. */
    initial(input: TransferInput): Step {
      collected = [];
      const snapshot = transferMachine.getInitialSnapshot(scope, input);
      return stepOf(snapshot, collected, { type: 'xstate.init' }, null);
    },
    /** One event, one macrostep, from a snapshot whose pending deadline is `deadline`. Nothing moved: the same snapshot object. */
    step(snapshot: TransferSnapshot, event: AnyEventObject, deadline: Deadline | null): Step {
      collected = [];
      const next = transferMachine.transition(snapshot, event as TransferEvent, scope);
      return stepOf(next, collected, event, deadline);
    },
    restore(persisted: unknown): TransferSnapshot {
      return transferMachine.restoreSnapshot(persisted as Parameters<typeof transferMachine.restoreSnapshot>[0], scope) as TransferSnapshot;
    },
    persist(snapshot: TransferSnapshot): string {
      return JSON.stringify(transferMachine.getPersistedSnapshot(snapshot));
    },
  };
}

function placeholderInput(): TransferInput {
  const policy = { responseTimeoutMs: 1, queryTimeoutMs: 1, backoffBaseMs: 1, backoffMaxMs: 1, queryNotBeforeAt: 0, queryAfterTimeout: true };
  return { transferId: 'engine', fromAccountId: 1, toAccountId: 2, amountWon: 1, memo: null, requestedAt: 0, policy };
}

export type TransferEngine = ReturnType<typeof createTransferEngine>;
