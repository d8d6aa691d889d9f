/**
 * The transfer service: stores a customer's request (S3), honours its Idempotency-Key (S7),
 * starts its durable actor, and lets callers wait for the outcome.
 */
import { createHash } from 'node:crypto';
import { assert } from '../../lib/assert.ts';
import type { Clock, TimerHandle } from '../../lib/clock.ts';
import { timeOrderedId, type RandomSource } from '../../lib/ids.ts';
import type { TransferInput, TransferPolicy } from '../../machines/transfer.ts';
import type { DurableTransfers } from './durable-transfers.ts';
import type { AuditRow, JournalRow, TransferRow, TransferStore } from './transfer-store.ts';

export type TransferView = Omit<TransferRow, 'snapshot' | 'idempotencyKey' | 'bodyHash'> & { journal: JournalRow[]; audit: AuditRow[] };

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

export type TransferServiceDeps = {
  store: TransferStore;
  actors: DurableTransfers;
  clock: Clock;
  random: RandomSource;
  /** The timing rules a transfer requested at this time is started with. */
  policyFor: (requestedAt: number) => TransferPolicy;
  /** S3: the one-in-flight lock; off, the rows hold no lock. */
  holdLock: boolean;
};

function bodyHashOf(r: TransferRequest): string {
  const canonical = JSON.stringify([r.fromAccountId, r.toAccountId, r.amountWon, r.memo]);
  return createHash('sha256').update(canonical).digest('hex');
}

function isUniqueViolation(error: unknown, index: string): boolean {
  return error instanceof Error && 'code' in error && String(error.code).startsWith('SQLITE_CONSTRAINT') && error.message.includes(index);
}

export function createTransferService(deps: TransferServiceDeps) {
  const { store } = deps;
  const waiters = new Map<string, Set<() => void>>();

  function view(row: TransferRow): TransferView {
    const { snapshot: _s, idempotencyKey: _k, bodyHash: _b, ...rest } = row;
    return { ...rest, journal: store.journalOf(row.id), audit: store.auditOf(row.id) };
  }

  function transfer(id: string): TransferView | undefined {
    const row = store.transfer(id);
    return row === undefined ? undefined : view(row);
  }

  return {
    requestTransfer(r: TransferRequest): RequestOutcome {
      // Only a key needs the body's hash: it tells a retry from a different request under that key (S7).
      const bodyHash = r.idempotencyKey === null ? null : bodyHashOf(r);
      if (r.idempotencyKey !== null) {
        const prior = store.byKey(r.customerId, r.idempotencyKey);
        if (prior !== undefined) {
          return prior.bodyHash === bodyHash ? { kind: 'replayed', transfer: view(prior) } : { kind: 'key-reused', transferId: prior.id };
        }
      }
      const requestedAt = deps.clock.now();
      const id = timeOrderedId(deps.random, requestedAt, 'tr');
      const input: TransferInput = { transferId: id, fromAccountId: r.fromAccountId, toAccountId: r.toAccountId, amountWon: r.amountWon, memo: r.memo, requestedAt, policy: deps.policyFor(requestedAt) };
      const row = { id, customerId: r.customerId, fromAccountId: r.fromAccountId, toAccountId: r.toAccountId, amountWon: r.amountWon, memo: r.memo, requestedAt, idempotencyKey: r.idempotencyKey, bodyHash, holdsLock: deps.holdLock ? 1 : 0 } as const;
      try {
        deps.actors.begin(row, input);
      } catch (error) {
        if (isUniqueViolation(error, 'transfers.from_account_id')) {
          const inFlight = store.inFlightFrom(r.fromAccountId);
          assert(inFlight !== undefined, 'a lock violation names an unfinished transfer');
          return { kind: 'in-flight', inFlightTransferId: inFlight };
        }
        throw error;
      }
      const journal: JournalRow[] = [{ at: requestedAt, event: 'REQUEST', from: null, to: 'requested' }];
      const { customerId, fromAccountId, toAccountId, amountWon, memo } = r;
      return { kind: 'created', transfer: { id, customerId, fromAccountId, toAccountId, amountWon, memo, state: 'requested', reason: null, requestedAt, settledAt: null, journal, audit: [] } };
    },
    transfer,
    /** Called once the commit that settled a transfer has returned. */
    settled(id: string): void {
      const set = waiters.get(id);
      waiters.delete(id);
      set?.forEach((wake) => wake());
    },
    /** Resolves when the transfer settles, or after `waitMs` on the channel's clock, with the transfer as it stands. */
    waitForSettled(id: string, waitMs: number, read: () => TransferView | undefined): Promise<TransferView | undefined> {
      return new Promise((resolve) => {
        const current = store.transfer(id);
        if (current === undefined) return resolve(undefined);
        if (current.state === 'succeeded' || current.state === 'failed' || waitMs <= 0) return resolve(view(current));
        let timer: TimerHandle | null = null;
        const wake = () => {
          if (timer !== null) deps.clock.clearTimeout(timer);
          resolve(read());
        };
        timer = deps.clock.setTimeout(() => {
          waiters.get(id)?.delete(wake);
          resolve(read());
        }, waitMs);
        const set = waiters.get(id) ?? new Set();
        set.add(wake);
        waiters.set(id, set);
      });
    },
    /** A crash: whoever waited for an outcome gets the transfer as it stands (or nothing). */
    wakeAll(): void {
      for (const id of [...waiters.keys()]) this.settled(id);
    },
  };
}

export type TransferService = ReturnType<typeof createTransferService>;
