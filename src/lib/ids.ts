/**
 * Injected randomness: ids and tokens come from a RandomSource, so the simulator can
 * seed it and replay a run; production wires node:crypto.
 */
import { randomBytes } from 'node:crypto';

export interface RandomSource {
  /** `n` random bytes. */
  bytes(n: number): Uint8Array;
}

export const cryptoRandom: RandomSource = { bytes: (n) => new Uint8Array(randomBytes(n)) };

/** A seeded source (mulberry32): the same seed yields the same bytes, for tests and the simulator. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { bytes: (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256)) };
}

export function randomId(random: RandomSource, prefix: string): string {
  return `${prefix}_${Buffer.from(random.bytes(12)).toString('base64url')}`;
}

export function randomToken(random: RandomSource): string {
  return Buffer.from(random.bytes(32)).toString('base64url');
}
