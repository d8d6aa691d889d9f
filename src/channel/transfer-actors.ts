/**
 * The live transfer actors: one XState actor per unfinished transfer. Every transition is
 * committed (state columns, snapshot, one journal row) before its effects go out (S3);
 * finished actors are stopped and released.
 */
import { createActor, type Actor, type AnyEventObject, type SnapshotFrom } from 'xstate';
import { forwardInspection, type Inspect } from '../lib/inspect.ts';
import { transferMachine, type TransferEvent, type TransferInput, type TransferState } from '../machines/transfer.ts';
import type { Clock } from '../lib/clock.ts';
import { assert } from '../lib/assert.ts';
import type { Link } from '../net/link.ts';
import type { Posting } from '../net/messages.ts';
import type { ChannelStore } from './channel-store.ts';

type TransferActor = Actor<typeof transferMachine>;
type TransferSnapshot = SnapshotFrom<typeof transferMachine>;

type Entry = {
  actor: TransferActor;
  state: TransferState;
  /** Writes that belong to the commit of the current transition. */
  inCommit: (() => void)[];
  /** Effects that may only go out once the current transition is committed. */
  afterCommit: (() => void)[];
};

export type TransferActorsDeps = {
  store: ChannelStore;
  clock: Clock;
  link: Link;
  /** S3: commit before the effect goes out. Off, the effect goes out first. */
  storeBeforeSend: boolean;
  onSettled: (transferId: string) => void;
  onTransition?: (transferId: string, journal: { at: number; event: string; from: TransferState; to: TransferState }) => void;
  /** An inspector to see every actor (INSPECT=1); it sees each transition after it is committed. */
  inspect?: Inspect;
  /** Applies the sender's posting to history inside the settling transaction (read your writes). */
  applyPosting: (posting: Posting) => void;
};

const DELAY_EVENTS: Record<string, string> = {
  untilResponseDeadline: 'RESPONSE_TIMEOUT',
  untilNextQuery: 'QUERY_DUE',
  untilQueryDeadline: 'QUERY_TIMEOUT',
};

/** The journal's name for an event: after-events by what they mean, outcomes with their source. */
export function journalEventName(event: AnyEventObject): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(event.type);
  if (after) return DELAY_EVENTS[after[1]!] ?? event.type;
  if ('via' in event && typeof event.via === 'string') return `${event.type} (${event.via})`;
  return event.type;
}

function isFinished(state: TransferState): boolean {
  return state === 'succeeded' || state === 'failed';
}

function nextDeadlineOf(snapshot: TransferSnapshot): number | null {
  const c = snapshot.context;
  switch (snapshot.value as TransferState) {
    case 'sent':
      return c.responseDeadlineAt;
    case 'timedOut':
      return c.policy.queryAfterTimeout ? c.nextQueryAt : null;
    case 'querying':
      return c.queryDeadlineAt;
    default:
      return null;
  }
}

export function createTransferActors(deps: TransferActorsDeps) {
  const live = new Map<string, Entry>();

  const machine = transferMachine.provide({
    actions: {
      sendExecute: ({ context: c }) => {
        entryOf(c.transferId).afterCommit.push(() =>
          deps.link.request({
            type: 'execute',
            senderKnownSeq: senderKnownSeq(c.fromAccountId),
            request: {
              requestId: c.transferId,
              fromAccountId: c.fromAccountId,
              toAccountId: c.toAccountId,
              amountWon: c.amountWon,
              memo: c.memo,
              requestedAt: c.requestedAt,
            },
          }),
        );
      },
      sendQuery: ({ context: c }) => {
        entryOf(c.transferId).afterCommit.push(() => deps.link.request({ type: 'query', requestId: c.transferId, senderKnownSeq: senderKnownSeq(c.fromAccountId) }));
      },
      applySenderPosting: ({ context: c, event }) => {
        if (event.type !== 'EXECUTED' || event.posting === null) return;
        const posting = event.posting;
        assert(posting.accountId === c.fromAccountId && posting.transferId === c.transferId, 'the posting is the sender side of this transfer');
        const rows = [...(event.catchUp ?? []), posting];
        assert(rows.every((p, i) => p.accountId === c.fromAccountId && (i === 0 || p.seq === rows[i - 1]!.seq + 1)), "the catch-up is the sender's rows in order, up to its posting");
        // In order, in the settling commit: the rows the copy lacked close the hole, then the
        // transfer's own row lands, so the sender's history shows it at once (read your writes).
        entryOf(c.transferId).inCommit.push(() => rows.forEach((p) => deps.applyPosting(p)));
      },
    },
  });

  /** The last seq the copy holds for the sender's account, for the core to fill in what is missing. */
  function senderKnownSeq(accountId: number): number {
    return deps.store.account(accountId)?.lastSeq ?? 0;
  }

  function entryOf(id: string): Entry {
    const e = live.get(id);
    assert(e !== undefined, `transfer ${id} has a live actor`);
    return e;
  }

  function commit(id: string, entry: Entry, event: AnyEventObject, snapshot: TransferSnapshot): void {
    const to = snapshot.value as TransferState;
    const c = snapshot.context;
    // The time the event carries (an outcome's settledAt is the same instant); after-events carry none.
    const at = typeof event.at === 'number' ? event.at : deps.clock.now();
    const name = journalEventName(event);
    deps.store.db.transaction(() => {
      deps.store.updateTransfer(id, to, c.reason, c.settledAt, nextDeadlineOf(snapshot), JSON.stringify(entry.actor.getPersistedSnapshot()));
      deps.store.appendJournal(id, at, name, entry.state, to);
      for (const write of entry.inCommit) write();
    })();
    deps.onTransition?.(id, { at, event: name, from: entry.state, to });
  }

  /** Runs after every macrostep of a transfer actor: commit, then effects, then release if finished. */
  function onStep(id: string, event: AnyEventObject, snapshot: TransferSnapshot): void {
    const entry = live.get(id);
    if (entry === undefined || event.type === 'xstate.init') return;
    const changed = snapshot.value !== entry.state || entry.inCommit.length > 0 || entry.afterCommit.length > 0 || event.type === 'RESUME';
    const effects = entry.afterCommit;
    entry.afterCommit = [];
    try {
      if (!deps.storeBeforeSend) effects.forEach((send) => send());
      if (changed) commit(id, entry, event, snapshot);
      if (deps.storeBeforeSend) effects.forEach((send) => send());
    } catch (error) {
      // The transition never became durable: behave like a crash of this actor. Its last
      // committed snapshot carries on after the next restart.
      live.delete(id);
      entry.actor.stop();
      throw error;
    } finally {
      entry.inCommit = [];
    }
    entry.state = snapshot.value as TransferState;
    if (isFinished(entry.state)) {
      live.delete(id);
      entry.actor.stop();
      deps.onSettled(id);
    }
  }

  function spawn(id: string, options: { input: TransferInput } | { snapshot: unknown }): Entry {
    assert(!live.has(id), `transfer ${id} has one actor`);
    let entry: Entry | undefined;
    const actor: TransferActor = createActor(machine, {
      ...options,
      id,
      clock: deps.clock,
      inspect: (ie) => {
        if (ie.type === '@xstate.snapshot' && ie.actorRef === actor && entry !== undefined) {
          onStep(id, ie.event, ie.snapshot as TransferSnapshot);
        }
        forwardInspection(deps.inspect, ie);
      },
    } as Parameters<typeof createActor<typeof machine>>[1]);
    entry = { actor, state: actor.getSnapshot().value as TransferState, inCommit: [], afterCommit: [] };
    live.set(id, entry);
    return entry;
  }

  return {
    /** The persisted snapshot a new transfer starts from, to store with its row. */
    initialSnapshot(input: TransferInput): string {
      return JSON.stringify(createActor(machine, { input }).getPersistedSnapshot());
    },
    /** Starts the actor of a transfer whose `requested` row is committed, and sends it on its way. */
    begin(id: string, input: TransferInput): void {
      const entry = spawn(id, { input });
      entry.actor.start();
      entry.actor.send({ type: 'DISPATCH', at: deps.clock.now() });
    },
    /** Restores an unfinished transfer from its committed snapshot; it carries on with its deadlines. */
    restore(id: string, snapshotJson: string): void {
      const entry = spawn(id, { snapshot: JSON.parse(snapshotJson) });
      entry.actor.start();
      entry.actor.send({ type: 'RESUME', at: deps.clock.now() });
    },
    /** Delivers an outcome to a live transfer; false when no actor is live for it. */
    send(id: string, event: TransferEvent): boolean {
      const entry = live.get(id);
      if (entry === undefined) return false;
      entry.actor.send(event);
      return true;
    },
    isLive: (id: string) => live.has(id),
    liveCount: () => live.size,
    /** Stops every actor without committing anything: what a crash does to memory. */
    stopAll(): void {
      for (const e of live.values()) e.actor.stop();
      live.clear();
    },
  };
}

export type TransferActors = ReturnType<typeof createTransferActors>;
