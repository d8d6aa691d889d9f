/**
 * The core on a thread of its own (see core-thread.ts): the talk's core banking server, which
 * is another machine, here another thread with its own event loop, its own SQLite connection
 * and its own fsyncs. It meets the channel's thread only through messages: link requests in,
 * link answers and relay batches out, and the few operator calls (start, stop, open an
 * account, a deposit, durability, commit counts).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { createSystemClock } from '../lib/clock.ts';
import type { EventLogWriter, ProducerPosition } from '../net/event-log.ts';
import type { Link } from '../net/link.ts';
import type { LinkRequest, LinkResponse, LogRecord } from '../net/messages.ts';
import { createCoreBanking, type DepositInput } from './core-banking.ts';
import type { CallReply, CoreThreadCall, CoreThreadData, FromCore, ToCore } from './core-thread.ts';

const data = workerData as CoreThreadData;
const port = parentPort!;
const events: MessagePort = data.eventPort;
const replies: MessagePort = data.replyPort;
const signal = new Int32Array(data.signal);

const post = (message: FromCore) => events.postMessage(message);

let toCore: ((m: LinkRequest) => void) | null = null;
/** The core's side of the link: answers go to the channel's thread, whose link carries them on. */
const link: Link = {
  onRequest: (handler) => {
    toCore = handler;
  },
  respond: (message: LinkResponse) => post({ t: 'response', message }),
  request: () => {
    throw new Error('the core does not send requests');
  },
  onResponse: () => {
    throw new Error('the core does not take answers');
  },
};

// The appends are the channel thread's, which owns the log (its fault queue and its consumer
// live there); the relay's position comes from there with each start.
let relayPosition = 0;
let accepting = true;
const log: EventLogWriter = {
  publish: (records: LogRecord[], position?: ProducerPosition) => post({ t: 'publish', records, position }),
  producerPosition: () => relayPosition,
  accepting: () => accepting,
  // Counted where the appends happen, on the channel's thread.
  commits: 0,
};

const core = createCoreBanking({
  dbPath: data.dbPath,
  clock: createSystemClock(),
  link,
  log,
  rules: data.rules,
  pruneMarginMs: data.pruneMarginMs,
  synchronous: data.synchronous,
  onCommitted: data.reportCommits ? () => post({ t: 'committed', atMs: Date.now() }) : undefined,
  // Written by the channel's thread, in its format, to its destination.
  logLine: (level, fields, message) => post({ t: 'log', level, fields, message }),
  onCommitTimed: data.timeCommits ? (durationMs) => post({ t: 'commit-timed', durationMs }) : undefined,
});

function perform(call: CoreThreadCall): unknown {
  switch (call.op) {
    case 'start':
      relayPosition = call.relayPosition;
      return core.start();
    case 'stop':
      return core.stop();
    case 'openAccount':
      return core.openAccount(call.holderName, call.openingBalanceWon);
    case 'deposit':
      return core.deposit(call.input satisfies DepositInput);
    case 'commitCount':
      return core.commitCount();
    case 'running':
      return core.running;
  }
}

post({ t: 'ready' });

port.on('message', (message: ToCore) => {
  switch (message.t) {
    case 'request':
      toCore?.(message.message);
      return;
    case 'accepting':
      accepting = message.accepting;
      return;
    case 'call': {
      // The caller waits on `signal`: the reply is on its port before the signal moves.
      const { id } = message;
      try {
        replies.postMessage({ id, ok: true, value: perform(message.call) } satisfies CallReply);
      } catch (error) {
        replies.postMessage({ id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies CallReply);
      }
      Atomics.store(signal, 0, 1);
      Atomics.notify(signal, 0);
      return;
    }
    case 'durable':
      if (!core.running) {
        post({ t: 'durable', id: message.id, ok: false });
        return;
      }
      core.durable().then(
        () => post({ t: 'durable', id: message.id, ok: true }),
        () => post({ t: 'durable', id: message.id, ok: false }),
      );
      return;
    case 'close':
      core.stop();
      events.close();
      port.close();
      return;
  }
});
