/**
 * Actor inspection (XState's `inspect` option): what INSPECT=1 hands to every actor, so an
 * inspector such as Stately's sees the running machines. Off by default.
 */
import type { AnyEventObject, InspectionEvent, Observer } from 'xstate';

export type Inspect = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** Passes one inspection event on to an optional inspector, whichever form it takes. */
export function forwardInspection(inspect: Inspect | undefined, event: InspectionEvent): void {
  if (inspect === undefined) return;
  if (typeof inspect === 'function') inspect(event);
  else inspect.next?.(event);
}

/**
 * What a durable transfer shows an inspector: it has no live actor, so its registration and
 * each committed snapshot are reported by id, as @statelyai/inspect's own actor() and
 * snapshot() calls take them.
 */
export type TransferInspector = {
  actor(id: string, snapshot: unknown): void;
  snapshot(id: string, snapshot: unknown, event: AnyEventObject): void;
};

/** The same reports as XState inspection events, for an observer that takes those (tests, the inspect option). */
export function transferInspectorFrom(inspect: Inspect): TransferInspector {
  const refOf = (id: string, snapshot: unknown) => ({ id, sessionId: id, getSnapshot: () => snapshot });
  return {
    actor(id, snapshot) {
      forwardInspection(inspect, { type: '@xstate.actor', actorRef: refOf(id, snapshot), rootId: id } as unknown as InspectionEvent);
    },
    snapshot(id, snapshot, event) {
      forwardInspection(inspect, { type: '@xstate.snapshot', actorRef: refOf(id, snapshot), rootId: id, snapshot, event } as unknown as InspectionEvent);
    },
  };
}
