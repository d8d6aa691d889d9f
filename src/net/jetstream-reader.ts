/**
 * The JetStream log's consumer side: a buffer that an ordered consumer fills from the offset
 * asked for (Kafka's fetcher), so `read` stays synchronous. The channel's position stays in
 * channel.db (S8); this consumer is ephemeral and acks nothing. It keeps, in order, the gaps it
 * finds (retention removed records before they were read) and tells the consumer where it can
 * go on (`readableFrom`); a stream made again, or ending below the reader, is read again from
 * its start. It looks at the stream at every (re)start, and while it runs (every second while no
 * record comes, every ten while they flow).
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { createWakeUps, type LogEntry } from './event-log.ts';
import { retryWaitMs, sleep, type JetStreamLogSettings, type StreamStart } from './jetstream-streams.ts';
import type { LogRecord } from './messages.ts';

/** Records the read buffer holds before the fetch waits for the consumer. */
export const MAX_BUFFERED = 20_000;
/**
 * How often a running reader that has had no record for that long looks at the stream's state,
 * and how often it looks while records flow. A look costs the server a pass over the stream's
 * state that holds its appends back: once a second under load put 50-80 ms on the write path's
 * p99 (bench:transfers --log nats), once every ten seconds does not.
 */
export const STREAM_WATCH_IDLE_MS = 1_000;
export const STREAM_WATCH_BUSY_MS = 10_000;

/** The last sequence known to be in the stream: raised by the publisher's acks and by what the reader sees. */
export type StreamEnd = { last: number };

export type ReaderDeps = {
  js: JetStreamClient;
  jsm: JetStreamManager;
  settings: JetStreamLogSettings;
  clock: Clock;
  logger: Logger;
  start: StreamStart;
  end: StreamEnd;
  onReconnect: (f: () => void) => void;
};

export function createReader(deps: ReaderDeps) {
  const { js, jsm, settings, clock, logger, end } = deps;
  const logSubjects = `${settings.subjectPrefix}.log.>`;
  const wake = createWakeUps(clock);
  const notify = wake.notify;
  let closed = false;
  let buffer: LogEntry[] = [];
  /** The reader's generation: a seek starts a new one, and the old one's messages are dropped. */
  let generation = 0;
  /** The next sequence the current reader expects; null: no reader. */
  let readerNext: number | null = null;
  /** The lowest offset the buffer can still serve (the reader started there, or has trimmed to it). */
  let floor = 0;
  let messages: ConsumerMessages | null = null;
  let room: (() => void) | null = null;
  /** Ranges [from, to) the reader found gone (retention), in order, until the consumer moves past them. */
  let gaps: { from: number; to: number }[] = deps.start.firstSeq > 1 ? [{ from: 1, to: deps.start.firstSeq }] : [];
  /** Set when the stream ends below the reader's position, or was made again: read again from here. */
  let restartAt: number | null = null;
  let created = deps.start.created;

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
    dropFetch();
    void readLoop(mine, readerNext);
  }

  /** No consumer left (the channel stopped): its fetcher goes with it, as a process's would. */
  function stopReader(): void {
    generation++;
    dropFetch();
    buffer = [];
    readerNext = null;
  }

  function dropFetch(): void {
    const old = messages;
    messages = null;
    void old?.close();
    room?.();
  }

  // After the server comes back the fetch starts again from where it was: nothing waits for a heartbeat to go missing.
  deps.onReconnect(resumeReader);

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
      end.last = state.last_seq;
      restartAt = Math.max(1, state.first_seq);
      gaps = [];
      stopReader();
      notify();
      return false;
    }
    end.last = Math.max(end.last, state.last_seq);
    if (state.first_seq > at) {
      noteGap(at, state.first_seq);
      notify();
    }
    return true;
  }

  // A running reader looks at the stream: a deletion, a new stream or retention that removes
  // what it has not read yet would otherwise stay unseen (the fetch just waits, or skips what a
  // new stream holds below its position). Each second when no record came, else every ten.
  let lastRecordAt = 0;
  let lastLookAt = 0;
  const watch = setInterval(() => {
    if (readerNext === null || closed || wake.paused) return;
    const now = performance.now();
    if (now - lastRecordAt < STREAM_WATCH_IDLE_MS && now - lastLookAt < STREAM_WATCH_BUSY_MS) return;
    lastLookAt = now;
    const mine = generation;
    jsm.streams.info(settings.stream).then(
      (info) => {
        if (mine === generation && readerNext !== null) checkStream(info, readerNext);
      },
      () => undefined, // gone for now: the publisher makes it again, the next look sees it
    );
  }, STREAM_WATCH_IDLE_MS);
  watch.unref();

  /** Takes one fetched message into the buffer (false: it belongs to an older generation). */
  function take(mine: number, from: number, seq: number, pending: number, record: LogRecord): boolean {
    if (mine !== generation) return false;
    const expected = readerNext ?? from;
    if (seq < expected) return true; // a redelivery after the consumer was made again
    // A jump is retention at work: the stream no longer holds what lies between. What the buffer
    // holds below it is still read first; the consumer meets the gap at `expected`.
    if (seq > expected) noteGap(expected, seq);
    readerNext = seq + 1;
    lastRecordAt = performance.now();
    end.last = Math.max(end.last, seq + pending);
    buffer.push({ offset: seq, record });
    notify();
    return true;
  }

  async function readLoop(mine: number, from: number): Promise<void> {
    let failures = 0;
    while (!closed && mine === generation) {
      try {
        const info = await jsm.streams.info(settings.stream);
        if (mine !== generation || !checkStream(info, readerNext ?? from)) return;
        const consumer = await js.consumers.get(settings.stream, { filter_subjects: logSubjects, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: readerNext ?? from });
        // Heartbeats every second: a fetch the server forgot is noticed and made again.
        const iter = await consumer.consume({ max_messages: 1_000, expires: 5_000, idle_heartbeat: 1_000 });
        if (mine !== generation || closed) return void iter.close();
        messages = iter;
        failures = 0;
        for await (const m of iter) {
          if (!take(mine, from, m.seq, m.info.pending, m.json() as LogRecord)) return;
          while (buffer.length >= MAX_BUFFERED && mine === generation && !closed) await new Promise<void>((r) => (room = r));
        }
      } catch (error) {
        if (closed || mine !== generation) return;
        if (failures++ === 0) logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'reading the event log failed; retrying');
      }
      if (closed || mine !== generation) return;
      await sleep(retryWaitMs(failures));
    }
  }

  function read(fromOffset: number, maxRecords: number): LogEntry[] {
    if (wake.paused || closed) return [];
    if (readerNext === null || fromOffset < floor || fromOffset > readerNext) {
      startReader(fromOffset);
      return [];
    }
    // What is below the asked offset is consumed: the buffer lets it go, and the gaps below it.
    if (gaps.length > 0) gaps = gaps.filter((g) => g.to > fromOffset);
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

  return {
    read,
    readableFrom,
    /** The reader's next offset (null: none): the log's end counts what it has fetched. */
    next: (): number | null => readerNext,
    /** Caught up with the stream's end, or waiting for the consumer (on the clock) to move past a gap or back to a restart. */
    settled: (): boolean => readerNext === null || wake.paused || readerNext > end.last || restartAt !== null || gaps.length > 0,
    subscribe(listener: () => void): () => void {
      const unsubscribe = wake.subscribe(listener);
      return () => {
        unsubscribe();
        if (wake.subscribers() === 0) stopReader();
      };
    },
    pause: wake.pause,
    resume: wake.resume,
    get paused(): boolean {
      return wake.paused;
    },
    async close(): Promise<void> {
      closed = true;
      clearInterval(watch);
      generation++;
      room?.();
      await messages?.close();
    },
  };
}

export type Reader = ReturnType<typeof createReader>;
