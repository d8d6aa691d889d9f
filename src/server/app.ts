/**
 * The Hono app: mounts each route file, authenticates, and turns every error into one
 * problem+json shape. Tests call `app.request()` on it with no socket.
 */
import { join } from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { routePath } from 'hono/route';
import { randomId } from '../lib/ids.ts';
import { silentLogger } from '../lib/logger.ts';
import { loadOrCreateSecretKey } from '../lib/secret-key.ts';
import { createCursorCodec } from './cursor.ts';
import { HTTPException } from 'hono/http-exception';
import type { AppDeps, AppEnv } from './env.ts';
import { authenticate, requireAdmin } from './auth.ts';
import { Problem, problemResponse, restarting } from './problem.ts';
import { describeApi } from './openapi.ts';
import { docsRoutes } from './routes/docs.ts';
import { accountRoutes } from './routes/accounts.ts';
import { adminRoutes } from './routes/admin.ts';
import { machineRoutes } from './routes/machines.ts';
import { transferStreamRoutes, type TransferStreamOptions } from './routes/transfer-stream.ts';
import { transferRoutes } from './routes/transfers.ts';
import { webRoutes, type WebOptions } from './routes/web.ts';

/** The key that signs history cursors, in DATA_DIR: cursors stay valid across restarts. */
export const CURSOR_KEY_FILE = 'cursor.key';

/** A client's X-Request-Id is taken when it is 1-128 visible ASCII characters; otherwise one is made. */
export const REQUEST_ID_HEADER = 'X-Request-Id';
const CLIENT_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export type AppOptions = AppDeps & {
  /** Monotonic milliseconds for request durations (performance.now by default). */
  now?: () => number;
  /** What the ids this app makes start with (random by default; the simulator names its own, so its stream stays its own). */
  requestIdPrefix?: string;
  /** Called with every error that became a 500, after it is logged. */
  onUnexpectedError?: (error: unknown) => void;
  /** Where the built front end is (dist/web by default). */
  web?: WebOptions;
  stream?: TransferStreamOptions;
};

export function createApp(deps: AppOptions) {
  const app = new OpenAPIHono<AppEnv>();
  const auth = authenticate(deps.bank, deps.adminToken);
  const logger = deps.logger ?? silentLogger;
  const now = deps.now ?? (() => performance.now());
  // Made ids are this life's random prefix and a count: unique across restarts, and cheap.
  const idPrefix = deps.requestIdPrefix ?? randomId(deps.bank.random, 'req');
  let made = 0;

  // One line per request, with its id on the response; the path is logged without its query,
  // where a browser route's ?access_token= would be.
  app.use(async (c, next) => {
    const started = now();
    const given = c.req.header(REQUEST_ID_HEADER);
    const requestId = given !== undefined && CLIENT_REQUEST_ID.test(given) ? given : `${idPrefix}-${(++made).toString(36)}`;
    c.set('requestId', requestId);
    try {
      await next();
    } finally {
      c.res.headers.set(REQUEST_ID_HEADER, requestId);
      const status = c.res.status;
      const route = routePath(c) || null;
      const ms = now() - started;
      const line = { requestId, method: c.req.method, route, path: c.req.path, status, durationMs: Math.round(ms * 100) / 100 };
      deps.metrics?.request(c.req.method, route ?? '(none)', status, ms / 1000);
      if (status >= 500) logger.error(line, 'request');
      else logger.info(line, 'request');
    }
  });

  // Commit, then effect: no answer leaves before what it shows or acknowledges is durable.
  // A side that crashed before its batch committed answers 503, and the client retries.
  // Customers' routes read and write the channel only; the admin's also write the core.
  app.use(async (c, next) => {
    await next();
    try {
      await (c.req.path.startsWith('/admin/') ? deps.bank.durable() : deps.bank.channel.durable());
    } catch {
      c.res = undefined;
      c.res = problemResponse(c, restarting('the bank restarted before this request was made durable; retry it (with the same Idempotency-Key)'));
    }
  });
  app.get('/health', (c) => c.json({ status: 'ok' }));
  describeApi(app, deps.bank.settings.maxAmountWon);
  app.route('/docs', docsRoutes());
  app.route('/machines', machineRoutes());
  app.route('/', webRoutes(deps, deps.web));

  if (deps.metrics !== undefined) {
    const { registry } = deps.metrics;
    // Prometheus sends the admin token as a bearer token (its `authorization` setting).
    app.get('/metrics', auth, requireAdmin, async (c) => c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType }));
  }
  app.use('/admin/*', auth, requireAdmin);
  app.route('/admin', adminRoutes(deps));
  // Before /transfers/*: EventSource cannot send a header, so the token may come in
  // ?access_token= or the scrollbank_token cookie here (a GET that changes nothing).
  app.use('/transfers/:id/stream', authenticate(deps.bank, deps.adminToken, { queryOrCookie: true }));
  app.route('/transfers', transferStreamRoutes(deps, deps.stream));
  app.use('/transfers/*', auth);
  app.use('/transfers', auth);
  app.route('/transfers', transferRoutes(deps));
  app.use('/me', auth);
  app.use('/accounts/*', auth);
  app.route('/', accountRoutes(deps, createCursorCodec(loadOrCreateSecretKey(join(deps.bank.dataDir, CURSOR_KEY_FILE), deps.bank.random))));

  app.notFound((c) => problemResponse(c, new Problem(404, 'Not Found', `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((error, c) => {
    if (error instanceof Problem) {
      return problemResponse(c, error, error.status === 401 ? { ...error.headers, 'WWW-Authenticate': 'Bearer' } : error.headers);
    }
    if (error instanceof HTTPException && error.status < 500) {
      return problemResponse(c, new Problem(error.status as 400, 'Bad Request', error.message || 'bad request'));
    }
    logger.error({ err: error, requestId: c.get('requestId'), method: c.req.method, path: c.req.path }, 'unexpected error');
    deps.onUnexpectedError?.(error);
    return problemResponse(c, new Problem(500, 'Internal Server Error', 'something broke inside the bank; the server log has the details'));
  });
  return app;
}

export type App = ReturnType<typeof createApp>;
