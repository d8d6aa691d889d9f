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

/** base64url's 64 characters in ASCII order, so that a fixed-width number sorts as its text does. */
const SORTABLE = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
/** Characters of the time part: 8 x 6 bits = 48 bits of milliseconds, enough until the year 10889. */
const TIME_CHARS = 8;

/**
 * A random id that sorts by the time it was made: 48 bits of `nowMs` in a sortable alphabet,
 * then 96 random bits. Ids made one after another land next to each other in every index
 * keyed by them, so a batch of inserts dirties a few B-tree pages, not one random page each.
 */
export function timeOrderedId(random: RandomSource, nowMs: number, prefix: string): string {
  let time = '';
  let t = Math.max(0, Math.floor(nowMs));
  for (let i = 0; i < TIME_CHARS; i++) {
    time = SORTABLE[t % 64]! + time;
    t = Math.floor(t / 64);
  }
  return `${prefix}_${time}${Buffer.from(random.bytes(12)).toString('base64url')}`;
}

export function randomToken(random: RandomSource): string {
  return Buffer.from(random.bytes(32)).toString('base64url');
}
