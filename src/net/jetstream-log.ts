/**
 * The event log on NATS JetStream (EVENT_LOG=nats://host:port): the same interface as the
 * embedded log in log.db, with its Kafka semantics kept.
 *
 * - One stream holds the log; each record goes to the subject `<prefix>.log.<account>` (its
 *   key). The offset is the stream sequence: one total order, which holds every account's order.
 * - The relay publishes with `msgID` `<producer>-<outbox id>`: a retry within the stream's
 *   duplicate window is stored once. Past the window it is stored twice, and the consumer's
 *   idempotence (S8) takes the copy.
 * - Publishes leave in order, pipelined on one connection; a window that fails is sent again
 *   whole (what was stored comes back a duplicate), so the stream keeps the relay's order
 *   (jetstream-publisher.ts).
 * - The producer's position is the outbox id of the last record the stream holds (a header),
 *   and, because retention may have removed that record, a second stream keeps each producer's
 *   latest acknowledged position (one message per subject, no age limit).
 * - Reads come from a buffer that an ordered consumer fills from the offset asked for (Kafka's
 *   fetcher): `read` stays synchronous. The channel's position stays in channel.db (S8); this
 *   consumer is ephemeral and acks nothing (jetstream-reader.ts).
 * - Retention is the stream's `max_age`. When the records after the channel's position are
 *   gone, `readableFrom` says where the consumer can go on: it logs the loss and repairs
 *   from the core (src/channel/log-consumer.ts), it never skips silently.
 * - The log faults apply where the records are published, as on the embedded log; a duplicate
 *   goes without its msgID (a retry past the window), so it does land twice.
 *
 * This file connects, makes the streams (jetstream-streams.ts), and joins the two halves into
 * the EventLog the bank takes.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Clock } from '../lib/clock.ts';
import { silentLogger, type Logger } from '../lib/logger.ts';
import type { EventLog } from './event-log.ts';
import type { FaultQueue } from './faults.ts';
import { createPublisher } from './jetstream-publisher.ts';
import { createReader, type StreamEnd } from './jetstream-reader.ts';
import { ensureStreams, sleep, streamStart, type JetStreamLogSettings, type JetStreamRole, type StreamStart } from './jetstream-streams.ts';

export { DEFAULT_JETSTREAM_SETTINGS, MAX_QUEUED, type JetStreamLogSettings, type JetStreamRole } from './jetstream-streams.ts';

export type JetStreamOpenOptions = {
  role?: JetStreamRole;
  logger?: Logger;
};

/** What the bank hands the log when it makes it: its clock (the wake-ups and delays) and its faults. */
export type JetStreamLogParts = {
  clock: Clock;
  faults: FaultQueue;
  /** How long each acknowledged window of publishes took (the metrics' log commit durations). */
  onAppendTimed?: (durationMs: number) => void;
};

/** How long `idle` waits for the server before it fails. */
export const IDLE_TIMEOUT_MS = 20_000;
/** How long closing waits for what is queued to be acknowledged. */
export const CLOSE_WAIT_MS = 5_000;

export type JetStreamLog = EventLog & {
  readonly settings: JetStreamLogSettings;
  /** Resolves once every publish is acknowledged and the reader has fetched up to the stream's end: tests step on it. */
  idle(): Promise<void>;
  /** Records waiting to be published (the in-memory queue before the server's acknowledgement). */
  backlog(): number;
  /** Sends what is queued (for up to 5 s while the server answers), then stops reading. */
  close(): Promise<void>;
};

/** A connection to the server with the streams in place: `eventLog` makes the bank's log on it. */
export type JetStreamConnection = {
  readonly settings: JetStreamLogSettings;
  /** The connection itself: the split mode's link and operator calls ride on it too. */
  readonly nats: NatsConnection;
  /** The log, made once per bank (the bank's clock and fault queue go in). */
  eventLog(parts: JetStreamLogParts): JetStreamLog;
  /** Sends what is queued (for up to 5 s while the server answers), then closes the connection. */
  close(): Promise<void>;
};

/** Connects, makes or updates the two streams, and learns where the stream and the producers are. */
export async function openJetStream(settings: JetStreamLogSettings, options: JetStreamOpenOptions = {}): Promise<JetStreamConnection> {
  const logger = options.logger ?? silentLogger;
  const role = options.role ?? 'both';
  const nc: NatsConnection = await connect({
    servers: settings.url.split(','),
    name: `scrollbank-${role}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  try {
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, settings, role, logger);
    const js = jetstream(nc);
    const start = await streamStart(jsm, settings, role);
    const reconnected = new Set<() => void>();
    void watchStatus(nc, logger, settings.url, () => reconnected.forEach((f) => f()));
    let made: JetStreamLog | null = null;
    return {
      settings,
      nats: nc,
      eventLog(parts) {
        if (made !== null) throw new Error('one event log per connection');
        made = createLog({ jsm, js }, settings, parts, logger, start, reconnected);
        return made;
      },
      async close() {
        await made?.close();
        await nc.drain().catch(() => nc.close());
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}

async function watchStatus(nc: NatsConnection, logger: Logger, url: string, onReconnect: () => void): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect') logger.warn({ url }, 'the event log (NATS) is unreachable: publishes wait, reads pause');
    else if (s.type === 'reconnect') {
      logger.info({ url }, 'the event log (NATS) is reachable again');
      onReconnect();
    }
  }
}

/** Joins the publisher and the reader into the bank's EventLog; `end` is what both know of the stream's last sequence. */
function createLog(clients: { jsm: JetStreamManager; js: JetStreamClient }, settings: JetStreamLogSettings, parts: JetStreamLogParts, logger: Logger, start: StreamStart, reconnected: Set<() => void>): JetStreamLog {
  const { jsm, js } = clients;
  const onReconnect = (f: () => void) => reconnected.add(f);
  const end: StreamEnd = { last: start.lastSeq };
  const publisher = createPublisher({
    js,
    jsm,
    settings,
    clock: parts.clock,
    faults: parts.faults,
    logger,
    positions: start.positions,
    onReconnect,
    onStored: (seq) => (end.last = Math.max(end.last, seq)),
    onAppendTimed: parts.onAppendTimed,
  });
  const reader = createReader({ js, jsm, settings, clock: parts.clock, logger, start, end, onReconnect });

  return {
    settings,
    publish: publisher.publish,
    producerPosition: publisher.producerPosition,
    accepting: publisher.accepting,
    get commits() {
      return publisher.commits;
    },
    read: reader.read,
    endOffset: () => Math.max(end.last, (reader.next() ?? 1) - 1) + 1,
    readableFrom: reader.readableFrom,
    subscribe: reader.subscribe,
    pause: reader.pause,
    resume: reader.resume,
    get paused() {
      return reader.paused;
    },
    async idle() {
      const started = Date.now();
      while (!(publisher.settled() && reader.settled())) {
        if (Date.now() - started > IDLE_TIMEOUT_MS) throw new Error(`the event log did not settle within ${IDLE_TIMEOUT_MS} ms (queued ${publisher.backlog()}, read up to ${reader.next()}, stream at ${end.last})`);
        await sleep(1);
      }
    },
    backlog: publisher.backlog,
    async close() {
      await publisher.close(CLOSE_WAIT_MS);
      await reader.close();
    },
  };
}
