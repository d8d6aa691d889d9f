/**
 * The event log (the talk's Kafka topic): append-only, totally ordered, offset-addressed,
 * at-least-once. Producers publish through faults; consumers read from an offset they own.
 */
import type { Clock } from '../lib/clock.ts';
import type { Db } from '../lib/sqlite.ts';
import type { FaultQueue } from './faults.ts';
import { logKey, type LogRecord } from './messages.ts';

export type LogEntry = { offset: number; record: LogRecord };

/** Kafka's consumer view: fetch from an offset, learn that there is more. */
export interface EventLogReader {
  /** Nothing while the log is paused: the broker is unreachable, appends still land. */
  read(fromOffset: number, maxRecords: number): LogEntry[];
  endOffset(): number;
  /**
   * Where a consumer at `offset` can read next: `offset` itself, or past records retention
   * removed (the JetStream log's max_age), or back at the start of a log that now ends below
   * `offset` (recreated, or its tail lost: Kafka's offset out of range). A consumer told another
   * offset has lost records or must read again, and says so. The embedded log keeps everything.
   */
  readableFrom(offset: number): number;
  /** Called (later, through the clock) after records are appended. Returns an unsubscribe. */
  subscribe(listener: () => void): () => void;
}

/** A relay's place in its source: the last outbox id the log holds, recorded with the append. */
export type ProducerPosition = {
  producer: string;
  position: number;
  /** Each record's id in the producer's source (its outbox row), in order: the key a log de-duplicates retries by. */
  ids?: readonly number[];
};

/** Kafka's producer view: publish records, each keyed by account, in one append. */
export interface EventLogWriter {
  /** With a position, the producer's position commits in the same transaction as the records. */
  publish(records: LogRecord[], position?: ProducerPosition): void;
  /** Where a producer's relay has published up to (0: nothing yet). */
  producerPosition(producer: string): number;
  /** Appends (transactions) made so far. */
  readonly commits: number;
  /**
   * False while the log holds as many records not yet stored as it will (a JetStream server
   * that is away): the relay waits, and the records wait in the outbox, which is durable. The
   * embedded log stores within `publish` and is always accepting.
   */
  accepting?(): boolean;
}

/** Fault injection on the consumer side: a paused log serves no reads and wakes no one. */
export interface EventLogControl {
  pause(): void;
  /** Ends a pause; subscribers are told there may be records to read. */
  resume(): void;
  readonly paused: boolean;
}

export type EventLog = EventLogReader &
  EventLogWriter &
  EventLogControl & {
    /**
     * Only for a log with I/O of its own (JetStream): resolves once what was published is
     * stored and the reader has fetched it, so a test on virtual time can step on it. The
     * embedded log does everything inside its calls and has none.
     */
    idle?(): Promise<void>;
  };

export type EventLogOptions = {
  /**
   * How long after an append the consumers are woken: the broker's fetch latency. The
   * simulator draws it per wake-up so that the log sometimes lands after the link's
   * answer; production has none (the next turn of the event loop).
   */
  wakeDelayMs?: () => number;
  /** How long each append transaction took (the metrics' log commit durations). */
  onAppendTimed?: (durationMs: number) => void;
};

/**
 * The consumers' wake-ups and the pause fault, as both logs have them: subscribers are woken
 * once, later on the clock (after `delayMs`), however often `notify` is called before then; a
 * paused log wakes no one, and its resume wakes everyone.
 */
export function createWakeUps(clock: Clock, delayMs: () => number = () => 0) {
  const listeners = new Set<() => void>();
  let armed = false;
  let paused = false;
  function notify(): void {
    if (armed || paused) return;
    armed = true;
    clock.setTimeout(() => {
      armed = false;
      for (const l of [...listeners]) l();
    }, delayMs());
  }
  return {
    notify,
    subscribe(listener: () => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    subscribers: (): number => listeners.size,
    pause(): void {
      paused = true;
    },
    resume(): void {
      if (!paused) return;
      paused = false;
      notify();
    },
    get paused(): boolean {
      return paused;
    },
  };
}

export function createEventLog(db: Db, clock: Clock, faults: FaultQueue, options: EventLogOptions = {}): EventLog {
  const insert = db.prepare('INSERT INTO records (key, record, appended_at) VALUES (?, ?, ?)');
  const readFrom = db.prepare('SELECT log_offset AS offset, record FROM records WHERE log_offset >= ? ORDER BY log_offset LIMIT ?');
  const maxOffset = db.prepare('SELECT COALESCE(MAX(log_offset), 0) FROM records').pluck();
  const getPosition = db.prepare('SELECT position FROM producer_positions WHERE producer = ?').pluck();
  const setPosition = db.prepare(
    'INSERT INTO producer_positions (producer, position) VALUES (?, ?) ON CONFLICT (producer) DO UPDATE SET position = excluded.position',
  );
  let commits = 0;
  const wake = createWakeUps(clock, options.wakeDelayMs);

  const append = db.transaction((records: LogRecord[], position: ProducerPosition | undefined) => {
    const at = clock.now();
    for (const r of records) insert.run(logKey(r), JSON.stringify(r), at);
    if (position !== undefined) setPosition.run(position.producer, position.position);
  });

  function land(records: LogRecord[], position?: ProducerPosition): void {
    const started = options.onAppendTimed === undefined ? 0 : performance.now();
    append(records, position);
    commits++;
    options.onAppendTimed?.(performance.now() - started);
    if (records.length > 0) wake.notify();
  }

  return {
    publish(records, position) {
      const now: LogRecord[] = [];
      for (const record of records) {
        const fate = faults.next('log');
        if (fate.action === 'drop') continue;
        if (fate.action === 'delay') clock.setTimeout(() => land([record]), fate.delayMs);
        else if (fate.action === 'duplicate') now.push(record, record);
        else now.push(record);
      }
      // A batch whose records were all lost still moves the producer on: the loss is the pipe's.
      if (now.length > 0 || position !== undefined) land(now, position);
    },
    producerPosition: (producer) => (getPosition.get(producer) as number | undefined) ?? 0,
    get commits() {
      return commits;
    },
    read(fromOffset, maxRecords) {
      if (wake.paused) return [];
      const rows = readFrom.all(fromOffset, maxRecords) as { offset: number; record: string }[];
      return rows.map((r) => ({ offset: r.offset, record: JSON.parse(r.record) as LogRecord }));
    },
    endOffset: () => (maxOffset.get() as number) + 1,
    readableFrom: (offset) => offset,
    pause: wake.pause,
    resume: wake.resume,
    get paused() {
      return wake.paused;
    },
    subscribe: wake.subscribe,
  };
}
