/**
 * The entry point: reads the configuration from the environment, wires the real clock,
 * randomness and databases into one bank, seeds demo customers on first start, and serves
 * the HTTP API.
 */
import { mkdirSync } from 'node:fs';
import { serve } from '@hono/node-server';
import { createBank } from './bank.ts';
import { ConfigError, parseConfig } from './config.ts';
import { createSystemClock } from './lib/clock.ts';
import { cryptoRandom, randomToken } from './lib/ids.ts';
import { loadSkyInspector } from './inspect.ts';
import type { Inspect, TransferInspector } from './lib/inspect.ts';
import { DataDirBusy, lockDataDir } from './lib/data-dir-lock.ts';
import { createApp } from './server/app.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  let releaseDataDir: () => void;
  try {
    mkdirSync(config.dataDir, { recursive: true });
    releaseDataDir = lockDataDir(config.dataDir);
  } catch (error) {
    // Stop before anything is opened, restored or sent, with a message naming the variable.
    const why = error instanceof DataDirBusy ? error.message : `DATA_DIR ${config.dataDir} cannot be used: ${error instanceof Error ? error.message : String(error)}`;
    console.error(why);
    process.exit(2);
  }
  let inspect: { inspect: Inspect; transfers: TransferInspector } | undefined;
  if (config.inspect) {
    // Before the bank starts, so that the coreBanking actor is seen from its start.
    inspect = await loadSkyInspector((line) => console.error(line)).catch((error: unknown) => {
      console.error('INSPECT=1 but the inspector could not start; going on without it:', error);
      return undefined;
    });
  }
  const clock = createSystemClock();
  const bank = createBank({
    dataDir: config.dataDir,
    coreClock: clock,
    channelClock: clock,
    random: cryptoRandom,
    inspect: inspect?.inspect,
    transferInspector: inspect?.transfers,
    // The talk's core is another server: here it gets a thread, and the machine's second core.
    // With INSPECT=1 it stays on this thread, where the inspector can see its actor.
    coreThread: inspect === undefined,
    settings: { cutoffMs: config.cutoffMs, responseTimeoutMs: config.responseTimeoutMs, queryTimeoutMs: config.responseTimeoutMs, maxAmountWon: config.maxAmountWon, reconcileIntervalMs: config.reconcileMs },
  });
  await bank.ready();
  bank.start();

  const adminToken = config.adminToken ?? randomToken(cryptoRandom);
  if (config.adminToken === null) console.log(`admin token (random, set ADMIN_TOKEN to choose one): ${adminToken}`);
  if (bank.channel.customer(1) === undefined) {
    for (const [name, opening] of [['Kim Minji', 1_000_000], ['Lee Junho', 500_000]] as const) {
      const { accountId, token } = bank.openCustomer(name, opening);
      console.log(`demo customer ${name}: account ${accountId} (${opening} won), token ${token}`);
    }
    await bank.durable();
  }

  const app = createApp({ bank, adminToken });
  const listen = config.host === null ? { fetch: app.fetch, port: config.port } : { fetch: app.fetch, port: config.port, hostname: config.host };
  const server = serve(listen, (info) => {
    console.log(`scrollbank listening on http://${config.host ?? 'localhost'}:${info.port} (data in ${config.dataDir})`);
  });
  server.on('error', (error: NodeJS.ErrnoException) => {
    const why = error.code === 'EADDRINUSE' ? `PORT ${config.port} is already in use` : `the server cannot listen: ${error.message}`;
    console.error(why);
    bank.close();
    releaseDataDir();
    process.exit(1);
  });
  const shutdown = () => {
    server.close();
    bank.close();
    releaseDataDir();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
