/**
 * Transfers as durable actors: a transfer's state is its row. An event loads the snapshot,
 * the engine computes the next one, the open batch commits it with one journal row, and only
 * then do its effects leave. One timer, armed for the earliest row in the deadline index,
 * stands for every waiting transfer.
 */
import type { AnyEventObject } from 'xstate';
import { assert } from '../../lib/assert.ts';
import type { Clock, TimerHandle } from '../../lib/clock.ts';
import type { GroupCommit } from '../../lib/group-commit.ts';
import type { TransferInspector } from '../../lib/inspect.ts';
import { DELAY_EVENT_NAMES } from '../../machines/delay-names.ts';
import type { TransferContext, TransferEvent, TransferInput, TransferState } from '../../machines/transfer.ts';
import type { LinkRequest, Posting } from '../../net/messages.ts';
import { createTransferEngine, type Step, type TransferEffect } from './transfer-engine.ts';
import type { NewTransfer, TransferStore } from './transfer-store.ts';

/** Due transfers worked in one turn: a bounded batch, so a restore after an outage never stalls the loop. */
export const DUE_BATCH = 100;

/** One committed transition; `n` numbers it in the transfer's journal (REQUEST is 1). */
export type TransitionStep = { n: number; at: number; event: string; from: TransferState; to: TransferState; reason: string | null };

export type DurableTransfersDeps = {
  store: TransferStore;
  batch: GroupCommit;
  clock: Clock;
  /** Sends EXECUTE or QUERY toward the core. */
  send: (message: LinkRequest) => void;
  /** The last seq the history copy holds for an account, for the core to fill in what is missing. */
  knownSeq: (accountId: number) => number;
  /** Inside the settling commit: the sender's rows an outcome brought (read your writes). */
  applySenderRows: (rows: Posting[]) => void;
  /** S3: effects leave after their commit. Off, they leave before it. */
  storeBeforeSend: boolean;
  /** After the commit that settled a transfer. */
  onSettled: (transferId: string) => void;
  /** After the commit of every transition. */
  onTransition: (transferId: string, step: TransitionStep) => void;
  inspector?: TransferInspector;
};


/** The journal's name for an event: after-events by what they mean, outcomes with their source. */
export function journalEventName(event: AnyEventObject): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(event.type);
  if (after) return DELAY_EVENT_NAMES[after[1]!] ?? event.type;
  if ('via' in event && typeof event.via === 'string') return `${event.type} (${event.via})`;
  return event.type;
}

const isFinished = (state: TransferState) => state === 'succeeded' || state === 'failed';

export function createDurableTransfers(deps: DurableTransfersDeps) {
  const { store, batch, clock } = deps;
  const engine = createTransferEngine();
  let timer: { at: number; handle: TimerHandle } | null = null;
  let stopped = false;
  /** Transfers announced to the inspector in this life of the channel (INSPECT=1 only). */
  const announced = new Set<string>();

  function effectsOf(input: TransferContext, effects: TransferEffect[]): (() => void)[] {
    const out: (() => void)[] = [];
    for (const e of effects) {
      if (e.type === 'sendExecute') {
        out.push(() =>
          deps.send({
            type: 'execute',
            senderKnownSeq: deps.knownSeq(input.fromAccountId),
            request: { requestId: input.transferId, fromAccountId: input.fromAccountId, toAccountId: input.toAccountId, amountWon: input.amountWon, memo: input.memo, requestedAt: input.requestedAt },
          }),
        );
      } else if (e.type === 'sendQuery') {
        out.push(() => deps.send({ type: 'query', requestId: input.transferId, senderKnownSeq: deps.knownSeq(input.fromAccountId) }));
      }
    }
    return out;
  }

  /** In the step's commit: the sender's rows before its posting, then the posting itself, in order. */
  function applyInCommit(step: Step): void {
    const c = step.snapshot.context;
    for (const e of step.effects) {
      if (e.type !== 'applySenderPosting' || e.event.posting === null) continue;
      const posting = e.event.posting;
      assert(posting.accountId === c.fromAccountId && posting.transferId === c.transferId, 'the posting is the sender side of this transfer');
      const rows = [...(e.event.catchUp ?? []), posting];
      assert(rows.every((p, i) => p.accountId === c.fromAccountId && (i === 0 || p.seq === rows[i - 1]!.seq + 1)), "the catch-up is the sender's rows in order, up to its posting");
      deps.applySenderRows(rows);
    }
  }

  /**
   * Delivers one event to one transfer, as a unit of the open batch; its effects leave once
   * the batch has committed. Events for a settled or unknown transfer change nothing.
   */
  function deliver(id: string, event: AnyEventObject): void {
    // Looked at before the unit opens: the late outcomes of settled transfers (the log's copy of
    // an answer the link already gave) cost one read, not a batch of their own.
    const row = store.actor(id);
    if (row === undefined || isFinished(row.state)) return;
    const result = batch.run(() => {
      const snapshot = engine.restore(JSON.parse(row.snapshot));
      const previous = row.deadlineAt === null ? null : { at: row.deadlineAt, event: row.deadlineEvent! };
      const step = engine.step(snapshot, event, previous);
      const { deadline } = step;
      if (step.snapshot === snapshot) {
        // Nothing moved; a deadline that fired with nothing to do is used up.
        if (deadline === null && previous !== null) store.clearDeadline(id);
        return null;
      }
      applyInCommit(step);
      const c = step.snapshot.context;
      // The time the event carries (an outcome's settledAt is the same instant); after-events carry none.
      const at = typeof event.at === 'number' ? event.at : clock.now();
      const journal: TransitionStep = { n: row.journalLength + 1, at, event: journalEventName(event), from: row.state, to: step.state, reason: c.reason };
      const { n, reason: _reason, ...entry } = journal;
      store.transition(id, n, { ...entry, reason: c.reason, settledAt: c.settledAt, deadline, snapshot: engine.persist(step.snapshot) });
      return { step, journal, deadline, context: c };
    });
    if (result === null) return;
    const sends = effectsOf(result.context, result.step.effects);
    if (!deps.storeBeforeSend) sends.forEach((send) => send());
    batch.after(() => {
      if (stopped) return;
      if (deps.storeBeforeSend) sends.forEach((send) => send());
      announce(id, result.step.snapshot);
      deps.inspector?.snapshot(id, result.step.snapshot, event);
      deps.onTransition(id, result.journal);
      if (result.deadline !== null) armFor(result.deadline.at);
      if (isFinished(result.journal.to)) {
        announced.delete(id);
        deps.onSettled(id);
      }
    });
  }

  function announce(id: string, snapshot: unknown): void {
    if (deps.inspector === undefined || announced.has(id)) return;
    announced.add(id);
    deps.inspector.actor(id, snapshot);
  }

  /** Keeps the one timer armed for the earliest deadline. */
  function armFor(at: number): void {
    if (stopped || (timer !== null && timer.at <= at)) return;
    if (timer !== null) clock.clearTimeout(timer.handle);
    timer = { at, handle: clock.setTimeout(fire, Math.max(0, at - clock.now())) };
  }

  /** Works a bounded batch of due transfers, then re-arms: for the next batch at once, or the next deadline. */
  function fire(): void {
    timer = null;
    if (stopped) return;
    const due = store.due(clock.now(), DUE_BATCH);
    for (const [id, event] of due) deliver(id, { type: event, at: clock.now() });
    if (stopped) return;
    if (due.length === DUE_BATCH) {
      armFor(clock.now());
      return;
    }
    const next = store.earliestDeadline();
    if (next !== null) armFor(next);
  }

  return {
    /**
     * Stores a new transfer in `requested` (S3: stored before it is sent) as a unit of the open
     * batch; once that commits, DISPATCH sends it on its way. Throws what the insert throws
     * (the one-in-flight index, an Idempotency-Key taken), with nothing written.
     */
    begin(row: Omit<NewTransfer, 'snapshot' | 'deadline'>, input: TransferInput): void {
      const initial = engine.initial(input);
      // Due at once in the index: should the process die before DISPATCH, the restore sends it.
      batch.run(() => store.insert({ ...row, snapshot: engine.persist(initial.snapshot), deadline: { at: input.requestedAt, event: 'DISPATCH' } }));
      batch.after(() => {
        if (stopped) return;
        announce(row.id, initial.snapshot);
        deps.inspector?.snapshot(row.id, initial.snapshot, { type: 'xstate.init' });
        deps.onTransition(row.id, { n: 1, at: input.requestedAt, event: 'REQUEST', from: 'requested', to: 'requested', reason: null });
        deliver(row.id, { type: 'DISPATCH', at: clock.now() });
      });
    },
    /** An outcome from the link or the log. */
    send(id: string, event: TransferEvent): void {
      deliver(id, event);
    },
    /** After a start: one look at the deadline index arms the one timer; nothing is loaded or written. */
    resume(): void {
      const next = store.earliestDeadline();
      if (next !== null) armFor(next);
    },
    /** A crash: the timer goes; the rows stay as the last commit left them. */
    stop(): void {
      stopped = true;
      if (timer !== null) clock.clearTimeout(timer.handle);
      timer = null;
      announced.clear();
    },
  };
}

export type DurableTransfers = ReturnType<typeof createDurableTransfers>;
