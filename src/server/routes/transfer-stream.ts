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
import { Problem, notFound } from '../problem.ts';
import { transferIdParam } from '../schemas.ts';
import { iso, transferJson } from '../serialize.ts';

/** Limits: open streams in all, queued steps per stream, a stream's life, keep-alive pace. */
export const MAX_OPEN_STREAMS = 1000;
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
};

export function transferStreamRoutes({ bank }: AppDeps, options: TransferStreamOptions = {}) {
  const app = new Hono<AppEnv>();
  let open = 0;

  app.get('/:id/stream', (c) => {
    const id = parseWith(transferIdParam, c.req.param('id'), 'transfer id');
    const transfer = bank.channel.transfer(id);
    if (transfer === undefined) throw notFound(`no transfer ${id}`);
    mayRead(c, transfer.customerId);
    if (open >= MAX_OPEN_STREAMS) throw new Problem(503, 'Too Many Streams', `at most ${MAX_OPEN_STREAMS} transfer streams may be open at once`);
    open += 1;
    return streamSSE(c, async (stream) => {
      try {
        await follow(stream, id);
      } finally {
        open -= 1;
      }
    });
  });

  /** False when the channel stopped before its writes so far became durable. */
  const durableOrGone = () => bank.channel.durable().then(() => true, () => false);

  async function follow(stream: SSEStreamingApi, id: string): Promise<void> {
    const queue: Step[] = [];
    let overflowed = false;
    let wake: (() => void) | null = null;
    // Subscribe and read the transfer in one synchronous block: no transition can fall between.
    const unsubscribe = bank.channel.onTransition((transferId, step) => {
      if (transferId !== id) return;
      if (queue.length < MAX_QUEUED_STEPS) queue.push(step);
      else overflowed = true;
      wake?.();
    });
    stream.onAbort(() => wake?.());
    const deadline = Date.now() + (options.lifetimeMs ?? STREAM_LIFETIME_MS);
    try {
      // Commit, then effect: what the snapshot shows may be in the open batch; it leaves once durable.
      const first = bank.channel.transfer(id);
      if (first === undefined || !(await durableOrGone())) return;
      let seq = first.journal.length;
      await stream.writeSSE({ event: 'transfer', id: String(seq), data: JSON.stringify(transferJson(first)) });
      let settled = isFinal(first.state);
      while (!settled && !stream.aborted && Date.now() < deadline) {
        if (queue.length === 0) await pause(options.keepAliveMs ?? KEEP_ALIVE_MS, (w) => (wake = w));
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
