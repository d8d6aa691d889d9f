/**
 * Bearer-token authentication: the admin token guards /admin/*, customer tokens are looked
 * up by their hash. Missing or unknown token: 401; a customer where it may not go: 403.
 * Read-only browser routes (event streams, viz pages) also take the token from the
 * `access_token` query parameter or the `scrollbank_token` cookie: EventSource and a plain
 * link cannot send an Authorization header.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Bank } from '../bank.ts';
import type { AppEnv, Principal } from './env.ts';
import { forbidden, notFound, unauthorized } from './problem.ts';

const MAX_TOKEN_LENGTH = 200;
const digest = (s: string) => createHash('sha256').update(s).digest();

/** RFC 6750 section 2.3's name for a token in the query. */
export const TOKEN_QUERY_PARAM = 'access_token';
export const TOKEN_COOKIE = 'scrollbank_token';

export type TokenSources = {
  /** Also accept `?access_token=` and the `scrollbank_token` cookie (GET-only browser routes). */
  queryOrCookie?: boolean;
};

function tokenOf(c: Context, sources: TokenSources): string {
  const header = c.req.header('authorization');
  if (header === undefined && sources.queryOrCookie === true) {
    const token = c.req.query(TOKEN_QUERY_PARAM) ?? getCookie(c, TOKEN_COOKIE);
    if (token !== undefined && /^[\x21-\x7e]+$/.test(token)) return token;
    throw unauthorized(`send Authorization: Bearer <token>, ?${TOKEN_QUERY_PARAM}=<token> or the ${TOKEN_COOKIE} cookie`);
  }
  const match = header === undefined ? null : /^Bearer ([\x21-\x7e]+)$/i.exec(header);
  if (match === null) throw unauthorized('send Authorization: Bearer <token>');
  return match[1]!;
}

/** Who a token belongs to: the admin (compared in constant time, its digest made once), a customer, or no one. */
export function principals(bank: Bank, adminToken: string): (token: string) => Principal | undefined {
  const adminDigest = digest(adminToken);
  return (token) => {
    if (token.length > MAX_TOKEN_LENGTH) return undefined;
    if (timingSafeEqual(digest(token), adminDigest)) return { kind: 'admin' };
    const customer = bank.channel.authenticate(token);
    return customer === undefined ? undefined : { kind: 'customer', customer };
  };
}

export function authenticate(bank: Bank, adminToken: string, sources: TokenSources = {}): MiddlewareHandler<AppEnv> {
  const principalOf = principals(bank, adminToken);
  return async (c, next) => {
    const token = tokenOf(c, sources);
    const principal = principalOf(token);
    if (principal === undefined) throw unauthorized('unknown token');
    c.set('principal', principal);
    await next();
  };
}

export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get('principal').kind !== 'admin') throw forbidden('only the admin token may use this route');
  await next();
};

/** The calling customer; the admin is not a customer. */
export function customerOf(c: Context<AppEnv>) {
  const p = c.get('principal');
  if (p.kind !== 'customer') throw forbidden('this needs a customer token');
  return p.customer;
}

/**
 * The admin may read anything; a customer only what is theirs. Someone else's is answered
 * exactly as what does not exist (`notFoundDetail`), so that no customer can learn which
 * account or transfer ids exist.
 */
export function mayRead(c: Context<AppEnv>, ownerCustomerId: number | null, notFoundDetail: string): void {
  const p = c.get('principal');
  if (p.kind === 'admin') return;
  if (ownerCustomerId !== p.customer.id) throw notFound(notFoundDetail);
}
