/**
 * One simulated run: a whole bank (the same createBank as src/main.ts, SQLite in a temp dir)
 * on virtual time, a seeded workload of customers, and faults of the network, the log,
 * the clocks and both processes. Faults stop, the bank settles, then every invariant is checked.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONSUMER_NAME } from '../channel/log-consumer.ts';
import { createBank, type Bank, type Side } from '../bank.ts';
import { VirtualTime } from '../lib/clock.ts';
import { InvariantError } from '../lib/assert.ts';
import type { Protocol } from '../lib/protocol.ts';
import { checkInvariants, checkOneInFlight, type Violation as InvariantViolation } from './invariants.ts';
import { SimNetwork, SimulatedCrash } from './network.ts';
import { Prng } from './prng.ts';
import { BOUNDS, SIM_SETTINGS, drawProfile, type SimProfile } from './profile.ts';
import { createWorkload, type Workload } from './workload.ts';

/** What a run found wrong: an invariant of DESIGN.md section 6, or a failed assertion in the bank. */
export type SimViolation = { check: string; detail: string };

export type SimOptions = {
  seed: number;
  transfers: number;
  protocol: Protocol;
  /** Receives the schedule and every transition, one line each (--trace). */
  trace?: (line: string) => void;
};

export type SimStats = {
  transfers: number;
  succeeded: number;
  failed: number;
  /** How succeeded transfers learned their outcome: the link's answer, the event log, or a query. */
  executedByResponse: number;
  executedByLog: number;
  executedByQuery: number;
  /** Sends of a payment after its first (after a timeout, a failure or a call that got no answer). */
  retries: number;
  /** Succeeded transfers a customer looked at while the sender's row was held back behind a hole (S8). */
  inFlightRefusals: number;
  replays: number;
  crashes: number;
  redeliveries: number;
  deposits: number;
  pagesRead: number;
  httpPages: number;
  virtualMs: number;
};

export const emptyStats = (): SimStats => ({
  transfers: 0, succeeded: 0, failed: 0, executedByResponse: 0, executedByLog: 0, executedByQuery: 0, retries: 0,
  inFlightRefusals: 0, replays: 0, crashes: 0, redeliveries: 0, deposits: 0, pagesRead: 0, httpPages: 0, virtualMs: 0,
});

export type SimResult = { seed: number; violations: SimViolation[]; stats: SimStats; profile: SimProfile };

const START_MS = Date.UTC(2026, 0, 1);

/**
 * Everything after the last fault that may still be moving: the latest late message, a
 * query held back until the cutoff has passed (S5 without the fence), a lost query's
 * backoff and the side that was down. Past this the bank must be quiet.
 */
export const SETTLE_BOUND_MS =
  BOUNDS.maxLateDelayMs + SIM_SETTINGS.cutoffMs! + SIM_SETTINGS.cutoffMarginMs! + SIM_SETTINGS.responseTimeoutMs! +
  2 * SIM_SETTINGS.queryTimeoutMs! + SIM_SETTINGS.backoffMaxMs! + BOUNDS.maxDowntimeMs;

/** No workload of this many transfers takes longer than this each (customers give up long before). */
const WORKLOAD_MS_PER_TRANSFER_MAX = 20_000;

const tempRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

const fromInvariant = (v: InvariantViolation): SimViolation => ({ check: `invariant ${v.invariant} (${v.name})`, detail: v.detail });

export async function runSeed(options: SimOptions): Promise<SimResult> {
  const trace = options.trace ?? (() => {});
  const prng = new Prng(options.seed);
  const profile = drawProfile(prng);
  const time = new VirtualTime(START_MS);
  const stamp = (line: string) => trace(`${String(time.now() - START_MS).padStart(9, ' ')}ms ${line}`);
  stamp(`seed ${options.seed}: ${JSON.stringify(profile)}`);
  const network = new SimNetwork(prng, profile.faults, stamp);
  const dataDir = mkdtempSync(join(tempRoot, 'scrollbank-sim-'));
  const bank = createBank({
    dataDir,
    coreClock: time.clock(profile.coreSkewMs, profile.coreDriftPpm),
    channelClock: time.clock(profile.channelSkewMs, profile.channelDriftPpm),
    random: prng,
    protocol: options.protocol,
    settings: SIM_SETTINGS,
    synchronous: 'OFF', // the 'disk' survives every simulated crash; power cuts are not simulated
    network,
    onCommitted: (side) => network.afterCommit(side),
    // The consumer wakes a little after an append, so the log and the link's answer race.
    logWakeDelayMs: () => prng.int(0, profile.logWakeMaxMs),
  });
  const run = new Run(bank, time, prng, profile, network, stamp);
  try {
    return { seed: options.seed, violations: await run.execute(options.transfers), stats: run.stats, profile };
  } finally {
    await run.flush();
    bank.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

class Run {
  readonly stats: SimStats = emptyStats();
  private readonly violations: SimViolation[] = [];
  private readonly seen = new Set<string>();
  private faultsOn = true;
  private readonly down = new Set<Side>();
  private workload: Workload | null = null;
  /** A redelivery that waits for the channel to come back from its crash. */
  private seekOnStart: number | null = null;

  constructor(
    readonly bank: Bank,
    readonly time: VirtualTime,
    readonly prng: Prng,
    readonly profile: SimProfile,
    private readonly network: SimNetwork,
    readonly trace: (line: string) => void,
  ) {}

  async execute(transfers: number): Promise<SimViolation[]> {
    this.bank.channel.onTransition((id, s) => this.trace(`channel ${id} ${s.from} -> ${s.to} (${s.event})`));
    this.guard(() => this.bank.start());
    const workload = createWorkload(this, transfers);
    this.workload = workload;
    this.armFaults();
    // The workload runs until its last customer is done with their last payment. A broken
    // invariant does not stop it (what an ablation breaks first is rarely all it breaks);
    // a failed assertion does, since the bank is then in a state nothing can reason about.
    const giveUpAt = this.time.now() + transfers * WORKLOAD_MS_PER_TRANSFER_MAX;
    while (!workload.done() && !this.asserted()) {
      if (this.time.now() > giveUpAt) {
        this.report('workload', `customers still busy after ${transfers * WORKLOAD_MS_PER_TRANSFER_MAX} ms: a customer or scroll that never ends`);
        break;
      }
      this.advance(1_000);
      await workload.flush();
    }
    this.stopFaults();
    this.advance(SETTLE_BOUND_MS);
    this.stats.virtualMs = this.time.now() - START_MS;
    if (this.asserted()) return this.violations;
    this.checkAtEnd();
    return this.violations;
  }

  private asserted(): boolean {
    return this.violations.some((v) => v.check === 'assertion');
  }

  /** Lets the HTTP calls still in flight finish before the bank closes. */
  async flush(): Promise<void> {
    await this.workload?.flush();
  }

  /** Moves virtual time forward; a simulated crash thrown on the way restarts its side. */
  advance(ms: number): void {
    const target = this.time.now() + ms;
    for (let guardRounds = 0; ; guardRounds++) {
      if (this.guard(() => this.time.advance(target - this.time.now()))) return;
      if (guardRounds > 10_000) throw new Error('a crash loop: the bank crashes every time it starts');
    }
  }

  /** Runs `body`; a simulated crash takes its side down, any other error is a bug found. True if nothing was thrown. */
  guard(body: () => void): boolean {
    try {
      body();
      return true;
    } catch (error) {
      if (error instanceof SimulatedCrash) {
        this.crash(error.side, error.where, 0);
        return false;
      }
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.report('assertion', `${message}${error instanceof InvariantError ? '' : ` ${String((error as Error).stack ?? '').split('\n')[1]?.trim() ?? ''}`}`);
      return false;
    }
  }

  report(check: string, detail: string): void {
    const key = `${check}|${detail}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.trace(`VIOLATION ${check}: ${detail}`);
    this.violations.push({ check, detail });
  }

  isUp(side: Side): boolean {
    return !this.down.has(side) && (side === 'core' ? this.bank.core.running : this.bank.channel.running);
  }

  /** A process crash that keeps the disk; the side comes back after `downtimeMs`. */
  crash(side: Side, why: string, downtimeMs: number): void {
    this.stats.crashes++;
    this.trace(`crash ${side} (${why}), back in ${downtimeMs}ms`);
    this.down.add(side);
    (side === 'core' ? this.bank.core : this.bank.channel).stop();
    this.time.schedule(() => this.recover(side), downtimeMs);
  }

  private recover(side: Side): void {
    if (!this.down.has(side)) return;
    this.down.delete(side);
    this.trace(`start ${side}`);
    // A crash during recovery is thrown from here and handled like any other.
    (side === 'core' ? this.bank.core : this.bank.channel).start();
    if (side === 'channel' && this.seekOnStart !== null) {
      const offset = this.seekOnStart;
      this.seekOnStart = null;
      this.trace(`log redelivery: the restarted consumer is handed offset ${offset}`);
      this.bank.channel.redeliverFrom(offset);
    }
  }

  /** Checks that hold at every moment, not only once quiet. */
  checkNow(): void {
    if (!this.isUp('channel')) return;
    for (const v of checkOneInFlight(this.bank)) this.report(`invariant ${v.invariant} (${v.name})`, v.detail);
  }

  private every(meanMs: number, name: string, act: () => void): void {
    if (meanMs === 0) return;
    const next = () => {
      if (!this.faultsOn) return;
      this.guard(act);
      this.time.schedule(next, this.prng.int(Math.floor(meanMs / 2), Math.floor((meanMs * 3) / 2)));
    };
    this.trace(`fault ${name} every ~${meanMs}ms`);
    this.time.schedule(next, this.prng.int(0, meanMs));
  }

  private armFaults(): void {
    const f = this.profile.faults;
    this.every(f.cutEveryMs, 'link cut', () => {
      if (this.network.cut) return;
      const ms = this.prng.int(1_000, BOUNDS.maxCutMs);
      this.trace(`link cut for ${ms}ms`);
      this.network.cut = true;
      this.time.schedule(() => {
        this.network.cut = false;
        this.trace('link restored');
      }, ms);
    });
    this.every(f.pauseEveryMs, 'log pause', () => {
      if (this.bank.log.paused) return;
      const ms = this.prng.int(1_000, BOUNDS.maxPauseMs);
      this.trace(`log paused for ${ms}ms`);
      this.bank.log.pause();
      this.time.schedule(() => {
        this.trace('log resumed');
        this.bank.log.resume();
      }, ms);
    });
    this.every(f.redeliverEveryMs, 'log redelivery', () => this.redeliver(this.prng.int(1, BOUNDS.maxRedeliverRecords)));
    this.every(f.crashEveryMs, 'crash', () => {
      const side = this.prng.pick(['channel', 'core'] as const);
      if (this.isUp(side)) this.crash(side, 'at a random moment', this.prng.int(0, BOUNDS.maxDowntimeMs));
    });
  }

  /**
   * The consumer goes back `records` offsets, as after a rebalance: everything after is
   * delivered again. Mostly while it runs (seek); sometimes the channel crashes and the
   * restarted consumer is handed the older offset.
   */
  private redeliver(records: number): void {
    if (!this.isUp('channel')) return;
    this.stats.redeliveries++;
    const next = this.bank.channel.readModel().consumerOffset(CONSUMER_NAME);
    const to = Math.max(1, next - records);
    if (this.prng.chance(0.25)) {
      this.seekOnStart = to;
      this.crash('channel', `a rebalance: the consumer will restart from offset ${to}, not ${next}`, this.prng.int(0, BOUNDS.maxDowntimeMs));
      return;
    }
    this.trace(`log redelivery: consumer back from offset ${next} to ${to}`);
    this.bank.channel.redeliverFrom(to);
  }

  private stopFaults(): void {
    this.trace('faults stop');
    this.faultsOn = false;
    this.network.calm = true;
    this.network.cut = false;
    this.bank.log.resume();
    for (const side of [...this.down]) this.guard(() => this.recover(side));
  }

  private checkAtEnd(): void {
    for (const side of ['core', 'channel'] as const) {
      if (!this.isUp(side)) this.report('invariant 4 (liveness)', `the ${side} is still down after the settle bound`);
    }
    if (!this.isUp('core') || !this.isUp('channel')) return;
    for (const v of checkInvariants(this.bank, [1, 2, 3, 4, 5, 6, 7])) this.report(fromInvariant(v).check, v.detail);
    const channel = this.bank.channel.readModel();
    for (const account of channel.allAccounts()) {
      const holder = channel.inFlightFrom(account.id);
      if (holder !== undefined) this.report('invariant 4 (liveness)', `account ${account.id} is still locked by transfer ${holder}`);
    }
    this.workload?.checkAtEnd();
    for (const t of channel.allTransfers()) {
      if (t.state === 'failed') this.stats.failed++;
      if (t.state !== 'succeeded') continue;
      this.stats.succeeded++;
      const how = channel.journalOf(t.id).at(-1)?.event;
      if (how === 'EXECUTED (response)') this.stats.executedByResponse++;
      else if (how === 'EXECUTED (log)') this.stats.executedByLog++;
      else if (how === 'EXECUTED (query)') this.stats.executedByQuery++;
    }
  }
}

export type SimRun = Run;
