/**
 * The core banking server of the split mode (npm run start:core): core.db in its own DATA_DIR
 * under its own lock, its relay publishing to JetStream, the link's requests taken from NATS and
 * its answers published there, and the operator's calls (open an account, a deposit, a restart)
 * answered over NATS request/reply once they are durable. It serves no HTTP: the channel
 * (npm run start:channel) serves the whole API. Stops cleanly on SIGTERM or SIGINT; a kill -9
 * loses nothing that was acknowledged (the outbox and the stream hold it).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { coreRules, DEFAULT_SETTINGS } from './bank.ts';
import { bankSettingsOf, jetstreamSettingsOf } from './config.ts';
import { configOrExit, refuse, takeStopSignals } from './process-start.ts';
import { createCoreBanking } from './core/core-banking.ts';
import { createSystemClock } from './lib/clock.ts';
import { DataDirBusy, lockDataDir } from './lib/data-dir-lock.ts';
import { createLogger } from './lib/logger.ts';
import { FULL_PROTOCOL } from './lib/protocol.ts';
import { FaultQueue } from './net/faults.ts';
import { openJetStream } from './net/jetstream-log.ts';
import { coreLinkOverNats, serveCoreOps, type CoreOp } from './net/nats-link.ts';

async function main(): Promise<void> {
  process.umask(0o077);
  const config = configOrExit(process.env);
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY }).child({ side: 'core' });
  if (config.eventLog === null) refuse(logger, 'EVENT_LOG must be set for the core server (nats://host:port): it meets the channel only through NATS', 2);
  // Handlers first; a signal that comes before the core is up stops it once it is.
  const signals = takeStopSignals(logger);

  let release: () => void;
  try {
    mkdirSync(config.dataDir, { recursive: true });
    release = lockDataDir(config.dataDir);
  } catch (error) {
    refuse(logger, error instanceof DataDirBusy ? error.message : `DATA_DIR ${config.dataDir} cannot be used: ${error instanceof Error ? error.message : String(error)}`, 2);
  }
  const settings = jetstreamSettingsOf(config.eventLog);
  let connection;
  try {
    connection = await openJetStream(settings, { role: 'writer', logger });
  } catch (error) {
    release();
    refuse(logger, `the event log at ${settings.url} cannot be used: ${error instanceof Error ? error.message : String(error)}`, 1);
  }
  const clock = createSystemClock();
  const bankSettings = { ...DEFAULT_SETTINGS, ...bankSettingsOf(config) };
  // The log faults of the split mode would be queued at the channel, which publishes nothing:
  // the channel refuses them (409), and this queue stays empty.
  const log = connection.eventLog({ clock, faults: new FaultQueue() });
  const link = coreLinkOverNats(connection.nats, settings.subjectPrefix, logger);
  const core = createCoreBanking({
    dbPath: join(config.dataDir, 'core.db'),
    clock,
    link,
    log,
    rules: coreRules(bankSettings, FULL_PROTOCOL),
    pruneMarginMs: bankSettings.cutoffMarginMs,
    logLine: (level, fields, message) => logger[level](fields, message),
  });
  try {
    core.start();
  } catch (error) {
    await connection.close();
    release();
    refuse(logger, `the core cannot start: ${error instanceof Error ? error.message : String(error)}`, 2);
  }

  async function perform(op: CoreOp): Promise<unknown> {
    switch (op.op) {
      case 'openAccount': {
        const account = core.openAccount(op.holderName, op.openingBalanceWon);
        await core.durable();
        logger.info({ accountId: account.accountId }, `opened account ${account.accountId}`);
        return account;
      }
      case 'deposit': {
        const posting = core.deposit(op.input);
        await core.durable();
        return posting;
      }
      case 'restart':
        logger.info('restarting: stop, close, reopen, restore');
        core.stop();
        core.start();
        logger.info('the core is back');
        return null;
      case 'commitCount':
        return core.commitCount() + log.commits;
      case 'backlog':
        return log.backlog();
    }
  }
  const ops = serveCoreOps(connection.nats, settings.subjectPrefix, perform, logger);
  const stop = async () => {
    logger.info({ signal: signals.first }, 'stopping the core');
    ops.close();
    link.close();
    core.stop();
    await connection.close();
    release();
    logger.info('stopped: core.db closed, DATA_DIR released');
  };
  logger.info({ dataDir: config.dataDir, eventLog: settings.url, stream: settings.stream }, 'scrollbank core ready: taking link requests and operator calls over NATS');
  signals.onStop(() =>
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'the core did not stop cleanly');
        process.exit(1);
      },
    ),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
