/**
 * The channel (transfer server): wires its parts (identity, transfers, history) around one
 * group commit on channel.db, starts them and stops them. It talks to the core only through
 * the link and the log.
 */
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { assert } from '../lib/assert.ts';
import { createGroupCommit, type GroupCommit } from '../lib/group-commit.ts';
import type { RandomSource } from '../lib/ids.ts';
import { transferInspectorFrom, type Inspect, type TransferInspector } from '../lib/inspect.ts';
import type { Protocol } from '../lib/protocol.ts';
import { openDatabase, type Synchronous } from '../lib/sqlite.ts';
import type { EventLogReader } from '../net/event-log.ts';
import type { Link } from '../net/link.ts';
import type { LinkResponse } from '../net/messages.ts';
import type { TransferPolicy } from '../machines/transfer.ts';
import { createChannelStore, type ChannelAccount, type ChannelStore, type Customer } from './channel-store.ts';
import { createHistory, type AppliedListener, type History, type HistoryObserver } from './history.ts';
import { createIdentity, type Identity } from './identity.ts';
import type { ReconcileReport } from './reconciler.ts';
import { createDurableTransfers, type DurableTransfers, type TransitionStep } from './transfers/durable-transfers.ts';
import { createTransferService, type TransferRequest, type TransferService, type TransferView, type RequestOutcome } from './transfers/transfer-service.ts';
import { createTransferStore, type TransferStore } from './transfers/transfer-store.ts';

export type { TransferRequest, TransferView, RequestOutcome } from './transfers/transfer-service.ts';
export { TOKEN_CACHE_SIZE, OWNER_CACHE_SIZE, hashToken } from './identity.ts';

export type ChannelTiming = {
  responseTimeoutMs: number;
  queryTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  cutoffMs: number;
  /** Added to the cutoff before the first query when the fence (S6) is off: the talk's rule. */
  cutoffMarginMs: number;
  /** How often reconciliation runs (S8); 0: only on demand. */
  reconcileIntervalMs: number;
};

export type ChannelDeps = {
  dbPath: string;
  clock: Clock;
  random: RandomSource;
  link: Link;
  log: EventLogReader;
  protocol: Protocol;
  timing: ChannelTiming;
  synchronous?: Synchronous;
  /** An inspector to see every transfer (INSPECT=1). */
  inspect?: Inspect;
  /** The inspector's own API for actors that have no live object; made from `inspect` when absent. */
  transferInspector?: TransferInspector;
  /** After each channel commit, before its effects leave (the simulator may crash the channel here). */
  onCommitted?: () => void;
  /** Reconciliation reports and gap repairs; silent unless given. */
  logger?: Logger;
  /** The metrics' view of the channel: its commit durations, repairs and reconciliations. */
  observer?: HistoryObserver & { commitTimed?(durationMs: number): void };
};

export type TransitionListener = (transferId: string, step: TransitionStep) => void;

type Running = {
  store: ChannelStore;
  readModel: ChannelReadModel;
  transferStore: TransferStore;
  batch: GroupCommit;
  identity: Identity;
  history: History;
  actors: DurableTransfers;
  service: TransferService;
};

/** What tests and the simulator read of channel.db: never used by production code. */
export type ChannelReadModel = ChannelStore & Pick<TransferStore, 'journalOf' | 'inFlightFrom'> & {
  allTransfers: TransferStore['all'];
  unfinishedTransfers: TransferStore['unfinished'];
};

export function createChannel(deps: ChannelDeps) {
  let running: Running | null = null;
  let lastReconcile: ReconcileReport | null = null;
  let commitsBefore = 0;
  const transitionListeners = new Set<TransitionListener>();
  const revokedListeners = new Set<(customerId: number) => void>();
  const appliedListeners = new Set<AppliedListener>();
  const inspector = deps.transferInspector ?? (deps.inspect === undefined ? undefined : transferInspectorFrom(deps.inspect));

  const live = (): Running => {
    assert(running !== null, 'the channel is not running');
    return running;
  };

  function policyFor(requestedAt: number): TransferPolicy {
    const { protocol: p, timing: t } = deps;
    // Without the fence, "never seen" is only final once the cutoff has passed (S5).
    const waitForCutoff = !p.S6 && p.S5;
    return {
      responseTimeoutMs: t.responseTimeoutMs,
      queryTimeoutMs: t.queryTimeoutMs,
      backoffBaseMs: t.backoffBaseMs,
      backoffMaxMs: t.backoffMaxMs,
      queryNotBeforeAt: waitForCutoff ? requestedAt + t.cutoffMs + t.cutoffMarginMs : requestedAt,
      queryAfterTimeout: p.S4,
    };
  }

  function onLinkResponse(r: Running, message: LinkResponse): void {
    const at = deps.clock.now();
    switch (message.type) {
      case 'execute-answer': {
        const d = message.decision;
        r.actors.send(
          message.requestId,
          d.kind === 'executed'
            ? { type: 'EXECUTED', at, via: 'response', posting: d.postings.from, catchUp: message.senderCatchUp }
            : { type: 'REJECTED', at, via: 'response', reason: d.reason },
        );
        return;
      }
      case 'query-answer': {
        const a = message.answer;
        if (a.kind === 'executed') r.actors.send(message.requestId, { type: 'EXECUTED', at, via: 'query', posting: a.postings.from, catchUp: message.senderCatchUp });
        else if (a.kind === 'rejected') r.actors.send(message.requestId, { type: 'REJECTED', at, via: 'query', reason: a.reason });
        else r.actors.send(message.requestId, { type: 'NOT_FOUND', at });
        return;
      }
      case 'postings':
      case 'account-summaries':
        return r.history.onAnswer(message);
    }
  }

  function wire(): Running {
    const db = openDatabase(deps.dbPath, 'channel', deps.synchronous);
    const store = createChannelStore(db);
    const transferStore = createTransferStore(db);
    const batch = createGroupCommit({
      db,
      clock: deps.clock,
      onCommitted: deps.onCommitted,
      onCommitTimed: deps.observer?.commitTimed,
      // A channel that cannot commit has crashed: it stops; its disk holds the last batch that did.
      onCommitFailed: () => {
        if (running?.batch === batch) stop();
      },
    });
    const identity = createIdentity({
      store,
      batch,
      now: () => deps.clock.now(),
      random: deps.random,
      onRevoked: (customerId) => revokedListeners.forEach((l) => l(customerId)),
    });
    // The parts meet through the few functions each needs; `actors` is bound just below.
    let actors: DurableTransfers | null = null;
    const history = createHistory({
      store,
      batch,
      clock: deps.clock,
      link: deps.link,
      log: deps.log,
      exactlyOnce: deps.protocol.S8,
      timing: deps.timing,
      logger: deps.logger,
      observer: deps.observer,
      deliverOutcome: (id, event) => actors!.send(id, event),
      audit: (r) => {
        // Inside the consumer's batch: the line waits for the commit that keeps the entry.
        if (transferStore.addAudit(r.requestId, { at: r.at, event: r.type, reason: r.reason })) {
          batch.after(() => deps.logger?.info({ transferId: r.requestId, reason: r.reason }, 'audit: the core refused a late request for this transfer; nothing moved'));
        }
      },
      listeners: appliedListeners,
    });
    let service: TransferService | null = null;
    actors = createDurableTransfers({
      store: transferStore,
      batch,
      clock: deps.clock,
      send: (message) => deps.link.request(message),
      knownSeq: history.knownSeq,
      applySenderRows: history.applyInCommit,
      storeBeforeSend: deps.protocol.S3,
      onSettled: (id) => service!.settled(id),
      onTransition: (id, step) => transitionListeners.forEach((l) => l(id, step)),
      inspector,
    });
    service = createTransferService({ store: transferStore, actors, clock: deps.clock, random: deps.random, policyFor, holdLock: deps.protocol.S3 });
    // The store itself, with the transfers' reads: a test may swap one of its functions to inject a fault.
    const readModel: ChannelReadModel = Object.assign(store, { journalOf: transferStore.journalOf, inFlightFrom: transferStore.inFlightFrom, allTransfers: transferStore.all, unfinishedTransfers: transferStore.unfinished });
    return { store, readModel, transferStore, batch, identity, history, actors, service };
  }

  function start(): void {
    assert(running === null, 'the channel is already running');
    const r = wire();
    running = r;
    deps.link.onResponse((message) => onLinkResponse(r, message));
    r.history.start(lastReconcile);
    r.actors.resume();
  }

  /** A crash that keeps the disk: the open batch is lost, nothing more is committed. */
  function stop(): void {
    const r = running;
    if (r === null) return;
    running = null;
    deps.link.onResponse(null);
    lastReconcile = r.history.lastReconcileReport();
    r.history.stop();
    r.actors.stop();
    commitsBefore += r.batch.commits;
    r.batch.abandon();
    r.store.db.close();
    r.service.wakeAll();
  }

  return {
    start,
    stop,
    get running(): boolean {
      return running !== null;
    },
    createCustomer: (name: string): { customer: Customer; token: string } => live().identity.createCustomer(name),
    registerAccount: (customerId: number, accountId: number): void => live().identity.registerAccount(customerId, accountId),
    /** A new token for a customer, in the open batch (shown once). */
    issueToken: (customerId: number): string => live().identity.issueToken(customerId),
    /** Revokes every token of a customer: at once for new requests, and for open streams after the commit. */
    revokeTokens: (customerId: number): number => live().identity.revokeTokens(customerId),
    /** After the commit that revoked a customer's tokens. */
    onTokensRevoked(listener: (customerId: number) => void): () => void {
      revokedListeners.add(listener);
      return () => revokedListeners.delete(listener);
    },
    ownerOf: (accountId: number): number | null | undefined => live().identity.ownerOf(accountId),
    authenticate: (token: string): Customer | undefined => live().identity.authenticate(token),
    customer: (id: number) => live().identity.customer(id),
    accountsOf: (customerId: number): ChannelAccount[] => live().identity.accountsOf(customerId),
    account: (id: number): ChannelAccount | undefined => live().identity.account(id),

    /** Stores the request (S3), honours its Idempotency-Key (S7), then starts its actor. */
    requestTransfer: (r: TransferRequest): RequestOutcome => live().service.requestTransfer(r),
    transfer: (id: string): TransferView | undefined => live().service.transfer(id),
    /** Resolves when the transfer settles, or after `waitMs` on the channel's clock, with the transfer as it stands. */
    waitForSettled(id: string, waitMs: number): Promise<TransferView | undefined> {
      return live().service.waitForSettled(id, waitMs, () => running?.service.transfer(id));
    },
    /** Resolves once everything the channel wrote so far is durable; rejects if the channel crashed first. */
    durable: (): Promise<void> => (running === null ? Promise.reject(new Error('the channel is not running')) : running.batch.durable()),
    pageHistoryBefore: (accountId: number, beforeSeq: number, limit: number) => live().history.pageHistoryBefore(accountId, beforeSeq, limit),
    pageItemsBefore: (accountId: number, beforeSeq: number, limit: number) => live().history.pageItemsBefore(accountId, beforeSeq, limit),
    pageItemsAfter: (accountId: number, afterSeq: number, limit: number) => live().history.pageItemsAfter(accountId, afterSeq, limit),
    /** Compares every account with the core in bounded batches and repairs what differs (S8). */
    reconcile: (): Promise<ReconcileReport> => live().history.reconcile(),
    lastReconcileReport: (): ReconcileReport | null => (running === null ? lastReconcile : running.history.lastReconcileReport()),
    /** Accounts with a hole still being repaired. */
    repairsPending: () => running?.history.repairsPending() ?? 0,
    /** The next event-log offset the consumer will read; null while the channel is down. */
    consumerNextOffset: (): number | null => running?.history.consumerNextOffset() ?? null,
    /** Stops and starts the log consumer alone: it carries on from its committed offset. */
    restartConsumer: () => live().history.restartConsumer(),
    /** Rewinds the consumer to an older offset: everything after it is delivered again. */
    redeliverFrom: (offset: number) => live().history.redeliverFrom(offset),
    drainLog: () => running?.history.drainLog(),
    onTransition(listener: TransitionListener): () => void {
      transitionListeners.add(listener);
      return () => transitionListeners.delete(listener);
    },
    /** Rows that became durable in the channel's history, after each commit (the benchmark's sync lag). */
    onHistoryApplied(listener: AppliedListener): () => void {
      appliedListeners.add(listener);
      return () => appliedListeners.delete(listener);
    },
    /** Transfers not yet succeeded or failed: each is a durable actor, a row. */
    unfinishedCount: (): number => live().transferStore.unfinishedCount(),
    /** Commits channel.db has made since this bank was made, across restarts. */
    commitCount: (): number => commitsBefore + (running?.batch.commits ?? 0),
    /** Read access for invariant checks and tests. */
    readModel: (): ChannelReadModel => live().readModel,
  };
}

export type Channel = ReturnType<typeof createChannel>;
