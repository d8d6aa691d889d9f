/**
 * The core on its own worker thread, seen from the channel's thread: the same operations as
 * createCoreBanking, so that src/bank.ts can wire either. The talk's core is another server;
 * here it gets the machine's second core. Link requests cross over after the channel's link
 * has applied its faults; answers come back into that link, which applies the answer faults
 * and delivers them; the relay's batches come back to be appended to log.db here, where the
 * log's faults and its consumer live. Operator calls (start, stop, opening an account, a
 * deposit) are synchronous, as they are in one thread: the caller waits on an Atomics signal
 * for the worker's reply. The simulator and the tests keep the core on their own thread.
 */
import Database from 'better-sqlite3';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { assert } from '../lib/assert.ts';
import { tsxEsmApiUrl } from '../lib/tsx-worker.ts';
import type { Synchronous } from '../lib/sqlite.ts';
import type { CoreRules } from '../machines/core-banking.ts';
import type { EventLogWriter, ProducerPosition } from '../net/event-log.ts';
import type { Link } from '../net/link.ts';
import type { LinkRequest, LinkResponse, LogRecord, Posting } from '../net/messages.ts';
import { CORE_PRODUCER, type CoreLog, type DepositInput } from './core-banking.ts';
import { createCoreStore, type CoreStore } from './core-store.ts';

/** How often a log that stopped accepting is looked at again. */
const ACCEPTING_POLL_MS = 50;
/** How long an operator call may wait for the core's thread before it counts as a crash. */
export const CORE_THREAD_CALL_TIMEOUT_MS = 30_000;

export type CoreThreadData = {
  dbPath: string;
  rules: CoreRules;
  pruneMarginMs: number;
  synchronous: Synchronous;
  replyPort: MessagePort;
  /** Where the worker posts what it sends the channel's thread (FromCore), in order. */
  eventPort: MessagePort;
  signal: SharedArrayBuffer;
  /** Whether to report each commit's time. */
  reportCommits: boolean;
  /** Whether to report each commit's duration. */
  timeCommits: boolean;
};

export type CoreThreadCall =
  /** With the relay's position in the log, which lives on the channel's thread. */
  | { op: 'start'; relayPosition: number }
  | { op: 'stop' }
  | { op: 'openAccount'; holderName: string; openingBalanceWon: number }
  | { op: 'deposit'; input: DepositInput }
  | { op: 'commitCount' }
  | { op: 'running' };

export type ToCore =
  | { t: 'request'; message: LinkRequest }
  | { t: 'call'; id: number; call: CoreThreadCall }
  | { t: 'durable'; id: number }
  /** Whether the log (on the channel's thread) takes more: the relay waits while it does not. */
  | { t: 'accepting'; accepting: boolean }
  | { t: 'close' };

/** The answer to call `id`; a boot that failed answers whatever call is waiting (id BOOT_FAILED). */
export type CallReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
export const BOOT_FAILED = -1;

export type FromCore =
  | { t: 'response'; message: LinkResponse }
  | { t: 'publish'; records: LogRecord[]; position?: ProducerPosition }
  | { t: 'durable'; id: number; ok: boolean }
  | { t: 'committed'; atMs: number }
  | { t: 'commit-timed'; durationMs: number }
  | { t: 'log'; level: 'info' | 'warn'; fields: Record<string, unknown>; message: string }
  | { t: 'ready' }
  | { t: 'boot-failed'; error: string };

export type CoreThreadDeps = {
  dbPath: string;
  /** The channel's side of the link, whose faults both directions pass through. */
  link: Link;
  /** Where the relay's batches are appended. */
  log: EventLogWriter;
  rules: CoreRules;
  pruneMarginMs: number;
  synchronous?: Synchronous;
  /** Each core commit's wall-clock time, reported once it arrives from the core's thread. */
  onCommitted?: (atMs: number) => void;
  /** The core's log lines, written on this thread. */
  logLine?: CoreLog;
  /** Each core COMMIT's duration, reported from the core's thread. */
  onCommitTimed?: (durationMs: number) => void;
};

export function createCoreThread(deps: CoreThreadDeps) {
  const { port1: replies, port2: replyPort } = new MessageChannel();
  const { port1: events, port2: eventPort } = new MessageChannel();
  const signal = new SharedArrayBuffer(4);
  const flag = new Int32Array(signal);
  const data: CoreThreadData = {
    dbPath: deps.dbPath,
    rules: deps.rules,
    pruneMarginMs: deps.pruneMarginMs,
    synchronous: deps.synchronous ?? 'FULL',
    replyPort,
    eventPort,
    signal,
    reportCommits: deps.onCommitted !== undefined,
    timeCommits: deps.onCommitTimed !== undefined,
  };
  // Node 20 does not carry tsx's loader into workers: the worker registers it, then loads the core.
  const entry = new URL('./core-worker.ts', import.meta.url).href;
  const tsxApi = tsxEsmApiUrl();
  // A boot that fails answers the first call with its error, which is waiting for it on the signal.
  const boot = `const { workerData } = require('node:worker_threads');
    import(${JSON.stringify(tsxApi)})
      .then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })
      .catch((error) => {
        const why = 'the core thread did not start: ' + (error && error.stack || error);
        workerData.eventPort.postMessage({ t: 'boot-failed', error: why });
        workerData.replyPort.postMessage({ id: ${BOOT_FAILED}, ok: false, error: why });
        const signal = new Int32Array(workerData.signal);
        Atomics.store(signal, 0, 1);
        Atomics.notify(signal, 0);
      });`;
  const worker = new Worker(boot, { eval: true, workerData: data, transferList: [replyPort, eventPort] });
  let failure: string | null = null;
  let closing = false;
  // An error thrown on the core's thread is not caught here: as on one thread, it ends the process.
  worker.on('exit', (code) => {
    failure ??= `the core's thread exited with code ${code}`;
    booted?.reject(new Error(failure));
    if (closing) return;
    // Gone without an error: a core that is down, whose writes so far may not be durable.
    running = false;
    deps.link.onRequest(null);
    rejectWaiting();
  });

  let nextDurable = 1;
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let running = false;
  let reads: CoreStore | null = null;

  function rejectWaiting(): void {
    for (const w of waiting.values()) w.reject(new Error('the core stopped before its writes were durable'));
    waiting.clear();
  }

  let booted: { resolve: () => void; reject: (e: Error) => void } | null = null;
  const ready = new Promise<void>((resolve, reject) => (booted = { resolve, reject }));
  // Nobody need wait for it; a failed boot also answers the first call with its error.
  ready.catch(() => undefined);

  function handle(m: FromCore): void {
    // A closed bank takes nothing more: log.db is closed, and the channel has stopped.
    if (closing) return;
    switch (m.t) {
      case 'ready':
        booted?.resolve();
        return;
      case 'boot-failed':
        booted?.reject(new Error(m.error));
        return;
      case 'response':
        deps.link.respond(m.message);
        return;
      case 'publish':
        deps.log.publish(m.records, m.position);
        watchAccepting();
        return;
      case 'committed':
        deps.onCommitted?.(m.atMs);
        return;
      case 'log':
        deps.logLine?.(m.level, m.fields, m.message);
        return;
      case 'commit-timed':
        deps.onCommitTimed?.(m.durationMs);
        return;
      case 'durable': {
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        if (m.ok) w?.resolve();
        else w?.reject(new Error('the core stopped before its writes were durable'));
        return;
      }
    }
  }
  events.on('message', handle);

  /** Tells the worker when the log stops taking records, and again once it takes them (polled). */
  let refusing: NodeJS.Timeout | null = null;
  function watchAccepting(): void {
    if (refusing !== null || deps.log.accepting?.() !== false) return;
    worker.postMessage({ t: 'accepting', accepting: false } satisfies ToCore);
    refusing = setInterval(() => {
      if (closing || deps.log.accepting?.() === false) return;
      clearInterval(refusing!);
      refusing = null;
      if (!closing) worker.postMessage({ t: 'accepting', accepting: true } satisfies ToCore);
    }, ACCEPTING_POLL_MS);
  }

  /**
   * What the worker sent before it answered the call just made, handled now: after a stop, the
   * batches it had committed are appended to the log before anything else happens (a restart
   * then reads the relay's position with them in it, and publishes nothing twice).
   */
  function takeSent(): void {
    for (let m = receiveMessageOnPort(events); m !== undefined; m = receiveMessageOnPort(events)) handle(m.message as FromCore);
  }

  let lastCall = 0;

  /** One operator call, answered before it returns (the worker's first answer waits for its boot). */
  function call<T>(c: CoreThreadCall): T {
    assert(failure === null, `the core's thread is gone: ${failure}`);
    const id = ++lastCall;
    Atomics.store(flag, 0, 0);
    worker.postMessage({ t: 'call', id, call: c } satisfies ToCore);
    if (Atomics.wait(flag, 0, 0, CORE_THREAD_CALL_TIMEOUT_MS) === 'timed-out') {
      // A core that does not answer is gone: its late answer must never pass for another call's.
      failure = `the core's thread did not answer ${c.op} within ${CORE_THREAD_CALL_TIMEOUT_MS} ms`;
      void worker.terminate();
      throw new Error(failure);
    }
    for (let m = receiveMessageOnPort(replies); m !== undefined; m = receiveMessageOnPort(replies)) {
      const reply = m.message as CallReply;
      if (reply.id !== id && reply.id !== BOOT_FAILED) continue; // an answer nobody waits for any more
      if (!reply.ok) throw new Error(reply.error);
      return reply.value as T;
    }
    throw new Error(`the core's thread signalled ${c.op} without an answer`);
  }

  function readModel(): CoreStore {
    assert(running, 'core banking is not running');
    // Committed state only, on a connection of its own: what tests and the invariant checks read.
    reads ??= createCoreStore(new Database(deps.dbPath, { readonly: true, fileMustExist: true }));
    return reads;
  }

  return {
    /**
     * Resolves once the core's thread has loaded (about 150 ms of module loading, which would
     * otherwise be spent blocked in the first call): await it before `start` to keep the event
     * loop free meanwhile.
     */
    ready: (): Promise<void> => ready,
    start(): void {
      call({ op: 'start', relayPosition: deps.log.producerPosition(CORE_PRODUCER) });
      running = true;
      deps.link.onRequest((message) => worker.postMessage({ t: 'request', message } satisfies ToCore));
    },
    /** A crash of the core that keeps its disk: requests that arrive meanwhile are lost. */
    stop(): void {
      if (!running) return;
      running = false;
      deps.link.onRequest(null);
      call({ op: 'stop' });
      takeSent();
      rejectWaiting();
    },
    commitCount: (): number => call<number>({ op: 'commitCount' }),
    durable(): Promise<void> {
      if (!running) return Promise.reject(new Error('core banking is not running'));
      const id = nextDurable++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.postMessage({ t: 'durable', id } satisfies ToCore);
      });
    },
    get running(): boolean {
      return running && call<boolean>({ op: 'running' });
    },
    openAccount: (holderName: string, openingBalanceWon: number): { accountId: number; balanceWon: number } =>
      call({ op: 'openAccount', holderName, openingBalanceWon }),
    deposit: (input: DepositInput): Posting | 'unknown-account' => call({ op: 'deposit', input }),
    readModel,
    /** Stops the core and ends its thread (the bank is closing). */
    close(): void {
      this.stop();
      closing = true;
      if (refusing !== null) clearInterval(refusing);
      events.close();
      reads?.db.close();
      reads = null;
      worker.postMessage({ t: 'close' } satisfies ToCore);
      void worker.terminate();
    },
  };
}

export type CoreThread = ReturnType<typeof createCoreThread>;
