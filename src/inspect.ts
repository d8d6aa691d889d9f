/**
 * INSPECT=1: hands every actor (each transfer, and the core's coreBanking actor) to Stately's
 * inspector from @statelyai/inspect, through XState's own `inspect` option. It needs internet,
 * so it is loaded only when asked for and is never on a test's path.
 */
import type { Inspect } from './lib/inspect.ts';

export async function loadSkyInspector(log: (line: string) => void): Promise<Inspect> {
  const { createSkyInspector } = await import('@statelyai/inspect');
  const inspector = createSkyInspector({ onerror: (error) => log(`inspector: ${error.message}`) });
  return inspector.inspect;
}
