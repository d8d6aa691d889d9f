/**
 * INSPECT=1: hands every actor (each transfer, and the core's coreBanking actor) to Stately's
 * inspector from @statelyai/inspect, through XState's own `inspect` option. It needs internet,
 * so it is loaded only when asked for and is never on a test's path.
 */
import type { Inspect, TransferInspector } from './lib/inspect.ts';

/** The live coreBanking actor goes through XState's inspect option; durable transfers through the inspector's actor() and snapshot(). */
export async function loadSkyInspector(log: (line: string) => void): Promise<{ inspect: Inspect; transfers: TransferInspector }> {
  const { createSkyInspector } = await import('@statelyai/inspect');
  const inspector = createSkyInspector({ onerror: (error) => log(`inspector: ${error.message}`) });
  const transfers: TransferInspector = {
    actor: (id, snapshot) => inspector.actor(id, snapshot as Parameters<typeof inspector.actor>[1]),
    snapshot: (id, snapshot, event) => inspector.snapshot(id, snapshot as Parameters<typeof inspector.snapshot>[1], { event }),
  };
  return { inspect: inspector.inspect, transfers };
}
