/**
 * Injected time: every side of the bank reads `now()` and arms timers through a Clock,
 * so tests and the simulator can run the same code on virtual time, with skew per side.
 */
import { assert } from './assert.ts';

/** Drift beyond this is a broken oscillator, not a clock: the simulator stays far inside it. */
export const MAX_DRIFT_PPM = 100_000;

export type TimerHandle = { readonly id: number };

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * How long one pass over the "this turn" queue may run before it yields to I/O: it bounds the
 * event-loop stall, whatever keeps re-arming itself at delay 0 (a restore's due batches).
 */
export const TURN_BUDGET_MS = 10;

/**
 * Wall-clock time and Node's timers; the only clock src/main.ts wires. A delay of 0 means
 * "later in this turn": one setImmediate, after the I/O of this turn, drains a queue of such
 * callbacks, including ones they arm, in arming order, until it is empty or has run for
 * TURN_BUDGET_MS. That is what virtual time does with delay 0 (see `advance`), so a request
 * read in this turn goes through every hop and commit of the write path (channel, link, core,
 * log, channel again) in the same turn, each hop a pass of its own group commit, instead of
 * one loop iteration per hop.
 */
export function createSystemClock(): Clock {
  const timers = new Map<number, NodeJS.Timeout>();
  /** Callbacks at delay 0, in arming order; a cancelled one is removed from the map and skipped. */
  const soon = new Map<number, () => void>();
  let draining: NodeJS.Immediate | null = null;
  let nextId = 1;

  function drain(): void {
    const started = performance.now();
    try {
      // Map iteration visits entries added during the loop: what a callback arms runs in this pass too.
      for (const [id, fn] of soon) {
        soon.delete(id);
        fn();
        if (soon.size > 0 && performance.now() - started >= TURN_BUDGET_MS) break;
      }
    } finally {
      // `draining` stayed set through the pass, so nothing armed in it scheduled a pass of its
      // own; the rest (also after a throw, which goes on as an uncaught error) gets the next one.
      draining = soon.size > 0 ? setImmediate(drain) : null;
    }
  }

  return {
    now: () => Date.now(),
    setTimeout(fn, delayMs) {
      const id = nextId++;
      if (delayMs <= 0) {
        soon.set(id, fn);
        draining ??= setImmediate(drain);
      } else {
        timers.set(id, setTimeout(() => {
          timers.delete(id);
          fn();
        }, delayMs));
      }
      return { id };
    },
    clearTimeout(handle) {
      const t = timers.get(handle.id);
      if (t !== undefined) clearTimeout(t);
      timers.delete(handle.id);
      soon.delete(handle.id);
    },
  };
}

type Timer = { id: number; dueAt: number; fn: () => void };

/**
 * Virtual time: timers fire only when `advance` moves time past them, in due order,
 * ties broken by arming order, so a run replays exactly.
 */
export class VirtualTime {
  private current: number;
  private nextId = 1;
  private timers: Timer[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /**
   * A clock that reads this time shifted by `skewMs` (positive: ahead) and running fast by
   * `driftPpm` parts per million (negative: slow) from the moment it is made. Timers are
   * shared: a delay armed on a drifting clock fires when that clock has moved by the delay.
   */
  clock(skewMs = 0, driftPpm = 0): Clock {
    assert(Math.abs(driftPpm) <= MAX_DRIFT_PPM, `a clock drifts by at most ${MAX_DRIFT_PPM} ppm`);
    const origin = this.current;
    const rate = 1 + driftPpm / 1_000_000;
    if (driftPpm === 0) {
      return {
        now: () => this.current + skewMs,
        setTimeout: (fn, delayMs) => this.schedule(fn, delayMs),
        clearTimeout: (handle) => this.cancel(handle),
      };
    }
    return {
      // Whole milliseconds, never backwards: a drifting clock is still monotonic.
      now: () => origin + skewMs + Math.floor((this.current - origin) * rate),
      setTimeout: (fn, delayMs) => this.schedule(fn, Math.ceil(Math.max(0, delayMs) / rate)),
      clearTimeout: (handle) => this.cancel(handle),
    };
  }

  schedule(fn: () => void, delayMs: number): TimerHandle {
    const timer = { id: this.nextId++, dueAt: this.current + Math.max(0, delayMs), fn };
    // Keep the queue sorted by (dueAt, id): insertion after every timer due no later.
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1]!.dueAt > timer.dueAt) i--;
    this.timers.splice(i, 0, timer);
    return { id: timer.id };
  }

  cancel(handle: TimerHandle): void {
    const i = this.timers.findIndex((t) => t.id === handle.id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  pending(): number {
    return this.timers.length;
  }

  nextDueAt(): number | undefined {
    return this.timers[0]?.dueAt;
  }

  /** Moves time forward by `ms`, firing every timer due on the way (including ones armed meanwhile). */
  advance(ms: number): void {
    const target = this.current + Math.max(0, ms);
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.dueAt > target) break;
      this.timers.shift();
      this.current = Math.max(this.current, next.dueAt);
      next.fn();
    }
    this.current = target;
  }

  /** Moves time to the next timer and fires that one only; false when none is armed. */
  fireNext(): boolean {
    const next = this.timers.shift();
    if (next === undefined) return false;
    this.current = Math.max(this.current, next.dueAt);
    next.fn();
    return true;
  }

  /** Fires everything due now, without moving time. */
  runDue(): void {
    this.advance(0);
  }
}
