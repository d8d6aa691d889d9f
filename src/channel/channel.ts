/**
 * The channel (transfer server): customers and tokens, transfer requests as the customer
 * sees them, and an exact copy of every account's history fed by the core's event log.
 * It talks to the core only through the link and the log.
 */
import { createHash } from 'node:crypto';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { assert } from '../lib/assert.ts';
import { randomId, randomToken, type RandomSource } from '../lib/ids.ts';
import type { Inspect } from '../lib/inspect.ts';
import type { Protocol } from '../lib/protocol.ts';
import { openDatabase, type Synchronous } from '../lib/sqlite.ts';
import type { EventLogReader } from '../net/event-log.ts';
import type { Link } from '../net/link.ts';
import type { LinkResponse, Posting } from '../net/messages.ts';
import type { TransferEvent, TransferInput, TransferPolicy, TransferState } from '../machines/transfer.ts';
import { createChannelStore, type PageItem, type ChannelAccount, type ChannelStore, type Customer, type HistoryRow, type JournalRow, type TransferRow } from './channel-store.ts';
import { createGapRepair, type GapRepair } from './gap-repair.ts';
import { createLogConsumer } from './log-consumer.ts';
import { createReconciler, ReconcileInterrupted, type ReconcileReport, type Reconciler } from './reconciler.ts';
import { createTransferActors, type TransferActors } from './transfer-actors.ts';

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
  /** An inspector to see every transfer actor (INSPECT=1). */
  inspect?: Inspect;
};

export type TransferView = Omit<TransferRow, 'snapshot' | 'idempotencyKey' | 'bodyHash'> & { journal: JournalRow[] };

export type TransferRequest = {
  customerId: number;
  fromAccountId: number;
  toAccountId: number;
  amountWon: number;
  memo: string | null;
  idempotencyKey: string | null;
};

export type RequestOutcome =
  | { kind: 'created'; transfer: TransferView }
  | { kind: 'replayed'; transfer: TransferView }
  | { kind: 'key-reused'; transferId: string }
  | { kind: 'in-flight'; inFlightTransferId: string };

export type TransitionListener = (transferId: string, step: { at: number; event: string; from: TransferState; to: TransferState }) => void;

/** Known tokens kept in memory, so that most requests authenticate without a read. */
export const TOKEN_CACHE_SIZE = 10_000;
/** Account owners kept in memory (the oldest entry goes first). */
export const OWNER_CACHE_SIZE = 100_000;

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

function bodyHashOf(r: TransferRequest): string {
  const canonical = JSON.stringify([r.fromAccountId, r.toAccountId, r.amountWon, r.memo]);
  return createHash('sha256').update(canonical).digest('hex');
}

function isUniqueViolation(error: unknown, index: string): boolean {
  return error instanceof Error && 'code' in error && String(error.code).startsWith('SQLITE_CONSTRAINT') && error.message.includes(index);
}

export function createChannel(deps: ChannelDeps) {
  let store: ChannelStore | null = null;
  let actors: TransferActors | null = null;
  let consumer: ReturnType<typeof createLogConsumer> | null = null;
  let repair: GapRepair | null = null;
  let reconciler: Reconciler | null = null;
  let reconcileTimer: TimerHandle | null = null;
  let lastReconcile: ReconcileReport | null = null;
  const waiters = new Map<string, Set<() => void>>();
  const tokenCache = new Map<string, Customer>();
  const ownerCache = new Map<number, number>();
  const transitionListeners = new Set<TransitionListener>();

  const live = (): ChannelStore => {
    assert(store !== null, 'the channel is not running');
    return store;
  };

  function notifySettled(id: string): void {
    const set = waiters.get(id);
    waiters.delete(id);
    set?.forEach((wake) => wake());
  }

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

  function onLinkResponse(message: LinkResponse): void {
    if (actors === null) return;
    const at = deps.clock.now();
    switch (message.type) {
      case 'execute-answer': {
        const d = message.decision;
        actors.send(
          message.requestId,
          d.kind === 'executed'
            ? { type: 'EXECUTED', at, via: 'response', posting: d.postings.from, catchUp: message.senderCatchUp }
            : { type: 'REJECTED', at, via: 'response', reason: d.reason },
        );
        return;
      }
      case 'query-answer': {
        const a = message.answer;
        if (a.kind === 'executed') actors.send(message.requestId, { type: 'EXECUTED', at, via: 'query', posting: a.postings.from, catchUp: message.senderCatchUp });
        else if (a.kind === 'rejected') actors.send(message.requestId, { type: 'REJECTED', at, via: 'query', reason: a.reason });
        else actors.send(message.requestId, { type: 'NOT_FOUND', at });
        return;
      }
      case 'postings':
        return repair?.onAnswer(message);
      case 'account-summaries':
        return reconciler?.onAnswer(message);
    }
  }

  function view(row: TransferRow): TransferView {
    const { snapshot: _s, idempotencyKey: _k, bodyHash: _b, ...rest } = row;
    return { ...rest, journal: live().journalOf(row.id) };
  }

  function transferView(id: string): TransferView | undefined {
    const row = live().transfer(id);
    return row === undefined ? undefined : view(row);
  }

  /** Inside a channel transaction: applies one posting as the protocol says, noting any hole. */
  function applyPosting(st: ChannelStore, r: GapRepair, posting: Posting): void {
    if (!deps.protocol.S8) {
      st.applyPostingNaively(posting);
      return;
    }
    if (st.applyPosting(posting) !== 'gap') return;
    r.noteGap(posting.accountId, posting.seq);
    // Kick the repair once this transaction has committed.
    deps.clock.setTimeout(() => repair?.kick(posting.accountId), 0);
  }

  /**
   * An outcome from the log settles its transfer once the sender's history holds the
   * transfer's row (read your writes). If the row is still being repaired, the outcome waits
   * for the repair; should that take too long, the transfer's own timers ask the core, whose
   * answer brings the row with it.
   */
  function deliverFromLog(st: ChannelStore, r: GapRepair, a: TransferActors, id: string, event: TransferEvent, waitFor: { accountId: number; seq: number } | null): void {
    const holds = () => waitFor === null || (st.account(waitFor.accountId)?.lastSeq ?? 0) >= waitFor.seq;
    if (holds()) {
      a.send(id, event);
      return;
    }
    r.afterRepair(waitFor!.accountId, deps.timing.queryTimeoutMs, () => {
      if (actors === a && holds()) a.send(id, event);
    });
  }

  function reconcileNow(): Promise<ReconcileReport> {
    assert(reconciler !== null, 'the channel is not running');
    return reconciler.run().then((report) => {
      lastReconcile = report;
      return report;
    });
  }

  function scheduleReconcile(): void {
    const every = deps.timing.reconcileIntervalMs;
    if (every <= 0 || !deps.protocol.S8) return;
    reconcileTimer = deps.clock.setTimeout(() => {
      reconcileTimer = null;
      if (store === null) return;
      reconcileNow().then(scheduleReconcile, (error: unknown) => {
        if (!(error instanceof ReconcileInterrupted)) throw error;
      });
    }, every);
  }

  return {
    start(): void {
      assert(store === null, 'the channel is already running');
      const st = createChannelStore(openDatabase(deps.dbPath, 'channel', deps.synchronous));
      store = st;
      const t = deps.timing;
      const timing = { answerTimeoutMs: t.queryTimeoutMs, backoffBaseMs: t.backoffBaseMs, backoffMaxMs: t.backoffMaxMs };
      const r = createGapRepair({ store: st, link: deps.link, clock: deps.clock, timing });
      repair = r;
      actors = createTransferActors({
        store: st,
        clock: deps.clock,
        link: deps.link,
        storeBeforeSend: deps.protocol.S3,
        onSettled: notifySettled,
        onTransition: (id, step) => transitionListeners.forEach((l) => l(id, step)),
        applyPosting: (posting) => applyPosting(st, r, posting),
        inspect: deps.inspect,
      });
      deps.link.onResponse(onLinkResponse);
      for (const row of st.unfinishedTransfers()) actors.restore(row.id, row.snapshot);
      const a = actors;
      const c = createLogConsumer({
        store: st,
        log: deps.log,
        clock: deps.clock,
        exactlyOnce: deps.protocol.S8,
        deliver: (id, e, waitFor) => deliverFromLog(st, r, a, id, e, waitFor),
        noteGap: (accountId, seq) => r.noteGap(accountId, seq),
        onGaps: (accountIds) => accountIds.forEach((id) => r.kick(id)),
      });
      consumer = c;
      // A report waits for its repairs long enough to ride out a lost answer or two; a repair
      // still going after that carries on in the background and shows in the next report.
      const repairWaitMs = 4 * t.queryTimeoutMs;
      reconciler = createReconciler({ store: st, link: deps.link, clock: deps.clock, repair: r, drainLog: () => c.drain(), timing: { ...timing, repairWaitMs } });
      r.resumeAll();
      c.start();
      scheduleReconcile();
    },
    /** A crash that keeps the disk: actors stop where they are, nothing more is committed. */
    stop(): void {
      if (store === null) return;
      deps.link.onResponse(null);
      consumer?.stop();
      repair?.stop();
      reconciler?.stop();
      if (reconcileTimer !== null) deps.clock.clearTimeout(reconcileTimer);
      reconcileTimer = null;
      actors?.stopAll();
      store.db.close();
      store = null;
      actors = null;
      tokenCache.clear();
      ownerCache.clear();
      consumer = null;
      repair = null;
      reconciler = null;
      // Whoever waited for an outcome gets the transfer as it stands.
      for (const id of [...waiters.keys()]) notifySettled(id);
    },
    get running(): boolean {
      return store !== null;
    },

    createCustomer(name: string): { customer: Customer; token: string } {
      const st = live();
      const token = randomToken(deps.random);
      const customer = st.db.transaction(() => {
        const id = st.createCustomer(name, deps.clock.now());
        st.addToken(hashToken(token), id);
        return { id, name };
      })();
      return { customer, token };
    },
    /** Records that an account the core opened belongs to a customer. */
    registerAccount(customerId: number, accountId: number): void {
      const st = live();
      st.db.transaction(() => {
        st.ensureAccount(accountId);
        const owner = st.account(accountId)!.customerId;
        assert(owner === null || owner === customerId, `account ${accountId} already belongs to customer ${owner}`);
        st.setOwner(accountId, customerId);
      })();
    },
    /**
     * Who owns an account: undefined for no such account, null for one no customer holds yet.
     * Owners are remembered: once an account has one, it never changes.
     */
    ownerOf(accountId: number): number | null | undefined {
      const known = ownerCache.get(accountId);
      if (known !== undefined) return known;
      const account = live().account(accountId);
      if (account === undefined || account.customerId === null) return account === undefined ? undefined : null;
      if (ownerCache.size >= OWNER_CACHE_SIZE) ownerCache.delete(ownerCache.keys().next().value!);
      ownerCache.set(accountId, account.customerId);
      return account.customerId;
    },
    /** The customer a token belongs to. Known tokens are remembered: a token never changes owner. */
    authenticate(token: string): Customer | undefined {
      const hash = hashToken(token);
      const known = tokenCache.get(hash);
      if (known !== undefined) {
        tokenCache.delete(hash); // least recently used goes first: move this one to the end
        tokenCache.set(hash, known);
        return known;
      }
      const customer = live().customerByTokenHash(hash);
      // Unknown tokens are not remembered, so a flood of them cannot push known ones out.
      if (customer === undefined) return undefined;
      if (tokenCache.size >= TOKEN_CACHE_SIZE) tokenCache.delete(tokenCache.keys().next().value!);
      tokenCache.set(hash, customer);
      return customer;
    },
    customer: (id: number) => live().customer(id),
    accountsOf: (customerId: number): ChannelAccount[] => live().accountsOf(customerId),
    account: (id: number): ChannelAccount | undefined => live().account(id),

    /** Stores the request (S3), honours its Idempotency-Key (S7), then starts its actor. */
    requestTransfer(r: TransferRequest): RequestOutcome {
      const st = live();
      const bodyHash = bodyHashOf(r);
      if (r.idempotencyKey !== null) {
        const prior = st.transferByKey(r.customerId, r.idempotencyKey);
        if (prior !== undefined) {
          return prior.bodyHash === bodyHash ? { kind: 'replayed', transfer: view(prior) } : { kind: 'key-reused', transferId: prior.id };
        }
      }
      const id = randomId(deps.random, 'tr');
      const requestedAt = deps.clock.now();
      const input: TransferInput = { transferId: id, fromAccountId: r.fromAccountId, toAccountId: r.toAccountId, amountWon: r.amountWon, memo: r.memo, requestedAt, policy: policyFor(requestedAt) };
      const a = actors!;
      try {
        st.db.transaction(() => {
          st.insertTransfer({ id, customerId: r.customerId, fromAccountId: r.fromAccountId, toAccountId: r.toAccountId, amountWon: r.amountWon, memo: r.memo, requestedAt, snapshot: a.initialSnapshot(input), idempotencyKey: r.idempotencyKey, bodyHash, holdsLock: deps.protocol.S3 ? 1 : 0 });
          st.appendJournal(id, requestedAt, 'REQUEST', null, 'requested');
        })();
      } catch (error) {
        if (isUniqueViolation(error, 'transfers.from_account_id')) {
          const inFlight = st.inFlightFrom(r.fromAccountId);
          assert(inFlight !== undefined, 'a lock violation names an unfinished transfer');
          return { kind: 'in-flight', inFlightTransferId: inFlight };
        }
        throw error;
      }
      transitionListeners.forEach((l) => l(id, { at: requestedAt, event: 'REQUEST', from: 'requested', to: 'requested' }));
      a.begin(id, input);
      return { kind: 'created', transfer: view(st.transfer(id)!) };
    },
    transfer: transferView,
    /** Resolves when the transfer settles, or after `waitMs` on the channel's clock, with the transfer as it stands. */
    waitForSettled(id: string, waitMs: number): Promise<TransferView | undefined> {
      return new Promise((resolve) => {
        const done = () => resolve(store === null ? undefined : transferView(id));
        const current = live().transfer(id);
        if (current === undefined || current.state === 'succeeded' || current.state === 'failed' || waitMs <= 0) return done();
        let timer: TimerHandle | null = null;
        const wake = () => {
          if (timer !== null) deps.clock.clearTimeout(timer);
          done();
        };
        timer = deps.clock.setTimeout(() => {
          waiters.get(id)?.delete(wake);
          done();
        }, waitMs);
        const set = waiters.get(id) ?? new Set();
        set.add(wake);
        waiters.set(id, set);
      });
    },
    /** Newest first: the rows below `beforeSeq`. Reads only the channel's copy. */
    pageHistoryBefore: (accountId: number, beforeSeq: number, limit: number): HistoryRow[] => live().pageHistoryBefore(accountId, beforeSeq, limit),
    /** Newest first: the rows below `beforeSeq` as served, each already JSON. Reads only the channel's copy. */
    pageItemsBefore: (accountId: number, beforeSeq: number, limit: number): PageItem[] => live().pageItemsBefore(accountId, beforeSeq, limit),
    /** Oldest first: the rows above `afterSeq` as served (pull to refresh). */
    pageItemsAfter: (accountId: number, afterSeq: number, limit: number): PageItem[] => live().pageItemsAfter(accountId, afterSeq, limit),
    /** Compares every account with the core in bounded batches and repairs what differs (S8). */
    reconcile: reconcileNow,
    lastReconcileReport: () => lastReconcile,
    /** Accounts with a hole still being repaired. */
    repairsPending: () => repair?.pendingCount() ?? 0,
    /** Stops and starts the log consumer alone: it carries on from its committed offset. */
    restartConsumer(): void {
      assert(consumer !== null, 'the channel is not running');
      consumer.stop();
      consumer.start();
    },
    /** Rewinds the consumer to an older offset: everything after it is delivered again. */
    redeliverFrom(offset: number): void {
      assert(consumer !== null, 'the channel is not running');
      consumer.seek(offset);
    },
    onTransition(listener: TransitionListener): () => void {
      transitionListeners.add(listener);
      return () => transitionListeners.delete(listener);
    },
    /** Read access for invariant checks and tests. */
    inspect(): ChannelStore {
      return live();
    },
    liveActorCount: () => actors?.liveCount() ?? 0,
    drainLog: () => consumer?.drain(),
  };
}

export type Channel = ReturnType<typeof createChannel>;
