/**
 * GET /transfers/:id/stream: server-sent events for one transfer. The first event is the
 * transfer as it stands (`transfer`), then one `transition` per committed transition
 * ({at, event, from, to, reason}), and `end` once it has settled. Only its owner or the admin may watch.
 */
import { Hono } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { TransitionListener } from '../../channel/channel.ts';
import type { AppDeps, AppEnv } from '../env.ts';
import { mayRead } from '../auth.ts';
import { parseWith } from '../body.ts';
import { Problem, notFound, unauthorized } from '../problem.ts';
import { transferIdParam } from '../schemas.ts';
import { iso, transferJson } from '../serialize.ts';

/** Limits: open streams in all and per customer, queued steps per stream, a stream's life, keep-alive pace. */
export const MAX_OPEN_STREAMS = 1000;
/** One customer may not take the global bound from everyone else (429 past it). */
export const MAX_STREAMS_PER_CUSTOMER = 20;
export const MAX_QUEUED_STEPS = 100;
export const STREAM_LIFETIME_MS = 10 * 60_000;
export const KEEP_ALIVE_MS = 15_000;
/** After `end`, how long the server waits for the client to hang up before it closes. */
export const LINGER_MS = 5_000;

type Step = Parameters<TransitionListener>[1];
const isFinal = (state: string) => state === 'succeeded' || state === 'failed';

export type TransferStreamOptions = {
  /** Real-time pacing for keep-alives and the lifetime cap; tests shorten them. */
  keepAliveMs?: number;
  lifetimeMs?: number;
  lingerMs?: number;
  /** Aborted when the server shuts down: every open stream ends at once, instead of holding the stop. */
  signal?: AbortSignal;
  /** The bound on open streams in all (MAX_OPEN_STREAMS); tests lower it. */
  maxOpen?: number;
};

export function transferStreamRoutes({ bank }: AppDeps, options: TransferStreamOptions = {}) {
  const app = new Hono<AppEnv>();
  let open = 0;
  /** Open streams by the customer whose token opened them (the admin's are counted in `open` only). */
  const byCustomer = new Map<number, Set<Follower>>();
  // A revoked token is refused at once on new requests; the streams it opened end here.
  bank.channel.onTokensRevoked((customerId) => {
    for (const f of byCustomer.get(customerId) ?? []) f.revoke();
  });
  const all = new Set<Follower>();
  options.signal?.addEventListener('abort', () => all.forEach((f) => f.shutDown()));

  app.get('/:id/stream', (c) => {
    const id = parseWith(transferIdParam, c.req.param('id'), 'transfer id');
    const transfer = bank.channel.transfer(id);
    if (transfer === undefined) throw notFound(`no transfer ${id}`);
    mayRead(c, transfer.customerId, `no transfer ${id}`);
    const principal = c.get('principal');
    const customerId = principal.kind === 'customer' ? principal.customer.id : null;
    const mine = customerId === null ? null : (byCustomer.get(customerId) ?? new Set<Follower>());
    if (mine !== null && mine.size >= MAX_STREAMS_PER_CUSTOMER) {
      throw new Problem(429, 'Too Many Streams', `at most ${MAX_STREAMS_PER_CUSTOMER} transfer streams may be open per customer; close one first`);
    }
    const maxOpen = options.maxOpen ?? MAX_OPEN_STREAMS;
    if (open >= maxOpen) throw new Problem(503, 'Too Many Streams', `at most ${maxOpen} transfer streams may be open at once`);
    if (options.signal?.aborted) throw new Problem(503, 'Shutting Down', 'the server is stopping; try again once it is back');
    const follower = newFollower();
    all.add(follower);
    open += 1;
    if (mine !== null) {
      mine.add(follower);
      byCustomer.set(customerId!, mine);
    }
    return streamSSE(c, async (stream) => {
      try {
        await follow(stream, id, follower);
      } finally {
        open -= 1;
        all.delete(follower);
        if (mine !== null) {
          mine.delete(follower);
          if (mine.size === 0) byCustomer.delete(customerId!);
        }
      }
    });
  });

  /** False when the channel stopped before its writes so far became durable. */
  const durableOrGone = () => bank.channel.durable().then(() => true, () => false);

  async function follow(stream: SSEStreamingApi, id: string, follower: Follower): Promise<void> {
    const queue: Step[] = [];
    let overflowed = false;
    let wake: (() => void) | null = null;
    follower.onWake(() => wake?.());
    // Subscribe and read the transfer in one synchronous block: no transition can fall between.
    const unsubscribe = bank.channel.onTransition((transferId, step) => {
      if (transferId !== id) return;
      if (queue.length < MAX_QUEUED_STEPS) queue.push(step);
      else overflowed = true;
      wake?.();
    });
    stream.onAbort(() => wake?.());
    // The stream's token no longer exists: say so, and close; a reconnect gets the 401.
    const sayRevoked = () => stream.writeSSE({ event: 'problem', data: JSON.stringify(REVOKED_PROBLEM) });
    const deadline = Date.now() + (options.lifetimeMs ?? STREAM_LIFETIME_MS);
    try {
      // Commit, then effect: what the snapshot shows may be in the open batch; it leaves once durable.
      const first = bank.channel.transfer(id);
      if (first === undefined || !(await durableOrGone())) return;
      // Revoked while the snapshot was becoming durable: the revoked token gets nothing of it.
      if (follower.revoked) return await sayRevoked();
      let seq = first.journal.length;
      await stream.writeSSE({ event: 'transfer', id: String(seq), data: JSON.stringify(transferJson(first)) });
      let settled = isFinal(first.state);
      while (!settled && !stream.aborted && Date.now() < deadline) {
        if (queue.length === 0 && !follower.revoked && !follower.shuttingDown) await pause(options.keepAliveMs ?? KEEP_ALIVE_MS, (w) => (wake = w));
        if (follower.shuttingDown) return; // EventSource reconnects once the server is back
        if (follower.revoked) return await sayRevoked();
        if (overflowed) return; // a slow reader: close, and EventSource reconnects to a fresh snapshot
        if (queue.length === 0 && !stream.aborted) await stream.write(': keep-alive\n\n');
        for (let step = queue.shift(); step !== undefined; step = queue.shift()) {
          if (step.n <= seq) continue; // already in the snapshot
          seq = step.n;
          const final = isFinal(step.to);
          const reason = final && bank.channel.running ? (bank.channel.transfer(id)?.reason ?? null) : null;
          const data = { at: iso(step.at), event: step.event, from: step.from, to: step.to, reason };
          await stream.writeSSE({ event: 'transition', id: String(seq), data: JSON.stringify(data) });
          settled ||= final;
        }
      }
      if (follower.revoked && !stream.aborted) return await sayRevoked();
      if (settled && !stream.aborted) {
        await stream.writeSSE({ event: 'end', data: '{}' });
        // Closing first would make EventSource reconnect; the page closes on `end`.
        await pause(options.lingerMs ?? LINGER_MS, (w) => (wake = w));
      }
    } finally {
      unsubscribe();
      wake = null;
    }
  }

  return app;
}

const REVOKED_PROBLEM = unauthorized('the token that opened this stream was revoked').body();

/** One open stream, as the revocation of its customer's tokens sees it. */
type Follower = { readonly revoked: boolean; readonly shuttingDown: boolean; revoke(): void; shutDown(): void; onWake(wake: () => void): void };

function newFollower(): Follower {
  let revoked = false;
  let shuttingDown = false;
  let wake: (() => void) | null = null;
  return {
    get revoked() {
      return revoked;
    },
    get shuttingDown() {
      return shuttingDown;
    },
    revoke() {
      revoked = true;
      wake?.();
    },
    shutDown() {
      shuttingDown = true;
      wake?.();
    },
    onWake(w) {
      wake = w;
    },
  };
}

/** Waits for `ms` or until the registered waker is called, whichever is first. */
function pause(ms: number, register: (wake: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    register(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
