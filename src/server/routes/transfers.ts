/**
 * /transfers: a customer moves money. The request is stored before it is sent (S3), an
 * Idempotency-Key returns the original transfer (S7), and Prefer: wait=N bounds how long
 * the call waits for the outcome.
 */
import { Hono } from 'hono';
import type { AppDeps, AppEnv } from '../env.ts';
import { customerOf, mayRead } from '../auth.ts';
import { readJson, parseWith } from '../body.ts';
import { Problem, forbidden, notFound, restarting } from '../problem.ts';
import { DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS, idempotencyKey, moneySchemas, transferIdParam } from '../schemas.ts';
import { transferJson } from '../serialize.ts';

/** RFC 7240 `Prefer: wait=N`, clamped to MAX_WAIT_SECONDS; anything unreadable means the default. */
export function preferredWaitSeconds(header: string | undefined): number {
  const match = header === undefined ? null : /(?:^|[,;\s])wait=(\d{1,6})(?:$|[,;\s])/.exec(header);
  if (match === null) return DEFAULT_WAIT_SECONDS;
  return Math.min(Number(match[1]), MAX_WAIT_SECONDS);
}

/** Waits for the channel's open batch, which holds this request, to commit. */
async function durableOrRestarting(bank: AppDeps['bank']): Promise<void> {
  try {
    await bank.channel.durable();
  } catch {
    throw restarting('the channel restarted before this request was stored; retry it with the same Idempotency-Key');
  }
}

export function transferRoutes({ bank }: AppDeps) {
  const schemas = moneySchemas(bank.settings.maxAmountWon);
  const app = new Hono<AppEnv>();

  app.post('/', async (c) => {
    const customer = customerOf(c);
    const keyHeader = c.req.header('idempotency-key');
    const key = keyHeader === undefined ? null : parseWith(idempotencyKey, keyHeader, 'Idempotency-Key');
    const body = await readJson(c, schemas.transfer);
    const from = bank.channel.account(body.fromAccountId);
    if (from === undefined || from.customerId !== customer.id) throw forbidden(`account ${body.fromAccountId} is not yours`);

    const outcome = bank.channel.requestTransfer({
      customerId: customer.id,
      fromAccountId: body.fromAccountId,
      toAccountId: body.toAccountId,
      amountWon: body.amount,
      memo: body.memo ?? null,
      idempotencyKey: key,
    });
    switch (outcome.kind) {
      case 'replayed': {
        await durableOrRestarting(bank);
        // A retry waits for the outcome as the first call did: the customer wants the answer.
        const waitSeconds = preferredWaitSeconds(c.req.header('prefer'));
        const id = outcome.transfer.id;
        const now = (await bank.channel.waitForSettled(id, waitSeconds * 1000)) ?? outcome.transfer;
        return c.json(transferJson(now), 200, { Location: `/transfers/${id}`, 'Preference-Applied': `wait=${waitSeconds}` });
      }
      case 'key-reused':
        throw new Problem(422, 'Idempotency Key Reused', 'this Idempotency-Key was used with a different body', { transferId: outcome.transferId });
      case 'in-flight':
        throw new Problem(409, 'Transfer In Flight', `account ${body.fromAccountId} already has an unfinished transfer`, {
          inFlightTransferId: outcome.inFlightTransferId,
        });
      case 'created': {
        // Nothing is acknowledged before the request is durable (S3); a crash first answers 503.
        await durableOrRestarting(bank);
        const waitSeconds = preferredWaitSeconds(c.req.header('prefer'));
        const id = outcome.transfer.id;
        const now = (await bank.channel.waitForSettled(id, waitSeconds * 1000)) ?? outcome.transfer;
        const settled = now.state === 'succeeded' || now.state === 'failed';
        return c.json(transferJson(now), settled ? 201 : 202, { Location: `/transfers/${id}`, 'Preference-Applied': `wait=${waitSeconds}` });
      }
    }
  });

  app.get('/:id', (c) => {
    const id = parseWith(transferIdParam, c.req.param('id'), 'transfer id');
    const transfer = bank.channel.transfer(id);
    if (transfer === undefined) throw notFound(`no transfer ${id}`);
    mayRead(c, transfer.customerId, `no transfer ${id}`);
    return c.json(transferJson(transfer));
  });

  return app;
}
