/**
 * /me and /accounts/*: balances and history from the channel's own copy. Nothing here
 * ever asks the core. History pages by keyset on the account's seq with signed cursors.
 */
import { Hono, type Context } from 'hono';
import type { PageItem } from '../../channel/channel-store.ts';
import type { AppDeps, AppEnv } from '../env.ts';
import { customerOf, mayRead } from '../auth.ts';
import { parseWith } from '../body.ts';
import type { CursorCodec } from '../cursor.ts';
import { badRequest, notFound } from '../problem.ts';
import { idParam, pageQuery } from '../schemas.ts';

/**
 * A page's body: the rows arrive as JSON documents already (db/005), so they are joined as
 * they are rather than parsed and stringified again. The rest is ordinary JSON.
 */
function pageJson(c: Context, rows: PageItem[], rest: Record<string, string | boolean | null>): Response {
  let body = '{"items":[';
  for (let i = 0; i < rows.length; i++) body += (i === 0 ? '' : ',') + rows[i]![1];
  body += ']';
  for (const [key, value] of Object.entries(rest)) body += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
  return c.body(`${body}}`, 200, { 'Content-Type': 'application/json' });
}

export function accountRoutes({ bank }: AppDeps, cursors: CursorCodec) {
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
    mayRead(c, account.customerId, `no account ${id}`);
    return account;
  };

  /** The history's account, checked without reading it: only its owner matters here. */
  const ownedAccountId = (c: Parameters<typeof mayRead>[0]): number => {
    const id = parseWith(idParam, c.req.param('id'), 'account id');
    const owner = bank.channel.ownerOf(id);
    if (owner === undefined) throw notFound(`no account ${id}`);
    mayRead(c, owner, `no account ${id}`);
    return id;
  };

  const seqOf = (cursor: string, accountId: number, what: 'cursor' | 'since'): number => {
    const seq = cursors.decode(cursor, accountId);
    if (seq === null) throw badRequest(`${what}: not a cursor this server issued for this account`);
    return seq;
  };

  app.get('/accounts/:id', (c) => {
    const account = ownedAccount(c);
    return c.json({ id: account.id, balance: account.balanceWon });
  });

  app.get('/accounts/:id/transactions', (c) => {
    const accountId = ownedAccountId(c);
    const query = parseWith(pageQuery, c.req.query(), 'query');

    if (query.since !== undefined) {
      // Pull to refresh: the rows newer than the cursor's row, oldest first.
      const afterSeq = seqOf(query.since, accountId, 'since');
      const rows = bank.channel.pageItemsAfter(accountId, afterSeq, query.limit + 1);
      const page = rows.slice(0, query.limit);
      const head = page[page.length - 1]?.[0] ?? afterSeq;
      return pageJson(c, page, { headCursor: cursors.encode(accountId, head), hasMore: rows.length > query.limit });
    }

    // Scrolling: newest first, below the cursor's row. Seqs run 1..n with no holes, so the
    // page that reaches seq 1 is the last.
    const beforeSeq = query.cursor === undefined ? Number.MAX_SAFE_INTEGER : seqOf(query.cursor, accountId, 'cursor');
    const rows = bank.channel.pageItemsBefore(accountId, beforeSeq, query.limit);
    const newest = rows[0]?.[0];
    const oldest = rows[rows.length - 1]?.[0];
    const nextCursor = oldest !== undefined && oldest > 1 && rows.length === query.limit ? cursors.encode(accountId, oldest) : null;
    // An empty history still gets a head: since=<it> then returns the account's first rows.
    const headCursor = newest !== undefined ? cursors.encode(accountId, newest) : query.cursor === undefined ? cursors.encode(accountId, 0) : null;
    return pageJson(c, rows, { nextCursor, headCursor });
  });

  return app;
}
