/**
 * The entry point: reads the configuration from the environment, makes every check that can
 * refuse a start before anything is written, wires the real clock, randomness and databases
 * into one bank, seeds demo customers on first start, serves the HTTP API, and stops cleanly
 * on SIGTERM or SIGINT.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createBank, type Bank } from './bank.ts';
import { ADMIN_TOKEN_FILE, bankSettingsOf, DEMO_TOKENS_FILE, jetstreamSettingsOf, type Config } from './config.ts';
import { configOrExit, refuse, takeStopSignals } from './process-start.ts';
import { openJetStream, type JetStreamConnection } from './net/jetstream-log.ts';
import { channelLinkOverNats, CoreUnavailable, remoteCoreOps } from './net/nats-link.ts';
import { createSystemClock } from './lib/clock.ts';
import { cryptoRandom, randomToken } from './lib/ids.ts';
import { loadSkyInspector } from './inspect.ts';
import type { Inspect, TransferInspector } from './lib/inspect.ts';
import { DataDirBusy, lockDataDir } from './lib/data-dir-lock.ts';
import { createLogger, type Logger } from './lib/logger.ts';
import { loadOrCreateToken } from './lib/secret-key.ts';
import { createApp } from './server/app.ts';
import { createHttpServer } from './server/http-server.ts';
import { createMetrics } from './server/metrics.ts';
import { Problem } from './server/problem.ts';

/** In-flight requests get this long to finish after a stop signal; then their connections are cut. */
export const SHUTDOWN_GRACE_MS = 10_000;
const DEMO_CUSTOMERS = [
  ['Kim Minji', 1_000_000],
  ['Lee Junho', 500_000],
] as const;

/** Binds the port before anything is opened or written; requests before the bank is up get a 503. */
function listen(server: Server, config: Config): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host ?? undefined, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** First start: the demo customers, their tokens in a file of their own. Later starts: how to get one. */
async function seedDemoCustomers(bank: Bank, config: Config, logger: Logger): Promise<void> {
  const file = join(config.dataDir, DEMO_TOKENS_FILE);
  if (bank.channel.customer(1) !== undefined) {
    const known = DEMO_CUSTOMERS.map((_, i) => bank.channel.customer(i + 1)).filter((c) => c !== undefined);
    const who = known.map((c) => `${c.name} (customer ${c.id}, account ${bank.channel.accountsOf(c.id)[0]?.id ?? '?'})`).join(', ');
    const where = existsSync(file) ? `the tokens made on first start are in ${file} (unless revoked since)` : `${file} is gone, so whoever did not keep their first tokens needs new ones`;
    logger.info(`demo customers exist: ${who}; ${where}; POST /admin/customers/<id>/tokens (admin token) issues a new one`);
    return;
  }
  if (bank.split && bank.log.endOffset() > 1) {
    // A new channel DATA_DIR on a core whose log already holds records: the channel of another
    // bank, or one whose data was lost. Opening demo customers would add accounts to that core.
    logger.warn(`this channel's DATA_DIR has no customers, but the core's log already holds records: not opening demo customers (POST /admin/customers opens customers; one channel server per core)`);
    return;
  }
  const lines: string[] = [];
  const missed: string[] = [];
  for (const [name, opening] of DEMO_CUSTOMERS) {
    let opened;
    try {
      opened = await bank.ops.openCustomer(name, opening);
    } catch (error) {
      // Only the split mode's core can be away. With none opened yet the next start tries again;
      // with some, their tokens are written below and the rest are named.
      if (!(error instanceof CoreUnavailable) || lines.length === 0) throw error;
      missed.push(name);
      continue;
    }
    const { accountId, customerId, token } = opened;
    lines.push(`demo customer ${name}: account ${accountId} (${opening} won), token ${token}`);
    logger.info(`opened demo customer ${name}: customer ${customerId}, account ${accountId} (${opening} won)`);
  }
  if (missed.length > 0) logger.warn(`the core did not answer: demo customer ${missed.join(', ')} was not opened (POST /admin/customers opens one)`);
  // The file before the commit: a crash between them leaves a file of tokens no one holds, and
  // the next start (finding no customer) opens them again and replaces it; the other order could
  // leave customers whose tokens no one will ever see. Written whole, then renamed into place.
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, `${lines.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(partial, file);
  await bank.durable();
  logger.info(`first start: the demo customers' tokens are in ${file} (readable only by you; they are not shown again)`);
}

async function main(): Promise<void> {
  // Everything this server writes (databases with customers and token hashes, secrets) is its user's alone.
  process.umask(0o077);
  const config = configOrExit(process.env);
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY });
  // The split mode's channel (--channel, npm run start:channel) needs JetStream: the core is
  // another process. Checked with the configuration, before anything is written.
  const channelOnly = process.argv.includes('--channel');
  if (config.eventLog === null && channelOnly) refuse(logger, 'EVENT_LOG must be set for the channel server (nats://host:port): it meets the core only through NATS', 2);
  // Handlers first; a signal that comes before the bank is up stops it once it is.
  const signals = takeStopSignals(logger);
  // The app comes once the bank is up; until then (a few ms) the port answers 503.
  let handle: ((request: Request, env: unknown) => Response | Promise<Response>) | null = null;
  const starting = new Problem(503, 'Starting', 'the bank is starting; try again in a moment');
  const server = createHttpServer(
    (request, env) => handle?.(request, env) ?? new Response(JSON.stringify(starting.body()), { status: 503, headers: { 'Content-Type': 'application/problem+json' } }),
    logger,
  );
  // The port first: a start it refuses has created nothing, not even DATA_DIR.
  let address: AddressInfo;
  try {
    address = await listen(server, config);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    refuse(logger, code === 'EADDRINUSE' ? `PORT ${config.port} is already in use` : `the server cannot listen: ${(error as Error).message}`, 1);
  }
  server.on('error', (error) => logger.error({ err: error }, 'the HTTP server failed'));
  let releaseDataDir: () => void;
  try {
    mkdirSync(config.dataDir, { recursive: true });
    releaseDataDir = lockDataDir(config.dataDir);
  } catch (error) {
    server.close();
    const why = error instanceof DataDirBusy ? error.message : `DATA_DIR ${config.dataDir} cannot be used: ${error instanceof Error ? error.message : String(error)}`;
    refuse(logger, why, 2);
  }

  // The admin token is the last check that can refuse a start, before any database is opened.
  const adminTokenFile = join(config.dataDir, ADMIN_TOKEN_FILE);
  let adminToken: string;
  try {
    adminToken = config.adminToken ?? loadOrCreateToken(adminTokenFile, () => randomToken(cryptoRandom));
  } catch (error) {
    server.close();
    releaseDataDir();
    refuse(logger, `${adminTokenFile} cannot be used (delete it for a new admin token, or set ADMIN_TOKEN): ${error instanceof Error ? error.message : String(error)}`, 2);
  }

  let inspect: { inspect: Inspect; transfers: TransferInspector } | undefined;
  if (config.inspect) {
    // Before the bank starts, so that the coreBanking actor is seen from its start.
    inspect = await loadSkyInspector((line) => logger.info(line)).catch((error: unknown) => {
      logger.warn({ err: error }, 'INSPECT=1 but the inspector could not start; going on without it');
      return undefined;
    });
  }
  // The event log: the embedded one, or JetStream (EVENT_LOG); in the split mode this process reads it only.
  let jet: JetStreamConnection | null = null;
  if (config.eventLog !== null) {
    const settings = jetstreamSettingsOf(config.eventLog);
    try {
      jet = await openJetStream(settings, { role: channelOnly ? 'reader' : 'both', logger });
    } catch (error) {
      server.close();
      releaseDataDir();
      refuse(logger, `the event log at ${settings.url} cannot be used: ${error instanceof Error ? error.message : String(error)}`, 1);
    }
    logger.info({ eventLog: settings.url, stream: settings.stream, maxAgeMs: settings.maxAgeMs, split: channelOnly }, channelOnly ? 'the event log and the link are on NATS; the core is another process' : 'the event log is on NATS JetStream');
  }
  const nats = jet;
  const clock = createSystemClock();
  const metrics = createMetrics();
  const bank = createBank({
    dataDir: config.dataDir,
    coreClock: clock,
    channelClock: clock,
    random: cryptoRandom,
    logger,
    observer: metrics.observer,
    inspect: inspect?.inspect,
    transferInspector: inspect?.transfers,
    // The talk's core is another server: here it gets a thread, and the machine's second core.
    // With INSPECT=1 it stays on this thread, where the inspector can see its actor.
    coreThread: inspect === undefined && !channelOnly,
    settings: bankSettingsOf(config),
    eventLog: nats === null ? undefined : (parts) => nats.eventLog(parts),
    split:
      nats !== null && channelOnly
        ? { link: (options) => channelLinkOverNats(nats.nats, nats.settings.subjectPrefix, options, logger), remoteCore: remoteCoreOps(nats.nats, nats.settings.subjectPrefix) }
        : undefined,
  });
  await bank.ready();
  metrics.attach(bank);
  try {
    bank.start();
  } catch (error) {
    // Such as a log that holds another bank's records (src/core/core-banking.ts): the databases
    // were opened (and stay, empty on a first start), but nothing of the bank is written.
    server.close();
    bank.close();
    await nats?.close();
    releaseDataDir();
    refuse(logger, `the bank cannot start: ${error instanceof Error ? error.message : String(error)}`, 2);
  }
  logger.info({ dataDir: config.dataDir, unfinishedTransfers: bank.channel.unfinishedCount() }, 'bank started');

  if (config.adminToken === null) logger.info(`admin token: in ${adminTokenFile} (set ADMIN_TOKEN to choose one)`);
  else logger.info(existsSync(adminTokenFile) ? `admin token: from ADMIN_TOKEN; ${adminTokenFile} is not read while it is set` : 'admin token: from ADMIN_TOKEN');
  await seedDemoCustomers(bank, config, logger).catch((error: unknown) => {
    // Only the split mode's core can be away: the next start opens them, or POST /admin/customers does.
    if (!(error instanceof CoreUnavailable)) throw error;
    logger.warn(`the demo customers were not opened: ${error.message}; start the core (npm run start:core), then restart this server or POST /admin/customers`);
  });

  const stopping = new AbortController();
  const app = createApp({ bank, adminToken, logger, metrics, stream: { signal: stopping.signal } });
  handle = (request, env) => app.fetch(request, env as never);
  // Answers given while stopping close their connection, so that no keep-alive client holds
  // the stop open: those already on their way when the signal came, and any after it.
  const answering = new Set<ServerResponse>();
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (stopping.signal.aborted) res.setHeader('Connection', 'close');
    answering.add(res);
    res.once('close', () => answering.delete(res));
    // An answer whose headers left before the signal (an event stream) kept keep-alive: its
    // connection would idle until keepAliveTimeout and hold the stop that long.
    // Once Node has put it back to idle (after this turn), it is closed like the others.
    res.once('finish', () => {
      if (stopping.signal.aborted) setImmediate(() => server.closeIdleConnections());
    });
  });
  const stop = () => {
    logger.info({ signal: signals.first, graceMs: SHUTDOWN_GRACE_MS }, 'stopping: no new connections; in-flight requests may finish');
    stopping.abort();
    for (const res of answering) if (!res.headersSent) res.setHeader('Connection', 'close');
    const cut = setTimeout(() => {
      logger.warn('the grace period ended: closing the connections still open');
      server.closeAllConnections();
    }, SHUTDOWN_GRACE_MS);
    server.close(() => {
      clearTimeout(cut);
      bank.close();
      // What the relay has queued for JetStream leaves before the connection closes.
      void (nats?.close() ?? Promise.resolve()).finally(() => {
        releaseDataDir();
        logger.info('stopped: databases closed, DATA_DIR released');
        process.exit(0);
      });
    });
    server.closeIdleConnections();
  };
  logger.info(`scrollbank listening on http://${config.host ?? 'localhost'}:${address.port} (data in ${config.dataDir})`);
  signals.onStop(stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
