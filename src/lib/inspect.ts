/**
 * Actor inspection (XState's `inspect` option): what INSPECT=1 hands to every actor, so an
 * inspector such as Stately's sees the running machines. Off by default.
 */
import type { InspectionEvent, Observer } from 'xstate';

export type Inspect = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** Passes one inspection event on to an optional inspector, whichever form it takes. */
export function forwardInspection(inspect: Inspect | undefined, event: InspectionEvent): void {
  if (inspect === undefined) return;
  if (typeof inspect === 'function') inspect(event);
  else inspect.next?.(event);
}
