/**
 * INSPECT=1: reports every transfer actor to a Stately inspector (createSkyInspector from
 * @statelyai/inspect, which needs internet). It listens to the channel's committed
 * transitions, so the inspector sees exactly what the journal records, restarts included.
 */
import type { Channel } from './channel/channel.ts';
import { transferMachine, type TransferState } from './machines/transfer.ts';

/** The part of @statelyai/inspect's Inspector used here; tests pass a recorder. */
export type InspectorSink = {
  actor(actorId: string, snapshot?: { value?: unknown; status?: 'active' | 'done' }, info?: { definition?: string }): void;
  event(actorId: string, event: { type: string }): void;
  snapshot(actorId: string, snapshot: { value?: unknown; status?: 'active' | 'done' }, info?: { event?: { type: string } }): void;
};

/** Actors announced and not yet settled; past this, the oldest are forgotten (and re-announced if they move). */
export const MAX_TRACKED_ACTORS = 10_000;

const isFinal = (s: TransferState) => s === 'succeeded' || s === 'failed';

export function connectInspector(channel: Pick<Channel, 'onTransition'>, inspector: InspectorSink): () => void {
  const definition = JSON.stringify(transferMachine.config);
  const announced = new Set<string>();
  return channel.onTransition((transferId, step) => {
    const actorId = `transfer:${transferId}`;
    if (!announced.has(actorId)) {
      // A new transfer starts in `requested`; one restored after a restart starts where it was.
      inspector.actor(actorId, { value: step.from, status: 'active' }, { definition });
      announced.add(actorId);
      if (announced.size > MAX_TRACKED_ACTORS) announced.delete(announced.values().next().value!);
    }
    if (step.event === 'REQUEST') return;
    const event = { type: step.event };
    inspector.event(actorId, event);
    inspector.snapshot(actorId, { value: step.to, status: isFinal(step.to) ? 'done' : 'active' }, { event });
    if (isFinal(step.to)) announced.delete(actorId);
  });
}

/** Loads @statelyai/inspect only when asked, and connects the channel to Stately's inspector. */
export async function connectSkyInspector(channel: Pick<Channel, 'onTransition'>, log: (line: string) => void): Promise<() => void> {
  const { createSkyInspector } = await import('@statelyai/inspect');
  const inspector = createSkyInspector({ onerror: (error) => log(`inspector: ${error.message}`) });
  return connectInspector(channel, inspector);
}
