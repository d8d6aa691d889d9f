/**
 * The simulator's one source of chance: a seeded stream (src/lib/ids.ts's mulberry32) that
 * decides every fault, delay, clock and customer, and also feeds the bank's ids and tokens.
 */
import { seededRandom, type RandomSource } from '../lib/ids.ts';
import { assert } from '../lib/assert.ts';

export class Prng implements RandomSource {
  private readonly source: RandomSource;

  constructor(seed: number) {
    assert(Number.isSafeInteger(seed) && seed >= 0, 'a seed is a non-negative integer');
    // Mix the high bits in so that seeds past 2^32 still differ.
    this.source = seededRandom((seed ^ Math.floor(seed / 4294967296) * 0x9e3779b1) >>> 0);
  }

  bytes(n: number): Uint8Array {
    return this.source.bytes(n);
  }

  /** A float in [0, 1) with 32 bits of chance. */
  next(): number {
    const b = this.source.bytes(4);
    return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) / 4294967296;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    assert(Number.isInteger(min) && Number.isInteger(max) && min <= max, 'int(min, max) takes an ordered pair of integers');
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'pick from a non-empty list');
    return items[this.int(0, items.length - 1)]!;
  }
}
