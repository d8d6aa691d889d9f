/**
 * The JetStream log's producer side: the relay's records leave in order, pipelined on one
 * connection, each with `msgID` `<producer>-<outbox id>`. A window that fails (or a server
 * restart under it) is sent again whole: the stream holds a prefix of it, and msgIDs keep that
 * prefix stored once, so the stream keeps the relay's order. Each acknowledged position is kept
 * in the producers stream, where retention does not reach. The log faults apply here, as on the
 * embedded log; a duplicate goes without its msgID (a retry past the window), so it lands twice.
 */
import { headers } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import type { ProducerPosition } from './event-log.ts';
import type { FaultQueue } from './faults.ts';
import { ensureStreams, OUTBOX_ID, PRODUCER, retryWaitMs, sleep, type JetStreamLogSettings } from './jetstream-streams.ts';
import { logKey, type LogRecord } from './messages.ts';

/** Records published in one pipelined window, acknowledged together. */
export const PUBLISH_WINDOW = 512;

type Outgoing = { subject: string; data: string; producer: string | null; id: number | null; withMsgId: boolean };

export type PublisherDeps = {
  js: JetStreamClient;
  jsm: JetStreamManager;
  settings: JetStreamLogSettings;
  clock: Clock;
  faults: FaultQueue;
  logger: Logger;
  /** Each producer's position when the process opened the stream. */
  positions: Map<string, number>;
  /** Registers a callback for each reconnect of the connection. */
  onReconnect: (f: () => void) => void;
  /** Each acknowledged window's highest stream sequence. */
  onStored: (seq: number) => void;
  onAppendTimed?: (durationMs: number) => void;
};

export function createPublisher(deps: PublisherDeps) {
  const { js, settings, logger, positions } = deps;
  const queue: Outgoing[] = [];
  let pumping: Promise<void> | null = null;
  let commits = 0;
  let closed = false;
  /** Each producer's position as acknowledged, and as last written to the producers stream. */
  const acked = new Map<string, number>();
  const kept = new Map<string, number>(positions);

  /** Resolves at the next reconnect: acknowledgements asked for before it will never come. */
  const nextReconnect = () => {
    let resolve!: (v: 'reconnected') => void;
    const promise = new Promise<'reconnected'>((r) => (resolve = r));
    return { promise, resolve };
  };
  let reconnect = nextReconnect();
  deps.onReconnect(() => {
    const r = reconnect;
    reconnect = nextReconnect();
    r.resolve('reconnected');
  });

  function outgoing(record: LogRecord, producer: string | null, id: number | null, withMsgId = true): Outgoing {
    return { subject: `${settings.subjectPrefix}.log.${logKey(record)}`, data: JSON.stringify(record), producer, id, withMsgId };
  }

  function send(o: Outgoing): Promise<PubAck> {
    const h = headers();
    if (o.producer !== null && o.id !== null) {
      h.set(PRODUCER, o.producer);
      h.set(OUTBOX_ID, String(o.id));
    }
    const msgID = o.withMsgId && o.producer !== null && o.id !== null ? `${o.producer}-${o.id}` : undefined;
    return js.publish(o.subject, o.data, { headers: h, ...(msgID === undefined ? {} : { msgID }) });
  }

  /** One window out and acknowledged: its acks, 'reconnected' (send it again), or a throw (wait, then send it again). */
  async function sendWindow(window: Outgoing[]): Promise<PubAck[] | 'reconnected'> {
    const sent = Promise.all(window.map(send));
    sent.catch(() => undefined); // abandoned at a reconnect: its rejection is nobody's
    return Promise.race([sent, reconnect.promise]);
  }

  async function pump(): Promise<void> {
    let failures = 0;
    while (queue.length > 0 && !closed) {
      const window = queue.slice(0, PUBLISH_WINDOW);
      const started = performance.now();
      let acks: PubAck[] | 'reconnected';
      try {
        acks = await sendWindow(window);
      } catch (error) {
        if (closed) return;
        if (failures++ === 0) logger.warn({ err: error instanceof Error ? error.message : String(error), waiting: queue.length }, 'publishing to the event log failed; retrying');
        await sleep(retryWaitMs(failures));
        // A stream deleted under the bank is made again (its records are gone: the channel finds
        // its position past the new stream's end and reads it from the start).
        await ensureStreams(deps.jsm, settings, 'writer', logger).catch(() => undefined);
        continue;
      }
      if (acks === 'reconnected') continue;
      if (failures > 0) logger.info({ waiting: queue.length }, 'publishing to the event log again');
      failures = 0;
      queue.splice(0, window.length);
      commits++;
      deps.onAppendTimed?.(performance.now() - started);
      deps.onStored(Math.max(...acks.map((a) => a.seq)));
      for (const o of window) if (o.producer !== null && o.id !== null) acked.set(o.producer, Math.max(acked.get(o.producer) ?? 0, o.id));
      await keepPositions();
    }
  }

  /** Writes each producer's acknowledged position to the producers stream, where retention does not reach. */
  async function keepPositions(): Promise<void> {
    for (const [producer, position] of acked) {
      if ((kept.get(producer) ?? 0) >= position) continue;
      try {
        await js.publish(`${settings.subjectPrefix}.producer.${producer}`, JSON.stringify({ position }));
        kept.set(producer, Math.max(kept.get(producer) ?? 0, position));
      } catch {
        // Behind is safe: a relay that starts from an older position publishes duplicates, no loss.
      }
    }
  }

  function enqueue(items: Outgoing[]): void {
    if (items.length === 0) return;
    queue.push(...items);
    startPump();
  }

  function startPump(): void {
    pumping ??= pump().finally(() => {
      pumping = null;
      // What arrived between the pump's last look and this moment goes too.
      if (queue.length > 0 && !closed) startPump();
    });
  }

  return {
    publish(records: LogRecord[], position?: ProducerPosition): void {
      const producer = position?.producer ?? null;
      const ids = position?.ids;
      const now: Outgoing[] = [];
      records.forEach((record, i) => {
        const id = ids?.[i] ?? null;
        const fate = deps.faults.next('log');
        if (fate.action === 'drop') return;
        if (fate.action === 'delay') deps.clock.setTimeout(() => enqueue([outgoing(record, producer, id)]), fate.delayMs);
        else if (fate.action === 'duplicate') now.push(outgoing(record, producer, id), outgoing(record, producer, id, false));
        else now.push(outgoing(record, producer, id));
      });
      enqueue(now);
      // The relay moves on once its records are queued here: what is queued leaves, in order,
      // while this process lives. A process that dies with some queued starts from the stream.
      if (position !== undefined) positions.set(position.producer, Math.max(positions.get(position.producer) ?? 0, position.position));
    },
    producerPosition: (producer: string): number => positions.get(producer) ?? 0,
    accepting: (): boolean => queue.length < settings.maxQueued,
    get commits(): number {
      return commits;
    },
    /** Records waiting to be published (the in-memory queue before the server's acknowledgement). */
    backlog: (): number => queue.length,
    /** Nothing queued and nothing on its way. */
    settled: (): boolean => queue.length === 0 && pumping === null,
    /** Sends what is queued for as long as the server answers (up to `waitMs`), then stops. */
    async close(waitMs: number): Promise<void> {
      const deadline = Date.now() + waitMs;
      while ((queue.length > 0 || pumping !== null) && Date.now() < deadline) await sleep(5);
      closed = true;
    },
  };
}

export type Publisher = ReturnType<typeof createPublisher>;
