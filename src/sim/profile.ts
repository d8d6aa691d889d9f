/**
 * What one seed draws before its run starts: the two clocks, which faults are switched on
 * and how often they strike, and the bank's size. Bounds live here, in one place.
 */
import type { BankSettings } from '../bank.ts';
import type { Prng } from './prng.ts';

/** The bank's timing in every simulated run. */
export const SIM_SETTINGS: Partial<BankSettings> = {
  cutoffMs: 60_000,
  responseTimeoutMs: 3_000,
  queryTimeoutMs: 3_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 30_000,
  cutoffMarginMs: 5_000,
  // The core accepts request times this far ahead of its own clock: wider than any skew drawn here.
  allowedSkewMs: 20_000,
  linkLatencyMs: 0,
};

export const BOUNDS = {
  /** The core's clock minus the channel's, at most this far apart (either way). */
  maxClockGapMs: 15_000,
  maxDriftPpm: 200,
  /** A message held back "late" arrives at most this long after it was sent. */
  maxLateDelayMs: 60_000 + 5_000 + 15_000 + 15_000,
  maxShortDelayMs: 6_000,
  maxLatencyMs: 40,
  maxCutMs: 20_000,
  maxPauseMs: 30_000,
  maxDowntimeMs: 5_000,
  maxRedeliverRecords: 300,
} as const;

export type FaultProfile = {
  dropP: number;
  duplicateP: number;
  shortDelayP: number;
  lateDelayP: number;
  /** Per execute/query request and answer: the sender crashes right after the commit before it. */
  commitCrashP: number;
  /** Per commit of either side: the side crashes after the commit returned, before any of its effects leave. */
  batchCrashP: number;
  /** Mean time between each kind of episode (0: never). */
  cutEveryMs: number;
  pauseEveryMs: number;
  redeliverEveryMs: number;
  crashEveryMs: number;
};

export type SimProfile = {
  channelSkewMs: number;
  channelDriftPpm: number;
  coreSkewMs: number;
  coreDriftPpm: number;
  customers: number;
  /** Mean virtual time between two customers' new transfers. */
  transferEveryMs: number;
  /** The event log wakes its consumer up to this long after an append (0: at once). */
  logWakeMaxMs: number;
  faults: FaultProfile;
};

/** Each fault is switched on for a seed with some chance, so seeds differ in kind, not only in luck. */
export function drawProfile(prng: Prng): SimProfile {
  const on = (p: number, value: number) => (prng.chance(p) ? value : 0);
  const channelSkewMs = prng.int(-2_000, 2_000);
  // A third of the seeds put the core's clock behind by more than the S5 margin (5 s).
  const gapMs = prng.chance(1 / 3) ? -prng.int(6_000, BOUNDS.maxClockGapMs) : prng.int(-5_000, 5_000);
  return {
    channelSkewMs,
    channelDriftPpm: prng.int(-BOUNDS.maxDriftPpm, BOUNDS.maxDriftPpm),
    coreSkewMs: channelSkewMs + gapMs,
    coreDriftPpm: prng.int(-BOUNDS.maxDriftPpm, BOUNDS.maxDriftPpm),
    customers: prng.int(4, 40),
    transferEveryMs: prng.int(100, 1_000),
    // Around the link's latency, so that the answer and the log each come first about as often.
    logWakeMaxMs: prng.pick([0, 2 * BOUNDS.maxLatencyMs, 5 * BOUNDS.maxLatencyMs]),
    faults: {
      dropP: on(0.6, prng.pick([0.01, 0.03, 0.08])),
      duplicateP: on(0.5, prng.pick([0.01, 0.05])),
      shortDelayP: on(0.5, prng.pick([0.02, 0.1])),
      lateDelayP: on(0.6, prng.pick([0.02, 0.05])),
      commitCrashP: on(0.4, prng.pick([0.002, 0.01])),
      cutEveryMs: on(0.4, prng.int(20_000, 120_000)),
      pauseEveryMs: on(0.5, prng.int(10_000, 60_000)),
      redeliverEveryMs: on(0.5, prng.int(10_000, 60_000)),
      crashEveryMs: on(0.5, prng.int(15_000, 90_000)),
      batchCrashP: on(0.4, prng.pick([0.001, 0.005])),
    },
  };
}
