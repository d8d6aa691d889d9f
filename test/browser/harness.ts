/**
 * Browser test harness: the real server (src/main.ts) on 127.0.0.1 and a free port with a
 * temp DATA_DIR and short timings, and Debian's chromium driven by playwright-core with a
 * fresh profile. Every request must stay on this machine, and no page may log an error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildWeb } from '../../src/web/build.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const ADMIN_TOKEN = 'browser-tests-admin-token-0001';
/** Short enough that every scenario of the talk finishes in seconds. */
export const TIMING = { cutoffMs: 1_500, responseTimeoutMs: 800 };
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../dist/screenshots/', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ALLOWED_HOSTS = new Set(['127.0.0.1', 'localhost']);

export type Server = { url: string; process: ChildProcess; dataDir: string; output: () => string };

export async function startServer(): Promise<Server> {
  // npm test builds it first (pretest); a direct uvu run builds it here when stale.
  await buildWeb({ ifStale: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-browser-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? tmpdir(),
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      ADMIN_TOKEN,
      CUTOFF_MS: String(TIMING.cutoffMs),
      RESPONSE_TIMEOUT_MS: String(TIMING.responseTimeoutMs),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 30 s:\n${output}`)), 30_000);
    const check = () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}:\n${output}`)));
  });
  return { url, process: child, dataDir, output: () => output };
}

export async function stopServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  if (server.process.exitCode === null) {
    const exited = new Promise((r) => server.process.once('exit', r));
    server.process.kill('SIGTERM');
    await exited;
  }
  rmSync(server.dataDir, { recursive: true, force: true });
}

export type Browser = {
  context: BrowserContext;
  profileDir: string;
  /** Requests to anywhere but this machine (they were aborted). */
  outside: string[];
  /** Console errors and uncaught page errors. */
  errors: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
};

export async function launchBrowser(): Promise<Browser> {
  // A missing browser fails the run: .ci/run installs it, and nothing here skips.
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium`);
  const profileDir = mkdtempSync(join(tmpdir(), 'scrollbank-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const outside: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || ALLOWED_HOSTS.has(url.hostname)) return route.continue();
    outside.push(url.href);
    return route.abort('blockedbyclient');
  });
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && !ALLOWED_HOSTS.has(url.hostname) && !outside.includes(url.href)) outside.push(url.href);
  });
  const watch = (page: Page) => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()} (${page.url()})`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message} (${page.url()})`));
    page.on('websocket', (ws) => {
      const url = new URL(ws.url());
      if (!ALLOWED_HOSTS.has(url.hostname)) outside.push(ws.url());
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    profileDir,
    outside,
    errors,
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profileDir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

type Json = any;

/** The API straight from the test (node's fetch), for setup and for checking what the page says. */
export async function api(server: Server, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const init: RequestInit = { method, headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(`${server.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

export async function openCustomer(server: Server, name: string, openingBalance: number): Promise<{ token: string; accountId: number }> {
  const { status, body } = await api(server, ADMIN_TOKEN, 'POST', '/admin/customers', { name, openingBalance });
  if (status !== 201) throw new Error(`POST /admin/customers answered ${status}: ${JSON.stringify(body)}`);
  return { token: body.token, accountId: body.account.id };
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export type AxeFinding = { id: string; impact: string; help: string; nodes: string[] };

/**
 * axe-core's serious and critical violations on the page as it stands. The script is run
 * through the DevTools protocol, which the pages' Content-Security-Policy does not govern.
 */
export async function seriousAxeViolations(page: Page): Promise<AxeFinding[]> {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document);
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact!, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
}

/** Elements wider than the viewport, or sticking out of it to the right (a horizontal scroll). */
export function overflowingElements(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out: string[] = [];
    for (const el of document.querySelectorAll('body *')) {
      // Inside a chart, which is drawn at 1:1 and pans on its own, the chart's box is what must fit.
      if (el.closest('.chart') !== null && !el.classList.contains('chart')) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right > width + 1 || r.left < -1) out.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${[...el.classList].join('.')} (${Math.round(r.left)}..${Math.round(r.right)} of ${width})`);
    }
    if (document.documentElement.scrollWidth > width) out.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
    return out;
  });
}
