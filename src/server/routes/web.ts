/**
 * The pages: GET / (the bank), GET /viz (every machine), GET /viz/transfers/:id (one
 * transfer, live; owner or admin only) and their bundled assets from dist/web, built by
 * `npm run build:web`. Everything is served from here: the pages fetch nothing from outside.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { WEB_ASSETS, WEB_CHUNK, WEB_DIST_DIR } from '../../web/paths.ts';
import type { AppDeps, AppEnv } from '../env.ts';
import { authenticate, mayRead, principals, TOKEN_COOKIE, TOKEN_QUERY_PARAM } from '../auth.ts';
import { parseWith } from '../body.ts';
import { Problem, notFound } from '../problem.ts';
import { transferIdParam } from '../schemas.ts';

/** The pages may load only what this server serves, and talk only to it. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  // Tokens may ride in a page's query (?access_token=): never pass the address on.
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};

const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

export type WebOptions = {
  /** Where the built front end is; dist/web by default. */
  webDir?: string;
};

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The live transfer page's sign-in: the token goes in the query once; the page then drops it from the address. */
function signInPage(path: string, why: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>scrollbank · sign in to watch this transfer</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/assets/style.css">
</head>
<body>
  <header>
    <h1>scrollbank</h1>
    <nav><a href="/">bank</a> · <a href="/viz">machines</a></nav>
  </header>
  <main>
    <section class="card" id="signin">
      <h2>Sign in to watch this transfer</h2>
      <p class="error" role="alert">${escapeHtml(why)}</p>
      <form method="get" action="${escapeHtml(path)}">
        <label>Your customer token (or the admin token) <input name="access_token" type="password" autocomplete="off" spellcheck="false" required></label>
        <button type="submit">Watch</button>
      </form>
      <p class="hint">Only the transfer's owner or the admin may watch it. The page removes the token from the address once it has it.</p>
    </section>
  </main>
</body>
</html>
`;
}

export function webRoutes(deps: AppDeps, options: WebOptions = {}) {
  const dir = options.webDir ?? WEB_DIST_DIR;
  const app = new Hono<AppEnv>();
  const cache = new Map<string, string>();

  const read = (path: string): string => {
    let text = cache.get(path);
    if (text === undefined) {
      try {
        text = readFileSync(join(dir, path), 'utf8');
      } catch {
        throw new Problem(503, 'Front End Not Built', `${path} is missing from ${dir}: run npm run build:web`);
      }
      cache.set(path, text);
    }
    return text;
  };

  const page = (c: Context, name: string, values: Record<string, string | number> = {}) => {
    const html = read(name).replace(/\{\{(\w+)\}\}/g, (_, key: string) => String(values[key] ?? ''));
    return c.body(html, 200, PAGE_HEADERS);
  };

  const { settings } = deps.bank;
  app.get('/', (c) => page(c, 'index.html', { cutoffMs: settings.cutoffMs, responseTimeoutMs: settings.responseTimeoutMs }));
  app.get('/viz', (c) => page(c, 'viz.html'));
  // A person who opens the live page without a (good) token gets a page that asks for one,
  // still with the 401: a plain GET form, so it works without a script.
  const auth = authenticate(deps.bank, deps.adminToken, { queryOrCookie: true });
  const principalOf = principals(deps.bank, deps.adminToken);
  const signInFirst: MiddlewareHandler<AppEnv> = async (c, next) => {
    // A token in the address is traded for the cookie at once, and the page is answered at its
    // clean address (303): the token stays in neither the address bar nor the history.
    const queryToken = c.req.query(TOKEN_QUERY_PARAM);
    if (queryToken !== undefined) {
      const headers: Record<string, string> = { Location: c.req.path, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' };
      if (/^[\x21-\x7e]+$/.test(queryToken) && principalOf(queryToken) !== undefined) {
        headers['Set-Cookie'] = `${TOKEN_COOKIE}=${encodeURIComponent(queryToken)}; Path=/; SameSite=Strict`;
      }
      return c.body(null, 303, headers);
    }
    try {
      await auth(c, next);
    } catch (error) {
      if (!(error instanceof Problem) || error.status !== 401) throw error;
      return c.body(signInPage(c.req.path, error.detail), 401, { ...PAGE_HEADERS, 'WWW-Authenticate': 'Bearer' });
    }
  };
  app.get('/viz/transfers/:id', signInFirst, (c) => {
    const id = parseWith(transferIdParam, c.req.param('id'), 'transfer id');
    const transfer = deps.bank.channel.transfer(id);
    if (transfer === undefined) throw notFound(`no transfer ${id}`);
    mayRead(c, transfer.customerId, `no transfer ${id}`);
    return page(c, 'viz.html');
  });
  app.get('/assets/:name', (c) => {
    const name = c.req.param('name');
    const isChunk = WEB_CHUNK.test(name);
    if (!(WEB_ASSETS as readonly string[]).includes(name) && !isChunk) throw notFound(`no asset ${name}`);
    // A chunk name is only a guess until a build made it: missing is a 404, not a missing build.
    if (isChunk && !cache.has(`assets/${name}`) && !existsSync(join(dir, 'assets', name))) throw notFound(`no asset ${name}`);
    const type = CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)]!;
    return c.body(read(`assets/${name}`), 200, { 'Content-Type': type, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' });
  });
  return app;
}
