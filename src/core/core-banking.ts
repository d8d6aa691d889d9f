/**
 * Core banking (the ledger): one database, one actor deciding every request once.
 * It answers the link, publishes its outbox to the event log, and can be crashed and
 * restarted with its disk intact.
 */
import { createActor, type Actor } from 'xstate';
import type { Inspect } from '../lib/inspect.ts';
import { coreBankingMachine, type CoreEvent, type CoreRules, type RequestFacts } from '../machines/core-banking.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { assert } from '../lib/assert.ts';
import { createGroupCommit, type GroupCommit } from '../lib/group-commit.ts';
import { openDatabase, type Synchronous } from '../lib/sqlite.ts';
import type { EventLogWriter } from '../net/event-log.ts';
import type { Link } from '../net/link.ts';
import type { Decision, ExecuteRequest, LateRefusalReason, LinkRequest, LinkResponse, LogRecord, Posting } from '../net/messages.ts';
import { createCoreStore, type CoreStore } from './core-store.ts';

export type CoreBankingDeps = {
  dbPath: string;
  clock: Clock;
  link: Link;
  log: EventLogWriter;
  rules: CoreRules;
  /** How long past the cutoff a rejected decision or tombstone is kept before pruning. */
  pruneMarginMs: number;
  /** An inspector to see the core's actor (INSPECT=1). */
  inspect?: Inspect;
  synchronous?: Synchronous;
  /** After each core commit, before its answers leave (the simulator may crash the core here). */
  onCommitted?: () => void;
  /** Where the core's log lines go (every refusal, with its transfer id); nowhere unless given. */
  logLine?: CoreLog;
  /** How long each core COMMIT took (the metrics' commit durations). */
  onCommitTimed?: (durationMs: number) => void;
};

/** One log line of the core: a function, so that the core's thread can hand it to the channel's logger. */
export type CoreLog = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;

export const MAX_POSTINGS_PER_ANSWER = 500;
export const MAX_SUMMARIES_PER_ANSWER = 500;
/** Rows before the sender's posting an executed answer may carry; past that, gap repair fills in. */
export const MAX_SENDER_CATCH_UP = 100;
const OUTBOX_BATCH = 1000;
/** How soon the relay looks again when the log was not accepting. */
export const RELAY_RETRY_MS = 100;
/** The relay's name in the log's producer positions. */
export const CORE_PRODUCER = 'core';

export type DepositInput = { accountId: number; amountWon: number; fromBank: string; fromName: string };

export function createCoreBanking(deps: CoreBankingDeps) {
  let store: CoreStore | null = null;
  let batch: GroupCommit | null = null;
  let actor: Actor<typeof coreBankingMachine> | null = null;
  // The answer the deciding unit produced; it leaves once the batch holding it has committed.
  let answers: LinkResponse[] = [];
  /** The last outbox id the log holds: the relay publishes what follows. */
  let relayedUpTo = 0;
  let relayQueued = false;
  let relayTimer: TimerHandle | null = null;
  let commitsBefore = 0;

  const live = (): CoreStore => {
    assert(store !== null, 'core banking is not running');
    return store;
  };
  const units = (): GroupCommit => {
    assert(batch !== null, 'core banking is not running');
    return batch;
  };

  function requestIdOf(event: CoreEvent): string {
    return event.type === 'EXECUTE' ? event.request.requestId : event.requestId;
  }

  function answer(event: CoreEvent, decision: Decision | { kind: 'not-found' }): void {
    const requestId = requestIdOf(event);
    if (event.type === 'EXECUTE') {
      assert(decision.kind !== 'not-found', 'EXECUTE is always decided');
      answers.push({ type: 'execute-answer', requestId, decision, senderCatchUp: [] });
    } else {
      answers.push({ type: 'query-answer', requestId, answer: decision, senderCatchUp: [] });
    }
  }

  /** The sender's rows after what the channel holds and before its posting, oldest first, bounded. */
  function catchUpFor(a: LinkResponse, senderKnownSeq: number): Posting[] {
    const decision = a.type === 'execute-answer' ? a.decision : a.type === 'query-answer' ? a.answer : null;
    if (decision === null || decision.kind !== 'executed') return [];
    const out = decision.postings.from;
    const missing = out.seq - 1 - senderKnownSeq;
    if (missing <= 0) return [];
    return live().postingsAfter(out.accountId, senderKnownSeq, Math.min(missing, MAX_SENDER_CATCH_UP));
  }

  function executeTransfer(request: ExecuteRequest, now: number): Decision {
    const st = live();
    const from = st.getAccount(request.fromAccountId);
    const to = st.getAccount(request.toAccountId);
    assert(from !== undefined && to !== undefined && from.balanceWon >= request.amountWon, 'guards checked accounts and funds');
    const common = { memo: request.memo, transferId: request.requestId, occurredAt: now };
    const out = st.post(from, { ...common, amountWon: -request.amountWon, kind: 'transfer-out', counterparty: to.holderName });
    const into = st.post(to, { ...common, amountWon: request.amountWon, kind: 'transfer-in', counterparty: from.holderName });
    const decision: Decision = { kind: 'executed', postings: { from: out, to: into } };
    st.recordDecision(request.requestId, request.fromAccountId, decision, request.requestedAt, now);
    st.appendToOutbox({ type: 'posting', posting: out });
    st.appendToOutbox({ type: 'posting', posting: into });
    st.appendToOutbox({ type: 'decision', requestId: request.requestId, fromAccountId: from.id, outcome: 'executed', reason: null, senderSeq: out.seq });
    return decision;
  }

  /** A log line once the batch holding what it reports has committed. */
  function logAfterCommit(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    const line = deps.logLine;
    if (line !== undefined) units().after(() => line(level, fields, message));
  }

  /** A late EXECUTE changed nothing: the log carries that to the channel, for the transfer's audit. */
  function refuseLate(r: ExecuteRequest, reason: LateRefusalReason, now: number): void {
    live().appendToOutbox({ type: 'late-request-refused', requestId: r.requestId, fromAccountId: r.fromAccountId, reason, at: now });
    logAfterCommit('warn', { transferId: r.requestId, reason, requestedAt: r.requestedAt, lateByMs: now - r.requestedAt }, `core refused a late request for ${r.requestId}: ${reason}`);
  }

  const machine = coreBankingMachine.provide({
    actions: {
      answerStoredDecision: ({ event }) => {
        if (event.type === 'EXECUTE') refuseLate(event.request, 'already-decided', event.now);
        answer(event, event.facts.decision!);
      },
      reject: ({ event }, { reason }) => {
        if (event.type === 'EXECUTE') {
          const r = event.request;
          live().recordDecision(r.requestId, r.fromAccountId, { kind: 'rejected', reason }, r.requestedAt, event.now);
          live().appendToOutbox({ type: 'decision', requestId: r.requestId, fromAccountId: r.fromAccountId, outcome: 'rejected', reason });
          if (reason === 'fenced') refuseLate(r, 'fenced', event.now);
          else logAfterCommit('info', { transferId: r.requestId, reason }, `core refused ${r.requestId}: ${reason}`);
        }
        answer(event, { kind: 'rejected', reason });
      },
      execute: ({ event }) => {
        assert(event.type === 'EXECUTE', 'only EXECUTE executes');
        answer(event, executeTransfer(event.request, event.now));
      },
      answerNotFound: ({ context, event }) => {
        if (context.fence) live().writeTombstone(requestIdOf(event), event.now);
        answer(event, { kind: 'not-found' });
      },
      pruneExpired: ({ context }) => {
        // Without the cutoff a tombstone is the only fence left, so nothing may be pruned.
        if (!context.enforceCutoff) return;
        // A tombstone is written on the core's clock, but the cutoff is measured from the
        // request's time on the channel's: with the core behind by up to allowedSkewMs, a
        // fenced request can still be inside the cutoff that long after its fence. Keep
        // every tombstone until no request it fences could pass the cutoff any more.
        const keepMs = context.cutoffMs + Math.max(deps.pruneMarginMs, context.allowedSkewMs);
        units().run(() => live().pruneBefore(deps.clock.now() - keepMs));
      },
    },
  });

  function factsFor(requestId: string, request: ExecuteRequest | null): RequestFacts {
    const st = live();
    const from = request ? st.getAccount(request.fromAccountId) : undefined;
    return {
      decision: st.decisionOf(requestId),
      tombstoned: st.isTombstoned(requestId),
      fromBalanceWon: request ? (from?.balanceWon ?? null) : 0,
      toExists: request ? st.getAccount(request.toAccountId) !== undefined : true,
    };
  }

  /**
   * Decides one request as one unit of the open batch: it sees every decision, balance and
   * tombstone before it in arrival order; its answer leaves once the batch has committed.
   */
  function decide(make: () => CoreEvent, senderKnownSeq: number): void {
    answers = [];
    const out = units().run(() => {
      const event = make();
      actor!.send(event);
      assert(answers.length === 1, `the core answers ${event.type} exactly once`);
      const a = answers[0]!;
      if (a.type === 'execute-answer' || a.type === 'query-answer') a.senderCatchUp.push(...catchUpFor(a, senderKnownSeq));
      return a;
    });
    answers = [];
    // The answer is on its way before the log's records, as a core answering first would send it.
    units().after(() => deps.link.respond(out));
    relaySoon();
  }

  function onRequest(message: LinkRequest): void {
    if (store === null) return; // a core that is down loses what reaches it
    const now = deps.clock.now();
    switch (message.type) {
      case 'execute':
        return decide(() => ({ type: 'EXECUTE', now, request: message.request, facts: factsFor(message.request.requestId, message.request) }), message.senderKnownSeq);
      case 'query':
        return decide(() => ({ type: 'QUERY', now, requestId: message.requestId, facts: factsFor(message.requestId, null) }), message.senderKnownSeq);
      case 'postings-after': {
        const limit = Math.min(Math.max(1, message.limit), MAX_POSTINGS_PER_ANSWER);
        const account = live().getAccount(message.accountId);
        const reply: LinkResponse = {
          type: 'postings',
          accountId: message.accountId,
          afterSeq: message.afterSeq,
          postings: live().postingsAfter(message.accountId, message.afterSeq, limit),
          lastSeq: account?.lastSeq ?? 0,
        };
        // Read inside the open batch: what it shows leaves only once it is durable.
        units().after(() => deps.link.respond(reply));
        return;
      }
      case 'account-summaries': {
        // One short read per batch: reconciliation never holds the core for long.
        const limit = Math.min(Math.max(1, message.limit), MAX_SUMMARIES_PER_ANSWER);
        const summaries = live().summariesAfter(message.afterAccountId, limit);
        const reply: LinkResponse = { type: 'account-summaries', afterAccountId: message.afterAccountId, summaries, done: summaries.length < limit };
        units().after(() => deps.link.respond(reply));
        return;
      }
    }
  }

  /** One relay run after RELAY_RETRY_MS, for a log that was not accepting (one timer at most). */
  function relayLater(): void {
    if (relayTimer !== null) return;
    relayTimer = deps.clock.setTimeout(() => {
      relayTimer = null;
      if (store !== null) publishOutbox();
    }, RELAY_RETRY_MS);
  }

  /** Queues one relay run for after the open batch commits, however many units appended to the outbox. */
  function relaySoon(): void {
    if (relayQueued) return;
    relayQueued = true;
    units().after(publishOutbox);
  }

  /**
   * The relay of the transactional outbox: at-least-once into the event log, in batches. Each
   * append records the relay's position in the same log transaction, so nothing in core.db
   * is written to mark rows published.
   */
  function publishOutbox(): void {
    relayQueued = false;
    // Only what is committed may leave: with a batch open, the relay runs after its commit.
    if (units().inBatch) return relaySoon();
    const st = live();
    for (;;) {
      // A log that holds all it will: the rows wait in the outbox, and the relay looks again later.
      if (deps.log.accepting?.() === false) return relayLater();
      const rows = st.outboxAfter(relayedUpTo, OUTBOX_BATCH);
      if (rows.length === 0) return;
      const position = rows[rows.length - 1]!.id;
      deps.log.publish(
        rows.map((b) => b.record),
        { producer: CORE_PRODUCER, position, ids: rows.map((b) => b.id) },
      );
      relayedUpTo = position;
    }
  }

  /** Writes one change of the ledger and its log records as one unit; they leave with the batch. */
  function commitLedger<T>(write: (st: CoreStore, now: number) => T): T {
    const st = live();
    const result = units().run(() => write(st, deps.clock.now()));
    relaySoon();
    return result;
  }

  function start(): void {
    assert(store === null, 'core banking is already running');
    const db = openDatabase(deps.dbPath, 'core', deps.synchronous);
    store = createCoreStore(db);
    const me = store;
    batch = createGroupCommit({
      db,
      clock: deps.clock,
      onCommitted: deps.onCommitted,
      onCommitTimed: deps.onCommitTimed,
      // A core that cannot commit has crashed: it stops, and its disk holds the last batch that did.
      onCommitFailed: () => {
        if (store === me) stop();
      },
    });
    actor = createActor(machine, { input: deps.rules, clock: deps.clock, id: 'coreBanking', ...(deps.inspect ? { inspect: deps.inspect } : {}) });
    actor.start();
    deps.link.onRequest(onRequest);
    // What a crash left unpublished: everything after the last batch the log holds. Only a
    // relay that never recorded a position (a database from before db/006) looks for the rows
    // it marked published: that look scans the outbox, 20 ms at 100,000 rows on every start.
    const position = deps.log.producerPosition(CORE_PRODUCER);
    const lastRow = store.lastOutboxId();
    if (position > lastRow) {
      // The log says this relay published rows core.db never had: it is another bank's log (a
      // new DATA_DIR on an old stream), or core.db was replaced. Publishing would lose this
      // bank's first rows and mix two banks' records.
      stop();
      throw new Error(
        `the event log holds records of outbox rows up to ${position}, but core.db has ${lastRow}: it is another bank's log, or core.db was replaced. ` +
          'Give this bank a log of its own (another EVENT_LOG_STREAM), or delete the old stream if it is no longer needed',
      );
    }
    relayedUpTo = position > 0 ? position : store.lastMarkedPublished();
    relayQueued = false;
    publishOutbox();
  }

  /** A crash that keeps the disk: the open batch is lost, and requests that arrive while stopped are lost. */
  function stop(): void {
    if (store === null) return;
    deps.link.onRequest(null);
    actor?.stop();
    actor = null;
    if (relayTimer !== null) deps.clock.clearTimeout(relayTimer);
    relayTimer = null;
    commitsBefore += batch?.commits ?? 0;
    batch?.abandon();
    batch = null;
    store.db.close();
    store = null;
  }

  return {
    start,
    stop,
    /** Commits core.db has made since this bank was made, across restarts. */
    commitCount: () => commitsBefore + (batch?.commits ?? 0),
    /** Resolves once everything the core wrote so far is durable; rejects if the core crashed first. */
    durable: (): Promise<void> => (batch === null ? Promise.reject(new Error('core banking is not running')) : batch.durable()),
    get running(): boolean {
      return store !== null;
    },
    openAccount(holderName: string, openingBalanceWon: number): { accountId: number; balanceWon: number } {
      return commitLedger((st, now) => {
        const accountId = st.openAccount(holderName, now);
        st.appendToOutbox({ type: 'account-opened', accountId, holderName, openedAt: now });
        if (openingBalanceWon > 0) {
          const account = st.getAccount(accountId)!;
          const p = st.post(account, { amountWon: openingBalanceWon, kind: 'opening', counterparty: null, memo: null, transferId: null, occurredAt: now });
          st.appendToOutbox({ type: 'posting', posting: p });
        }
        return { accountId, balanceWon: openingBalanceWon };
      });
    },
    /** Money in from another bank. */
    deposit(input: DepositInput): Posting | 'unknown-account' {
      return commitLedger((st, now) => {
        const account = st.getAccount(input.accountId);
        if (account === undefined) return 'unknown-account' as const;
        const p = st.post(account, {
          amountWon: input.amountWon,
          kind: 'deposit',
          counterparty: `${input.fromName} (${input.fromBank})`,
          memo: null,
          transferId: null,
          occurredAt: now,
        });
        const record: LogRecord = { type: 'posting', posting: p };
        st.appendToOutbox(record);
        return p;
      });
    },
    /** Read access for invariant checks and tests; never used by the channel. */
    readModel(): CoreStore {
      return live();
    },
  };
}

export type CoreBanking = ReturnType<typeof createCoreBanking>;
