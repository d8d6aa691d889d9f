/**
 * /me and /accounts/*: balances and history from the channel's own copy. Nothing here
 * ever asks the core.
 */
import { Hono } from 'hono';
import type { AppDeps, AppEnv } from '../env.ts';
import { customerOf, mayRead } from '../auth.ts';
import { parseWith } from '../body.ts';
import { badRequest, notFound } from '../problem.ts';
import { idParam, pageQuery } from '../schemas.ts';
import { historyItemJson } from '../serialize.ts';

/** An opaque page cursor: the account and the seq the next page starts below. */
function encodeCursor(accountId: number, beforeSeq: number): string {
  return Buffer.from(JSON.stringify({ a: accountId, s: beforeSeq })).toString('base64url');
}

function decodeCursor(cursor: string, accountId: number): number {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { a?: unknown; s?: unknown };
    if (value.a === accountId && Number.isSafeInteger(value.s) && (value.s as number) >= 1) return value.s as number;
  } catch {
    // falls through to the 400 below
  }
  throw badRequest('cursor: not a cursor this server issued for this account');
}

export function accountRoutes({ bank }: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get('/me', (c) => {
    const customer = customerOf(c);
    const accounts = bank.channel.accountsOf(customer.id).map((a) => ({ id: a.id, balance: a.balanceWon }));
    return c.json({ customer, accounts });
  });

  const ownedAccount = (c: Parameters<typeof mayRead>[0]) => {
    const id = parseWith(idParam, c.req.param('id'), 'account id');
    const account = bank.channel.account(id);
    if (account === undefined) throw notFound(`no account ${id}`);
    mayRead(c, account.customerId);
    return account;
  };

  app.get('/accounts/:id', (c) => {
    const account = ownedAccount(c);
    return c.json({ id: account.id, balance: account.balanceWon });
  });

  app.get('/accounts/:id/transactions', (c) => {
    const account = ownedAccount(c);
    const query = parseWith(pageQuery, c.req.query(), 'query');
    const beforeSeq = query.cursor === undefined ? Number.MAX_SAFE_INTEGER : decodeCursor(query.cursor, account.id);
    const rows = bank.channel.pageHistoryBefore(account.id, beforeSeq, query.limit);
    const last = rows[rows.length - 1];
    const nextCursor = rows.length === query.limit && last !== undefined && last.seq > 1 ? encodeCursor(account.id, last.seq) : null;
    return c.json({ items: rows.map(historyItemJson), nextCursor });
  });

  return app;
}
