/**
 * /admin/*: open customers and accounts in the core, deposit money from other banks,
 * queue network faults, and crash-restart either side. Admin token only.
 */
import { Hono } from 'hono';
import { silentLogger } from '../../lib/logger.ts';
import type { AppDeps, AppEnv } from '../env.ts';
import { readJson, parseWith } from '../body.ts';
import { MAX_QUEUED_FAULTS } from '../../net/faults.ts';
import { Problem, notFound } from '../problem.ts';
import { fault, idParam, moneySchemas, restart } from '../schemas.ts';
import { historyItemJson, reconcileJson } from '../serialize.ts';
import { ReconcileInterrupted } from '../../channel/reconciler.ts';
import { CoreUnavailable } from '../../net/nats-link.ts';

/**
 * An operator's call that reaches the core; in the split mode a core that does not answer is a
 * 503, which says whether the call was certainly not done or may have been (`ifUnknown`).
 */
async function onCore<T>(call: () => Promise<T>, ifUnknown: string): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof CoreUnavailable) {
      throw new Problem(503, 'Core Unavailable', `${error.message}. ${error.notDone ? 'Nothing was done: start the core server, then retry' : ifUnknown}`);
    }
    throw error;
  }
}

const MADE_OR_NOT = 'It may have been done or not: an account or deposit the core made shows in GET /accounts/:id and its transactions once the log brings it; a retry before that may make it twice';

export function adminRoutes({ bank, logger = silentLogger }: AppDeps) {
  const schemas = moneySchemas(bank.settings.maxAmountWon);
  const app = new Hono<AppEnv>();

  app.post('/customers', async (c) => {
    const body = await readJson(c, schemas.newCustomer);
    const { customerId, token, accountId } = await onCore(() => bank.ops.openCustomer(body.name, body.openingBalance), MADE_OR_NOT);
    return c.json({ customer: { id: customerId, name: body.name }, token, account: { id: accountId, balance: body.openingBalance } }, 201);
  });

  app.post('/customers/:id/accounts', async (c) => {
    const customerId = parseWith(idParam, c.req.param('id'), 'customer id');
    const body = await readJson(c, schemas.newAccount);
    const customer = bank.channel.customer(customerId);
    if (customer === undefined) throw notFound(`no customer ${customerId}`);
    const account = await onCore(() => bank.ops.openAccount(customer.id, customer.name, body.openingBalance), MADE_OR_NOT);
    return c.json({ account: { id: account.accountId, balance: account.balanceWon } }, 201);
  });

  // The log lines report what is durable: each comes once its commit has returned.
  app.post('/customers/:id/tokens', async (c) => {
    const customerId = parseWith(idParam, c.req.param('id'), 'customer id');
    if (bank.channel.customer(customerId) === undefined) throw notFound(`no customer ${customerId}`);
    const token = bank.channel.issueToken(customerId);
    await bank.channel.durable();
    logger.info({ customerId }, `issued a new token for customer ${customerId}`);
    return c.json({ customerId, token }, 201);
  });

  app.delete('/customers/:id/tokens', async (c) => {
    const customerId = parseWith(idParam, c.req.param('id'), 'customer id');
    if (bank.channel.customer(customerId) === undefined) throw notFound(`no customer ${customerId}`);
    const revoked = bank.channel.revokeTokens(customerId);
    await bank.channel.durable();
    logger.warn({ customerId, revoked }, `revoked every token of customer ${customerId}`);
    return c.json({ customerId, revoked });
  });

  app.post('/deposits', async (c) => {
    const body = await readJson(c, schemas.deposit);
    const posting = await onCore(() => bank.ops.deposit({ accountId: body.accountId, amountWon: body.amount, fromBank: body.fromBank, fromName: body.fromName }), MADE_OR_NOT);
    if (posting === 'unknown-account') throw notFound(`no account ${body.accountId}`);
    return c.json({ accountId: posting.accountId, ...historyItemJson(posting) }, 201);
  });

  app.post('/faults', async (c) => {
    const body = await readJson(c, fault);
    if (bank.faults.size >= MAX_QUEUED_FAULTS) {
      throw new Problem(409, 'Fault Queue Full', `at most ${MAX_QUEUED_FAULTS} faults may be queued; DELETE /admin/faults to clear them`);
    }
    if (bank.split && body.pipe === 'log') {
      throw new Problem(409, 'Not Available In Split Mode', 'log faults apply where records are published, which in the split mode is the core process; link faults (request, response) apply here, at the channel\'s end of the link');
    }
    const queued = { pipe: body.pipe, action: body.action, count: body.count, delayMs: body.delayMs ?? 0, messages: body.messages };
    bank.faults.add(queued);
    logger.info({ fault: queued, queued: bank.faults.size }, `fault queued on the ${queued.pipe} pipe: ${queued.action} x${queued.count}`);
    return c.json({ fault: queued, queue: bank.faults.list() }, 201);
  });
  app.get('/faults', (c) => c.json({ faults: bank.faults.list() }));
  app.delete('/faults', (c) => {
    bank.faults.clear();
    logger.info('faults cleared');
    return c.body(null, 204);
  });

  app.post('/restart', async (c) => {
    const { side } = await readJson(c, restart);
    await onCore(() => bank.ops.restart(side), 'The core may or may not have restarted; a restart is safe to ask for again');
    return c.json({ side, status: 'restarted', transfersInFlight: bank.channel.unfinishedCount() });
  });

  app.post('/reconcile', async (c) => {
    try {
      return c.json(reconcileJson(await bank.channel.reconcile()));
    } catch (error) {
      if (error instanceof ReconcileInterrupted) throw new Problem(503, 'Channel Restarting', 'the channel stopped during reconciliation; try again');
      throw error;
    }
  });
  app.get('/reconcile', (c) => {
    const last = bank.channel.lastReconcileReport();
    if (last === null) throw notFound('no reconciliation has run yet; POST /admin/reconcile runs one');
    return c.json(reconcileJson(last));
  });

  return app;
}
