/**
 * The split mode's link (npm run start:core / start:channel): the two sides meet only through
 * NATS. Link messages are plain NATS publishes, at most once: the unreliable network the
 * transfer protocol is built for (timeouts, queries, idempotent EXECUTE), so nothing here adds
 * delivery guarantees the protocol does not need. The link faults are applied at the channel's
 * end, to both directions, by the same carrier as the in-process link's. The operator's calls
 * that act on the core (open an account, a deposit, a restart) are NATS request/reply; the
 * core answers once what it did is durable.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { DepositInput } from '../core/core-banking.ts';
import type { Logger } from '../lib/logger.ts';
import { createCarrier, type Link, type LinkOptions } from './link.ts';
import type { LinkRequest, LinkResponse, Posting } from './messages.ts';

/** How long the channel waits for the core to answer an operator's call. */
export const CORE_CALL_TIMEOUT_MS = 5_000;

const subjects = (prefix: string) => ({
  request: `${prefix}.link.request`,
  response: `${prefix}.link.response`,
  ops: `${prefix}.core.ops`,
});

/**
 * Takes each message on `subject` as JSON: `take` gets it with the raw message (an operator
 * call answers on it); one that does not parse goes to `unreadable`, or is dropped with a warning.
 */
function subscribeJson<T>(nc: NatsConnection, subject: string, what: string, logger: Logger | undefined, take: (message: T, raw: Msg) => void, unreadable?: (raw: Msg) => void): Subscription {
  return nc.subscribe(subject, {
    callback: (error, msg) => {
      if (error !== null) return logger?.warn({ err: error.message, subject }, `the ${what} subscription failed`);
      let message: T;
      try {
        message = msg.json<T>();
      } catch {
        if (unreadable !== undefined) return unreadable(msg);
        return logger?.warn({ subject: msg.subject }, `an unreadable ${what} was dropped`);
      }
      take(message, msg);
    },
  });
}

/** The channel's end: requests out through the faults, answers in through the faults. */
export function channelLinkOverNats(nc: NatsConnection, prefix: string, options: LinkOptions, logger?: Logger): Link & { close(): void } {
  const s = subjects(prefix);
  const carry = createCarrier(options);
  let toChannel: ((m: LinkResponse) => void) | null = null;
  const sub = subscribeJson<LinkResponse>(nc, s.response, 'link answer', logger, (message) => carry('response', message, (w) => toChannel?.(w)));
  return {
    request: (m) => carry('request', m, (w) => nc.publish(s.request, JSON.stringify(w))),
    onResponse: (h) => {
      toChannel = h;
    },
    respond: () => {
      throw new Error('the channel does not answer link requests');
    },
    onRequest: () => {
      throw new Error('the channel does not take link requests');
    },
    close: () => sub.unsubscribe(),
  };
}

/** The core's end: requests in as they come, answers out as they are made. */
export function coreLinkOverNats(nc: NatsConnection, prefix: string, logger?: Logger): Link & { close(): void } {
  const s = subjects(prefix);
  let toCore: ((m: LinkRequest) => void) | null = null;
  const sub = subscribeJson<LinkRequest>(nc, s.request, 'link request', logger, (message) => toCore?.(message));
  return {
    onRequest: (h) => {
      toCore = h;
    },
    respond: (m) => nc.publish(s.response, JSON.stringify(m)),
    request: () => {
      throw new Error('the core does not send link requests');
    },
    onResponse: () => {
      throw new Error('the core does not take link answers');
    },
    close: () => sub.unsubscribe(),
  };
}

/** What the operator asks of the core in the split mode. */
export type CoreOp =
  | { op: 'openAccount'; holderName: string; openingBalanceWon: number }
  | { op: 'deposit'; input: DepositInput }
  | { op: 'restart' }
  /** Commits of core.db and appends to the log made by the core process (the benchmark's commits per transfer). */
  | { op: 'commitCount' }
  /** Records the core's publisher holds that the stream has not acknowledged yet (the benchmark waits for 0). */
  | { op: 'backlog' };

type CoreOpReply = { ok: true; value: unknown } | { ok: false; error: string };

/** The operator's calls, as the channel makes them: each resolves once the core's change is durable. */
export type RemoteCoreOps = {
  openAccount(holderName: string, openingBalanceWon: number): Promise<{ accountId: number; balanceWon: number }>;
  deposit(input: DepositInput): Promise<Posting | 'unknown-account'>;
  restart(): Promise<void>;
  commitCount(): Promise<number>;
  backlog(): Promise<number>;
};

/**
 * The core did not answer an operator's call. `notDone`: no core was listening (NATS said so at
 * once), so nothing was done; otherwise (no answer in time) nothing is known of its effect.
 */
export class CoreUnavailable extends Error {
  override name = 'CoreUnavailable';
  constructor(
    message: string,
    readonly notDone: boolean,
  ) {
    super(message);
  }
}

export function remoteCoreOps(nc: NatsConnection, prefix: string, timeoutMs = CORE_CALL_TIMEOUT_MS): RemoteCoreOps {
  const s = subjects(prefix);
  async function call<T>(op: CoreOp): Promise<T> {
    let reply: CoreOpReply;
    try {
      reply = (await nc.request(s.ops, JSON.stringify(op), { timeout: timeoutMs })).json<CoreOpReply>();
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (/no responders/i.test(why)) throw new CoreUnavailable(`the core is not running (no core server takes ${op.op} on NATS)`, true);
      throw new CoreUnavailable(`the core did not answer ${op.op} within ${timeoutMs} ms: ${why}`, false);
    }
    if (!reply.ok) throw new Error(reply.error);
    return reply.value as T;
  }
  return {
    openAccount: (holderName, openingBalanceWon) => call({ op: 'openAccount', holderName, openingBalanceWon }),
    deposit: (input) => call({ op: 'deposit', input }),
    restart: () => call({ op: 'restart' }),
    commitCount: () => call({ op: 'commitCount' }),
    backlog: () => call({ op: 'backlog' }),
  };
}

/** The core's side of the operator's calls: `perform` answers each once its change is durable. */
export function serveCoreOps(nc: NatsConnection, prefix: string, perform: (op: CoreOp) => Promise<unknown>, logger?: Logger): { close(): void } {
  const s = subjects(prefix);
  const answer = (raw: Msg, reply: CoreOpReply) => void raw.respond(JSON.stringify(reply));
  const sub = subscribeJson<CoreOp>(
    nc,
    s.ops,
    'operator call',
    logger,
    (op, raw) =>
      perform(op).then(
        (value) => answer(raw, { ok: true, value: value ?? null }),
        (e: unknown) => answer(raw, { ok: false, error: e instanceof Error ? e.message : String(e) }),
      ),
    (raw) => answer(raw, { ok: false, error: 'an unreadable operator call' }),
  );
  return { close: () => sub.unsubscribe() };
}
