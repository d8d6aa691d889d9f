/**
 * GET /docs: the interactive API reference, Swagger UI from the project's own node_modules
 * (swagger-ui-dist), reading GET /openapi.json. Nothing is loaded from anywhere else.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import type { AppEnv } from '../env.ts';
import { notFound } from '../problem.ts';

const DIST = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The files of swagger-ui-dist the page uses, and their types. */
const FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  // The source maps the script and the style sheet name, for a browser's developer tools.
  'swagger-ui.css.map': 'application/json',
  'swagger-ui-bundle.js.map': 'application/json',
};

// Swagger UI sets style attributes as it renders; scripts and everything else stay this server's.
const DOCS_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>scrollbank API reference</title>
  <link rel="icon" href="/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <main id="swagger-ui"></main>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

// "Try it out" sends requests to this server; the Authorize button takes a bearer token.
const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: 'none', tryItOutEnabled: false, persistAuthorization: false });\n`;

export function docsRoutes() {
  const app = new Hono<AppEnv>();
  const cache = new Map<string, Buffer>();
  const headers = (type: string) => ({ 'Content-Type': type, 'Content-Security-Policy': DOCS_POLICY, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });

  app.get('/', (c) => c.body(PAGE, 200, headers('text/html; charset=utf-8')));
  app.get('/init.js', (c) => c.body(INIT, 200, headers('text/javascript; charset=utf-8')));
  app.get('/:file', (c) => {
    const file = c.req.param('file');
    const type = Object.hasOwn(FILES, file) ? FILES[file]! : undefined;
    if (type === undefined) throw notFound(`no docs file ${file}`);
    let bytes = cache.get(file);
    if (bytes === undefined) {
      bytes = readFileSync(join(DIST, file));
      cache.set(file, bytes);
    }
    return c.body(new Uint8Array(bytes), 200, { ...headers(type), 'Cache-Control': 'public, max-age=3600' });
  });
  return app;
}
