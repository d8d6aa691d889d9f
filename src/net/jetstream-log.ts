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
 *   whole (what was stored comes back a duplicate), so the stream keeps the relay's order.
 * - The producer's position is the outbox id of the last record the stream holds (a header),
 *   and, because retention may have removed that record, a second stream keeps each producer's
 *   latest acknowledged position (one message per subject, no age limit).
 * - Reads come from a buffer that an ordered consumer fills from the offset asked for (Kafka's
 *   fetcher): `read` stays synchronous. The channel's position stays in channel.db (S8); this
 *   consumer is ephemeral and acks nothing.
 * - Retention is the stream's `max_age`. When the records after the channel's position are
 *   gone, `readableFrom` says where the consumer can go on: it logs the loss and repairs
 *   from the core (src/channel/log-consumer.ts), it never skips silently.
 * - The log faults apply where the records are published, as on the embedded log; a duplicate
 *   goes without its msgID (a retry past the window), so it does land twice.
 */
import { DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type PubAck, type StreamInfo } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { Clock } from '../lib/clock.ts';
import { silentLogger, type Logger } from '../lib/logger.ts';
import type { EventLog, LogEntry, ProducerPosition } from './event-log.ts';
import type { FaultQueue } from './faults.ts';
import { logKey, type LogRecord } from './messages.ts';

export type JetStreamLogSettings = {
  /** nats://host:port, or several, comma-separated. */
  url: string;
  /** The stream's name; a second stream, `<stream>_PRODUCERS`, keeps the relay's position. */
  stream: string;
  /** The first token of every subject: `<prefix>.log.<account>`, `<prefix>.producer.<name>`. */
  subjectPrefix: string;
  /** How long the stream keeps a record; 0: for ever. */
  maxAgeMs: number;
  /** How long a msgID is remembered for de-duplication. */
  duplicateWindowMs: number;
  /** Records the publisher holds before the relay is told to wait (MAX_QUEUED). */
  maxQueued: number;
};

/**
 * Records the publisher holds before the relay is told to wait (`accepting`): a server away for
 * long costs this much memory at most, and the rest waits in the durable outbox.
 */
export const MAX_QUEUED = 100_000;

export const DEFAULT_JETSTREAM_SETTINGS: Omit<JetStreamLogSettings, 'url'> = {
  stream: 'SCROLLBANK',
  subjectPrefix: 'scrollbank',
  maxAgeMs: 7 * 24 * 3_600_000,
  duplicateWindowMs: 120_000,
  maxQueued: MAX_QUEUED,
};

/** Which half of the log this process uses: the split mode's core only writes, its channel only reads. */
export type JetStreamRole = 'both' | 'writer' | 'reader';

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

/** Records published in one pipelined window, acknowledged together. */
export const PUBLISH_WINDOW = 512;
/** Records the read buffer holds before the fetch waits for the consumer. */
export const MAX_BUFFERED = 20_000;
/** Waits between attempts when the server does not answer. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;
/** How often a running reader looks at the stream's state. */
const STREAM_WATCH_MS = 1_000;
/** How long `idle` waits for the server before it fails. */
export const IDLE_TIMEOUT_MS = 20_000;

const OUTBOX_ID = 'Scrollbank-Outbox-Id';
const PRODUCER = 'Scrollbank-Producer';
const ns = (ms: number) => ms * 1_000_000;

type Outgoing = { subject: string; data: string; producer: string | null; id: number | null; withMsgId: boolean };

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
        made = createLog(jsm, js, settings, parts, logger, start, reconnected);
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

const producersStream = (s: JetStreamLogSettings) => `${s.stream}_PRODUCERS`;

async function ensureStreams(jsm: JetStreamManager, s: JetStreamLogSettings, role: JetStreamRole, logger: Logger): Promise<void> {
  const wanted = [
    {
      name: s.stream,
      subjects: [`${s.subjectPrefix}.log.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: ns(s.maxAgeMs),
      // The server refuses a window longer than the retention.
      duplicate_window: ns(s.maxAgeMs > 0 ? Math.min(s.duplicateWindowMs, s.maxAgeMs) : s.duplicateWindowMs),
    },
    {
      name: producersStream(s),
      subjects: [`${s.subjectPrefix}.producer.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      max_msgs_per_subject: 1,
      max_age: 0,
    },
  ];
  for (const config of wanted) {
    const existing = await jsm.streams.info(config.name).catch((e: unknown) => (isNotFound(e) ? null : Promise.reject(e)));
    if (existing === null) await jsm.streams.add(config);
    // The writer's settings rule: a reader that disagreed would flip them back and forth.
    else if (role === 'reader') {
      if (existing.config.max_age !== config.max_age) logger.warn({ stream: config.name, streamMaxAgeMs: existing.config.max_age / 1e6, configuredMs: config.max_age / 1e6 }, "the stream's retention is not EVENT_LOG_MAX_AGE_S: the core server's setting applies");
    } else if (existing.config.max_age !== config.max_age || (config.duplicate_window !== undefined && existing.config.duplicate_window !== config.duplicate_window)) {
      // Retention is a setting: a changed one applies to the stream as it is.
      await jsm.streams.update(config.name, { ...existing.config, max_age: config.max_age, ...(config.duplicate_window === undefined ? {} : { duplicate_window: config.duplicate_window }) });
    }
  }
}

function isNotFound(e: unknown): boolean {
  return e instanceof Error && /not found/i.test(e.message);
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type StreamStart = { lastSeq: number; firstSeq: number; created: string; positions: Map<string, number> };

/** What the stream holds now, and each producer's position: the last record's header, or the producers stream. */
async function streamStart(jsm: JetStreamManager, settings: JetStreamLogSettings, role: JetStreamRole): Promise<StreamStart> {
  const info = await jsm.streams.info(settings.stream);
  const positions = new Map<string, number>();
  if (role !== 'reader') {
    if (info.state.messages > 0) {
      const last = await jsm.streams.getMessage(settings.stream, { seq: info.state.last_seq }).catch(() => null);
      const producer = last?.header.get(PRODUCER);
      const id = Number(last?.header.get(OUTBOX_ID));
      if (producer && Number.isSafeInteger(id)) positions.set(producer, id);
    }
    const kept = await jsm.streams.info(producersStream(settings), { subjects_filter: `${settings.subjectPrefix}.producer.>` });
    for (const subject of Object.keys(kept.state.subjects ?? {})) {
      const m = await jsm.streams.getMessage(producersStream(settings), { last_by_subj: subject }).catch(() => null);
      if (m === null) continue;
      const name = subject.slice(`${settings.subjectPrefix}.producer.`.length);
      positions.set(name, Math.max(positions.get(name) ?? 0, (m.json() as { position: number }).position));
    }
  }
  return { lastSeq: info.state.last_seq, firstSeq: Math.max(1, info.state.first_seq), created: info.created, positions };
}

function createLog(jsm: JetStreamManager, js: JetStreamClient, settings: JetStreamLogSettings, parts: JetStreamLogParts, logger: Logger, start: StreamStart, reconnected: Set<() => void>): JetStreamLog {
  const { clock, faults } = parts;
  const logSubjects = `${settings.subjectPrefix}.log.>`;
  let closed = false;
  /** The last sequence known to be in the stream (acknowledged, or seen by the reader). */
  let streamLast = start.lastSeq;
  /** Ranges [from, to) the reader found gone (retention), in order, until the consumer moves past them. */
  let gaps: { from: number; to: number }[] = start.firstSeq > 1 ? [{ from: 1, to: start.firstSeq }] : [];
  /** Set when the stream ends below the reader's position: read again from here. */
  let restartAt: number | null = null;

  function noteGap(from: number, to: number): void {
    const last = gaps[gaps.length - 1];
    if (last !== undefined && from <= last.to) last.to = Math.max(last.to, to);
    else gaps.push({ from, to });
  }

  /** Where the consumer at `offset` can read next: past a gap retention made, or back at the start of a stream that ends below it. */
  function readableFrom(offset: number): number {
    if (restartAt !== null && offset > restartAt) return restartAt;
    for (const g of gaps) if (g.from <= offset && offset < g.to) return g.to;
    return offset;
  }
  const positions = start.positions;

  // ---- writing ----------------------------------------------------------------------------
  const queue: Outgoing[] = [];
  let pumping: Promise<void> | null = null;
  let commits = 0;
  /** Each producer's position as acknowledged, and as last written to the producers stream. */
  const acked = new Map<string, number>();
  const kept = new Map<string, number>(positions);

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

  /** Resolves at the next reconnect: acknowledgements asked for before it will never come. */
  const nextReconnect = () => {
    let resolve!: (v: 'reconnected') => void;
    const promise = new Promise<'reconnected'>((r) => (resolve = r));
    return { promise, resolve };
  };
  let reconnect = nextReconnect();
  reconnected.add(() => {
    const r = reconnect;
    reconnect = nextReconnect();
    r.resolve('reconnected');
  });

  async function pump(): Promise<void> {
    let failures = 0;
    while (queue.length > 0 && !closed) {
      const window = queue.slice(0, PUBLISH_WINDOW);
      const started = performance.now();
      let acks: PubAck[] | 'reconnected';
      try {
        const sent = Promise.all(window.map(send));
        sent.catch(() => undefined); // abandoned at a reconnect: its rejection is nobody's
        acks = await Promise.race([sent, reconnect.promise]);
      } catch (error) {
        if (closed) return;
        // The stream holds a prefix of the window: it goes again whole, and msgIDs keep the stored part once.
        if (failures++ === 0) logger.warn({ err: error instanceof Error ? error.message : String(error), waiting: queue.length }, 'publishing to the event log failed; retrying');
        await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures, 5)));
        // A stream deleted under the bank is made again (its records are gone: the channel finds
        // its position past the new stream's end and reads it from the start).
        await ensureStreams(jsm, settings, 'writer', logger).catch(() => undefined);
        continue;
      }
      // The server restarted under the window: it goes again at once, msgIDs keep what was stored once.
      if (acks === 'reconnected') continue;
      if (failures > 0) logger.info({ waiting: queue.length }, 'publishing to the event log again');
      failures = 0;
      queue.splice(0, window.length);
      commits++;
      parts.onAppendTimed?.(performance.now() - started);
      for (const a of acks) streamLast = Math.max(streamLast, a.seq);
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

  // ---- reading ----------------------------------------------------------------------------
  const listeners = new Set<() => void>();
  let notifyArmed = false;
  let paused = false;
  let buffer: LogEntry[] = [];
  /** The reader's generation: a seek starts a new one, and the old one's messages are dropped. */
  let generation = 0;
  /** The next sequence the current reader expects; null: no reader yet. */
  let readerNext: number | null = null;
  /** The lowest offset the buffer can still serve (the reader started there, or has trimmed to it). */
  let floor = 0;
  let messages: ConsumerMessages | null = null;
  let room: (() => void) | null = null;

  function notify(): void {
    if (notifyArmed || paused) return;
    notifyArmed = true;
    clock.setTimeout(() => {
      notifyArmed = false;
      for (const l of [...listeners]) l();
    }, 0);
  }

  /** A reader from `from`, with an empty buffer (a seek, or the first read). */
  function startReader(from: number): void {
    if (restartAt !== null && from <= restartAt) restartAt = null;
    gaps = gaps.filter((g) => g.to > from);
    buffer = [];
    floor = from;
    readerNext = from;
    resumeReader();
  }

  /** A new fetch from where the reader is, keeping what the buffer holds (after a reconnect). */
  function resumeReader(): void {
    if (readerNext === null || closed) return;
    const mine = ++generation;
    const old = messages;
    messages = null;
    void old?.close();
    room?.();
    void readLoop(mine, readerNext);
  }

  /** No consumer left (the channel stopped): its fetcher goes with it, as a process's would. */
  function stopReader(): void {
    generation++;
    const old = messages;
    messages = null;
    void old?.close();
    room?.();
    buffer = [];
    readerNext = null;
  }

  // After the server comes back the fetch starts again from where it was: nothing waits for a heartbeat to go missing.
  reconnected.add(resumeReader);

  let created = start.created;

  /**
   * What the stream says against where the reader is. A stream made again (another `created`)
   * or ending below the reader (its tail lost: Kafka's offset out of range) is read again from
   * its start: the consumer is told, and the reader stops (false). Records gone below the
   * stream's first sequence are a gap the consumer moves past. Either way it is woken to see it.
   */
  function checkStream(info: StreamInfo, at: number): boolean {
    const { state } = info;
    if (info.created !== created || state.last_seq + 1 < at) {
      created = info.created;
      streamLast = state.last_seq;
      restartAt = Math.max(1, state.first_seq);
      gaps = [];
      stopReader();
      notify();
      return false;
    }
    streamLast = Math.max(streamLast, state.last_seq);
    if (state.first_seq > at) {
      noteGap(at, state.first_seq);
      notify();
    }
    return true;
  }

  // A running reader looks at the stream every second: a deletion, a new stream or retention
  // that removes what it has not read yet would otherwise stay unseen (the fetch just waits).
  const watch = setInterval(() => {
    if (readerNext === null || closed || paused) return;
    const mine = generation;
    jsm.streams.info(settings.stream).then(
      (info) => {
        if (mine === generation && readerNext !== null) checkStream(info, readerNext);
      },
      () => undefined, // gone for now: the publisher makes it again, the next look sees it
    );
  }, STREAM_WATCH_MS);
  watch.unref();

  async function readLoop(mine: number, from: number): Promise<void> {
    let failures = 0;
    while (!closed && mine === generation) {
      try {
        const info = await jsm.streams.info(settings.stream);
        if (mine !== generation) return;
        if (!checkStream(info, readerNext ?? from)) return;
        const consumer = await js.consumers.get(settings.stream, { filter_subjects: logSubjects, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: readerNext ?? from });
        // Heartbeats every second: a fetch the server forgot is noticed and made again.
        const iter = await consumer.consume({ max_messages: 1_000, expires: 5_000, idle_heartbeat: 1_000 });
        if (mine !== generation || closed) return void iter.close();
        messages = iter;
        failures = 0;
        for await (const m of iter) {
          if (mine !== generation) return;
          const expected = readerNext ?? from;
          if (m.seq < expected) continue; // a redelivery after the consumer was made again
          // A jump is retention at work: the stream no longer holds what lies between. What the
          // buffer holds below it is still read first; the consumer meets the gap at `expected`.
          if (m.seq > expected) noteGap(expected, m.seq);
          readerNext = m.seq + 1;
          streamLast = Math.max(streamLast, m.seq + m.info.pending);
          buffer.push({ offset: m.seq, record: m.json() as LogRecord });
          notify();
          while (buffer.length >= MAX_BUFFERED && mine === generation && !closed) await new Promise<void>((r) => (room = r));
        }
      } catch (error) {
        if (closed || mine !== generation) return;
        if (failures++ === 0) logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'reading the event log failed; retrying');
      }
      if (closed || mine !== generation) return;
      await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures, 5)));
    }
  }

  function read(fromOffset: number, maxRecords: number): LogEntry[] {
    if (paused || closed) return [];
    if (readerNext === null || fromOffset < floor || fromOffset > readerNext) {
      startReader(fromOffset);
      return [];
    }
    // What is below the asked offset is consumed: the buffer lets it go, and the gaps below it.
    gaps = gaps.filter((g) => g.to > fromOffset);
    let drop = 0;
    while (drop < buffer.length && buffer[drop]!.offset < fromOffset) drop++;
    if (drop > 0) buffer = buffer.slice(drop);
    floor = fromOffset;
    const out = buffer.slice(0, maxRecords);
    if (buffer.length - out.length < MAX_BUFFERED) {
      const r = room;
      room = null;
      r?.();
    }
    return out;
  }

  async function idle(): Promise<void> {
    const started = Date.now();
    // Caught up, or waiting for the consumer (on the clock) to move past a gap or back to a restart.
    const done = () => queue.length === 0 && pumping === null && (readerNext === null || paused || readerNext > streamLast || restartAt !== null || gaps.length > 0);
    while (!done()) {
      if (Date.now() - started > IDLE_TIMEOUT_MS) throw new Error(`the event log did not settle within ${IDLE_TIMEOUT_MS} ms (queued ${queue.length}, read up to ${readerNext}, stream at ${streamLast})`);
      await sleep(1);
    }
  }

  return {
    settings,
    publish(records, position?: ProducerPosition) {
      const producer = position?.producer ?? null;
      const ids = position?.ids;
      const now: Outgoing[] = [];
      records.forEach((record, i) => {
        const id = ids?.[i] ?? null;
        const fate = faults.next('log');
        if (fate.action === 'drop') return;
        if (fate.action === 'delay') clock.setTimeout(() => enqueue([outgoing(record, producer, id)]), fate.delayMs);
        else if (fate.action === 'duplicate') now.push(outgoing(record, producer, id), outgoing(record, producer, id, false));
        else now.push(outgoing(record, producer, id));
      });
      enqueue(now);
      // The relay moves on once its records are queued here: what is queued leaves, in order,
      // while this process lives. A process that dies with some queued starts from the stream.
      if (position !== undefined) positions.set(position.producer, Math.max(positions.get(position.producer) ?? 0, position.position));
    },
    producerPosition: (producer) => positions.get(producer) ?? 0,
    accepting: () => queue.length < settings.maxQueued,
    get commits() {
      return commits;
    },
    read,
    endOffset: () => Math.max(streamLast, (readerNext ?? 1) - 1) + 1,
    readableFrom,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stopReader();
      };
    },
    pause() {
      paused = true;
    },
    resume() {
      if (!paused) return;
      paused = false;
      notify();
    },
    get paused() {
      return paused;
    },
    idle,
    backlog: () => queue.length,
    async close() {
      if (closed) return;
      // What is queued leaves first, for as long as the server answers.
      const deadline = Date.now() + 5_000;
      while ((queue.length > 0 || pumping !== null) && Date.now() < deadline) await sleep(5);
      closed = true;
      clearInterval(watch);
      reconnected.delete(resumeReader);
      generation++;
      room?.();
      await messages?.close();
    },
  };
}
