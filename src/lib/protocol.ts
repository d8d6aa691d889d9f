/**
 * Safeguard switches: all on in production. Tests and the simulator switch one off at a
 * time to show the failure it prevents. Never reachable over HTTP.
 */
export type Safeguard = 'S3' | 'S4' | 'S5' | 'S6' | 'S8';
export type Protocol = Readonly<Record<Safeguard, boolean>>;

export const FULL_PROTOCOL: Protocol = { S3: true, S4: true, S5: true, S6: true, S8: true };

export function without(...off: Safeguard[]): Protocol {
  const p = { ...FULL_PROTOCOL };
  for (const s of off) p[s] = false;
  return p;
}
