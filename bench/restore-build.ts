/**
 * The child process of `npm run bench:restore`: builds N unfinished transfers on a durable bank
 * (synchronous=FULL) in the DATA_DIR it is given, with the core's link cut, tells its parent,
 * and waits to be SIGKILLed. Run by bench/restore.ts only.
 */
import { performance } from 'node:perf_hooks';
import cliProgress from 'cli-progress';
import { createBank, DEFAULT_SETTINGS, type Bank } from '../src/bank.ts';
import { assert } from '../src/lib/assert.ts';
import { createSystemClock, type Clock } from '../src/lib/clock.ts';
import { CONSUMER_NAME } from '../src/channel/log-consumer.ts';
import { cryptoRandom } from '../src/lib/ids.ts';

/** What the child tells its parent once the last transfer is committed. */
export type BuiltMessage = {
  type: 'built';
  transfers: number;
  /** A sender, to ask for its history over HTTP after the restore. */
  probe: { token: string; accountId: number };
  customersSeconds: number;
  transfersSeconds: number;
  heapUsedBytes: number;
  rssBytes: number;
};

const OPENING_BALANCE_WON = 1_000;
const AMOUNT_WON = 1;
/** Customers and transfers written per transaction: the build is setup, not what is measured. */
const CUSTOMER_BATCH = 500;
const TRANSFER_BATCH = 1_000;

/**
 * Timers armed for longer than this never fire in the builder: hand-offs (the link, the log's
 * wake-up, a commit batch) run, the protocol's deadlines do not.
 */
const LONGEST_TIMER_MS = 250;
assert(LONGEST_TIMER_MS < DEFAULT_SETTINGS.responseTimeoutMs && LONGEST_TIMER_MS < DEFAULT_SETTINGS.backoffBaseMs, 'no deadline of the protocol fires while building');

/**
 * Wall time on which no response deadline expires while the build goes on (it takes longer
 * than one), so that every transfer is left in `sent`, as a crash right after sending leaves it.
 */
function clockWithoutDeadlines(): Clock {
  const system = createSystemClock();
  let nextId = -1;
  return {
    now: system.now,
    setTimeout: (fn, delayMs) => (delayMs <= LONGEST_TIMER_MS ? system.setTimeout(fn, delayMs) : { id: nextId-- }),
    clearTimeout: (handle) => (handle.id > 0 ? system.clearTimeout(handle) : undefined),
  };
}

function progressBar(label: string, total: number) {
  const bar = new cliProgress.SingleBar({ format: `${label} |{bar}| {value}/{total} {eta}s left`, hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return bar;
}

type Customers = { customerIds: Int32Array; accountIds: Int32Array; probeToken: string };

/** Opens `count` customers, each with one account, in batched transactions on core.db and channel.db. */
async function openCustomers(bank: Bank, count: number): Promise<Customers> {
  const customerIds = new Int32Array(count);
  const accountIds = new Int32Array(count);
  let probeToken = '';
  const bar = progressBar('opening accounts    ', count);
  const coreDb = bank.core.readModel().db;
  const channelDb = bank.channel.readModel().db;
  const openBatch = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const name = `Restore Customer ${i + 1}`;
      const { customer, token } = bank.channel.createCustomer(name);
      const { accountId } = bank.core.openAccount(name, OPENING_BALANCE_WON);
      bank.channel.registerAccount(customer.id, accountId);
      customerIds[i] = customer.id;
      accountIds[i] = accountId;
      if (i === 0) probeToken = token;
    }
  };
  for (let from = 0; from < count; from += CUSTOMER_BATCH) {
    const to = Math.min(count, from + CUSTOMER_BATCH);
    coreDb.transaction(() => channelDb.transaction(() => openBatch(from, to))())();
    bar.update(to);
    await new Promise((r) => setImmediate(r));
  }
  bar.stop();
  // The account-opened records and opening postings are in the history copy before any transfer.
  bank.channel.drainLog();
  assert(bank.channel.readModel().consumerOffset(CONSUMER_NAME) >= bank.log.endOffset(), 'the history copy has every account');
  return { customerIds, accountIds, probeToken };
}

/** Customer i sends to customer i+1: every sender has its own account, so each may hold one unfinished transfer. */
async function requestTransfers(bank: Bank, c: Customers, count: number): Promise<void> {
  const bar = progressBar('requesting transfers', count);
  const channelDb = bank.channel.readModel().db;
  const requestBatch = (from: number, to: number) => {
    const outcomes = [];
    for (let i = from; i < to; i++) {
      outcomes.push(bank.channel.requestTransfer({ customerId: c.customerIds[i]!, fromAccountId: c.accountIds[i]!, toAccountId: c.accountIds[i + 1]!, amountWon: AMOUNT_WON, memo: null, idempotencyKey: null }));
    }
    return outcomes;
  };
  for (let from = 0; from < count; from += TRANSFER_BATCH) {
    const to = Math.min(count, from + TRANSFER_BATCH);
    // Awaited, should a request come to resolve once its commit is done rather than at once.
    const outcomes = await Promise.all(channelDb.transaction(() => requestBatch(from, to))());
    outcomes.forEach((o, k) => assert(o.kind === 'created', `transfer ${from + k + 1} is created, not ${o.kind}`));
    bar.update(to);
    await new Promise((r) => setImmediate(r));
  }
  bar.stop();
}

async function main(): Promise<void> {
  const [dataDir, transfersArg] = process.argv.slice(2);
  const transfers = Number(transfersArg);
  assert(dataDir !== undefined && Number.isInteger(transfers) && transfers >= 1 && process.send !== undefined, 'usage: forked by bench/restore.ts with DATA_DIR and N');
  // Should the parent die, so does the child: it is never left holding the data directory.
  process.on('disconnect', () => process.exit(1));
  const clock = clockWithoutDeadlines();
  const bank = createBank({ dataDir, coreClock: clock, channelClock: clock, random: cryptoRandom, synchronous: 'FULL' });
  bank.start();

  const customersStarted = performance.now();
  const customers = await openCustomers(bank, transfers + 1);
  const customersSeconds = (performance.now() - customersStarted) / 1000;
  // The link is cut: a stopped core loses whatever reaches it.
  bank.core.stop();
  const transfersStarted = performance.now();
  await requestTransfers(bank, customers, transfers);
  const unfinished = bank.channel.readModel().db.prepare("SELECT COUNT(*) FROM transfers WHERE state = 'sent'").pluck().get();
  assert(unfinished === transfers, `all ${transfers} transfers are sent and unfinished, not ${String(unfinished)}`);
  const memory = process.memoryUsage();
  const built: BuiltMessage = {
    type: 'built',
    transfers,
    probe: { token: customers.probeToken, accountId: customers.accountIds[0]! },
    customersSeconds,
    transfersSeconds: (performance.now() - transfersStarted) / 1000,
    heapUsedBytes: memory.heapUsed,
    rssBytes: memory.rss,
  };
  process.send!(built);
  // Wait for the SIGKILL: no clean stop, nothing closed.
  setInterval(() => {}, 60_000);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
