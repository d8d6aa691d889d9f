/**
 * Wires one bank from its parts: the core, the channel, the link and the event log between
 * them, and the fault queue. src/main.ts, the tests and the simulator all build through here.
 */
import { join } from 'node:path';
import { createCoreBanking, type CoreBanking, type CoreLog } from './core/core-banking.ts';
import { silentLogger, type Logger } from './lib/logger.ts';
import { createCoreThread } from './core/core-thread.ts';
import { createChannel } from './channel/channel.ts';
import type { Clock } from './lib/clock.ts';
import type { Inspect, TransferInspector } from './lib/inspect.ts';
import type { RandomSource } from './lib/ids.ts';
import { FULL_PROTOCOL, type Protocol } from './lib/protocol.ts';
import { openDatabase, type DbName, type Synchronous } from './lib/sqlite.ts';
import type { ReconcileReport } from './channel/reconciler.ts';
import { createEventLog, type EventLog } from './net/event-log.ts';
import { FaultQueue } from './net/faults.ts';
import { createLink, type Link, type LinkFate, type LinkOptions, type LinkPipe, type NetworkPolicy } from './net/link.ts';
import type { RemoteCoreOps } from './net/nats-link.ts';
import type { DepositInput } from './core/core-banking.ts';
import type { Posting } from './net/messages.ts';

export type BankSettings = {
  cutoffMs: number;
  responseTimeoutMs: number;
  maxAmountWon: number;
  /** How far ahead of the core's clock a request time may be. */
  allowedSkewMs: number;
  /** Added to the cutoff before querying when the fence (S6) is off, and before pruning. */
  cutoffMarginMs: number;
  queryTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  linkLatencyMs: number;
  /** How often the channel reconciles its copy with the core (S8); 0: only on demand. */
  reconcileIntervalMs: number;
};

export const DEFAULT_SETTINGS: BankSettings = {
  cutoffMs: 60_000,
  responseTimeoutMs: 3_000,
  maxAmountWon: 1_000_000_000,
  allowedSkewMs: 5_000,
  cutoffMarginMs: 5_000,
  queryTimeoutMs: 3_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 30_000,
  linkLatencyMs: 0,
  reconcileIntervalMs: 60_000,
};

export type BankDeps = {
  dataDir: string;
  /** Each side reads its own clock; the pipes run on the channel's. */
  coreClock: Clock;
  channelClock: Clock;
  random: RandomSource;
  protocol?: Protocol;
  settings?: Partial<BankSettings>;
  synchronous?: Synchronous;
  /** An inspector handed to every actor (INSPECT=1); none by default. */
  inspect?: Inspect;
  /** The inspector's own API for transfers, which have no live actor; made from `inspect` when absent. */
  transferInspector?: TransferInspector;
  /** After each commit of a side, before its effects leave: the simulator crashes the side from here. */
  onCommitted?: (side: Side) => void;
  /** The wall-clock time of each core commit (bench:transfers' sync lag); from the core's thread, reported after the fact. */
  onCoreCommitted?: (atMs: number) => void;
  /** Restarts of either side, the core's refusals, reconciliation reports and gap repairs; silent unless given. */
  logger?: Logger;
  /** What the metrics (src/server/metrics.ts) see of the bank's insides; nothing unless given. */
  observer?: BankObserver;
  /** The simulator's network between the sides; none in production (see src/net/link.ts). */
  network?: NetworkPolicy;
  /** The simulator's lag between an append to the event log and the consumer's wake-up; none in production. */
  logWakeDelayMs?: () => number;
  /**
   * The core on a worker thread of its own (src/core/core-thread.ts), as src/main.ts and the
   * benchmarks run it; the simulator and the tests keep it on theirs. Needs the system clock on
   * both sides, and takes neither an inspector nor onCommitted for the core (onCoreCommitted reports).
   */
  coreThread?: boolean;
  /**
   * The event log, when it is not the embedded one in log.db: made here with the bank's clock
   * and fault queue (src/net/jetstream-log.ts). Its owner closes it after the bank.
   */
  eventLog?: (parts: { clock: Clock; faults: FaultQueue; onAppendTimed?: (durationMs: number) => void }) => EventLog;
  /**
   * The split mode's channel (npm run start:channel): the core is another process, reached over
   * NATS. `link` makes the channel's end of the link with the bank's faults; `remoteCore` takes
   * the operator's calls. Neither core.db nor a core thread is opened here.
   */
  split?: { link: (options: LinkOptions) => Link; remoteCore: RemoteCoreOps };
};

/** The core is in another process (the split mode): the operator's calls go through `bank.ops`. */
export class CoreElsewhere extends Error {
  override name = 'CoreElsewhere';
}

/** What the bank, the admin routes and the checks use of the core, on this thread or its own. */
export type CoreSide = Pick<CoreBanking, 'start' | 'stop' | 'commitCount' | 'durable' | 'running' | 'openAccount' | 'deposit' | 'readModel'>;

export type Side = 'channel' | 'core';

/** Hooks for the metrics, called on the channel's thread. */
export type BankObserver = {
  commitTimed?(db: DbName, durationMs: number): void;
  /** The wall-clock time of each core commit (the metrics' history lag counts from it). */
  coreCommitted?(atMs: number): void;
  linkMessage?(pipe: LinkPipe, type: string, fate: LinkFate): void;
  repaired?(accountId: number, rows: number): void;
  reconciled?(report: ReconcileReport): void;
};

export function createBank(deps: BankDeps) {
  const settings = { ...DEFAULT_SETTINGS, ...deps.settings };
  const logger = deps.logger ?? silentLogger;
  const coreLine: CoreLog = (level, fields, message) => logger[level]({ side: 'core', ...fields }, message);
  const protocol = deps.protocol ?? FULL_PROTOCOL;
  const faults = new FaultQueue();
  const clock = deps.channelClock;
  const observer = deps.observer;
  // Each core commit's time, for the benchmark and the metrics alike.
  const coreCommitted =
    deps.onCoreCommitted === undefined && observer?.coreCommitted === undefined
      ? undefined
      : (atMs: number) => {
          deps.onCoreCommitted?.(atMs);
          observer?.coreCommitted?.(atMs);
        };
  const timed = (db: DbName) => (observer?.commitTimed === undefined ? undefined : (ms: number) => observer.commitTimed!(db, ms));
  const logDb = deps.eventLog === undefined ? openDatabase(join(deps.dataDir, 'log.db'), 'log', deps.synchronous) : null;
  const log: EventLog =
    logDb === null
      ? deps.eventLog!({ clock, faults, onAppendTimed: timed('log') })
      : createEventLog(logDb, clock, faults, { wakeDelayMs: deps.logWakeDelayMs, onAppendTimed: timed('log') });
  const linkOptions: LinkOptions = { clock, faults, latencyMs: settings.linkLatencyMs, network: deps.network, onCarried: observer?.linkMessage };
  const link = deps.split === undefined ? createLink(linkOptions) : deps.split.link(linkOptions);
  const rules = coreRules(settings, protocol);
  const thread = deps.coreThread && deps.split === undefined
    ? createCoreThread({ dbPath: join(deps.dataDir, 'core.db'), link, log, rules, pruneMarginMs: settings.cutoffMarginMs, synchronous: deps.synchronous, onCommitted: coreCommitted, logLine: coreLine, onCommitTimed: timed('core') })
    : null;
  const core: CoreSide =
    thread ??
    (deps.split !== undefined ? coreElsewhere() : createCoreBanking({
      dbPath: join(deps.dataDir, 'core.db'),
      clock: deps.coreClock,
      link,
      log,
      rules,
      pruneMarginMs: settings.cutoffMarginMs,
      inspect: deps.inspect,
      synchronous: deps.synchronous,
      logLine: coreLine,
      onCommitTimed: timed('core'),
      onCommitted:
        deps.onCommitted || coreCommitted
          ? () => {
              coreCommitted?.(deps.coreClock.now());
              deps.onCommitted?.('core');
            }
          : undefined,
    }));
  const channel = createChannel({
    dbPath: join(deps.dataDir, 'channel.db'),
    clock,
    random: deps.random,
    link,
    log,
    protocol,
    timing: {
      responseTimeoutMs: settings.responseTimeoutMs,
      queryTimeoutMs: settings.queryTimeoutMs,
      backoffBaseMs: settings.backoffBaseMs,
      backoffMaxMs: settings.backoffMaxMs,
      cutoffMs: settings.cutoffMs,
      cutoffMarginMs: settings.cutoffMarginMs,
      reconcileIntervalMs: settings.reconcileIntervalMs,
    },
    inspect: deps.inspect,
    transferInspector: deps.transferInspector,
    synchronous: deps.synchronous,
    logger,
    observer: observer && { repaired: observer.repaired?.bind(observer), reconciled: observer.reconciled?.bind(observer), commitTimed: timed('channel') },
    onCommitted: deps.onCommitted && (() => deps.onCommitted!('channel')),
  });

  const remote = deps.split?.remoteCore;
  /**
   * The operator's calls (the admin routes, the demo customers): the same whether the core is
   * here or in another process, where each resolves once the core's change is durable there.
   */
  const ops = {
    async openCustomer(name: string, openingBalanceWon: number): Promise<{ customerId: number; token: string; accountId: number }> {
      if (remote === undefined) return openCustomer(name, openingBalanceWon);
      // The core's account first: a channel that crashes after it leaves an account no customer
      // holds yet, which reconciliation finds; the other order could leave a customer with none.
      const { accountId } = await remote.openAccount(name, openingBalanceWon);
      const { customer, token } = channel.createCustomer(name);
      channel.registerAccount(customer.id, accountId);
      return { customerId: customer.id, token, accountId };
    },
    async openAccount(customerId: number, holderName: string, openingBalanceWon: number): Promise<{ accountId: number; balanceWon: number }> {
      if (remote === undefined) return openAccount(customerId, holderName, openingBalanceWon);
      const account = await remote.openAccount(holderName, openingBalanceWon);
      channel.registerAccount(customerId, account.accountId);
      return account;
    },
    async deposit(input: DepositInput): Promise<Posting | 'unknown-account'> {
      return remote === undefined ? core.deposit(input) : remote.deposit(input);
    },
    async restart(side: Side): Promise<void> {
      if (side === 'core' && remote !== undefined) {
        logger.info({ side }, 'restarting the core (another process): stop, close, reopen, restore');
        await remote.restart();
        logger.info({ side }, 'the core is back');
        return;
      }
      restart(side);
    },
  };

  /** A process crash of one side that keeps its disk: stop, close, reopen, restore. */
  function restart(side: Side): void {
    const s = side === 'core' ? core : channel;
    logger.info({ side }, `restarting the ${side}: stop, close, reopen, restore`);
    s.stop();
    s.start();
    logger.info({ side, unfinishedTransfers: channel.running ? channel.unfinishedCount() : null }, `the ${side} is back`);
  }

  /**
   * Opens a customer: the core opens the account, the channel the customer who holds it.
   * The one wiring of this step, for the admin routes, src/main.ts, the simulator and tests.
   */
  function openCustomer(name: string, openingBalanceWon: number): { customerId: number; token: string; accountId: number } {
    const { customer, token } = channel.createCustomer(name);
    const { accountId } = core.openAccount(name, openingBalanceWon);
    channel.registerAccount(customer.id, accountId);
    return { customerId: customer.id, token, accountId };
  }

  /** Another account for a customer the channel knows. */
  function openAccount(customerId: number, holderName: string, openingBalanceWon: number): { accountId: number; balanceWon: number } {
    const account = core.openAccount(holderName, openingBalanceWon);
    channel.registerAccount(customerId, account.accountId);
    return account;
  }

  return {
    /** Where the databases and the server's secrets live. */
    dataDir: deps.dataDir,
    random: deps.random,
    settings,
    protocol,
    faults,
    link,
    log,
    core,
    channel,
    /** Resolves once the core's thread has loaded (at once with the core on this thread): await it before `start`. */
    ready(): Promise<void> {
      return thread === null ? Promise.resolve() : thread.ready();
    },
    start(): void {
      core.start();
      channel.start();
    },
    /** A process crash of one side that keeps its disk (the core here, on this process's thread or its own). */
    restart,
    openCustomer,
    openAccount,
    /** The operator's calls, wherever the core is. */
    ops,
    /** The core is another process (the split mode). */
    split: deps.split !== undefined,
    /** Resolves once both sides' writes so far are durable (an answer may leave); rejects if a side crashed first. */
    durable(): Promise<void> {
      return Promise.all([channel.durable(), core.durable()]).then(() => undefined);
    },
    /** Commits of all three databases since this bank was made. */
    commitCount(): number {
      return channel.commitCount() + core.commitCount() + log.commits;
    },
    close(): void {
      channel.stop();
      if (thread !== null) thread.close();
      else core.stop();
      logDb?.close();
    },
  };
}

/** The core's rules from the bank's settings: one place for this process's core and the split mode's core process. */
export function coreRules(settings: BankSettings, protocol: Protocol) {
  return {
    cutoffMs: settings.cutoffMs,
    allowedSkewMs: settings.allowedSkewMs,
    enforceCutoff: protocol.S5,
    fence: protocol.S6,
    pruneIntervalMs: settings.cutoffMs,
  };
}

/** The split mode's stand-in for the core: start and stop are the other process's; calls go through `bank.ops`. */
function coreElsewhere(): CoreSide {
  const elsewhere = (what: string) => () => {
    throw new CoreElsewhere(`${what}: the core is another process in the split mode (bank.ops reaches it)`);
  };
  return {
    start: () => undefined,
    stop: () => undefined,
    commitCount: () => 0,
    // The core answers an operator's call once its change is durable: nothing is left to wait for here.
    durable: () => Promise.resolve(),
    running: true,
    openAccount: elsewhere('openAccount'),
    deposit: elsewhere('deposit'),
    readModel: elsewhere('readModel'),
  };
}

export type Bank = ReturnType<typeof createBank>;
