/**
 * The two JetStream streams of the event log, apart from who writes or reads them: the
 * settings, making or updating the streams, and what they hold when a process opens them
 * (where the stream starts and ends, and each producer's position). Shared by the publisher
 * and the reader (jetstream-publisher.ts, jetstream-reader.ts), which jetstream-log.ts joins.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '../lib/logger.ts';

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

/** Waits between attempts when the server does not answer. */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 2_000;
export const retryWaitMs = (failures: number) => Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures, 5));
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Each record's headers: who published it, and its row in that producer's outbox. */
export const OUTBOX_ID = 'Scrollbank-Outbox-Id';
export const PRODUCER = 'Scrollbank-Producer';
const ns = (ms: number) => ms * 1_000_000;

export const producersStream = (s: JetStreamLogSettings) => `${s.stream}_PRODUCERS`;

/** Makes the streams that are missing; a writer also brings a stream's retention to its settings. */
export async function ensureStreams(jsm: JetStreamManager, s: JetStreamLogSettings, role: JetStreamRole, logger: Logger): Promise<void> {
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

/** What the stream holds when a process opens it, and each producer's position. */
export type StreamStart = { lastSeq: number; firstSeq: number; created: string; positions: Map<string, number> };

/** What the stream holds now, and each producer's position: the last record's header, or the producers stream. */
export async function streamStart(jsm: JetStreamManager, settings: JetStreamLogSettings, role: JetStreamRole): Promise<StreamStart> {
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
