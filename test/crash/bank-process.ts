/**
 * The real server (src/main.ts) as a child process on one DATA_DIR, for the crash test: start
 * it, SIGKILL it, start it again on the same directory, stop it with SIGTERM. Every wait is
 * bounded, and the child never outlives the test (see exit-with-parent.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_TOKENS_FILE } from '../../src/config.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PRELOAD = fileURLToPath(new URL('./exit-with-parent.ts', import.meta.url));
const START_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;
/** Enough of the child's output to explain a failure (request lines included), not all of it. */
const MAX_OUTPUT_CHARS = 200_000;

export type BankSettings = { adminToken: string; cutoffMs: number; responseTimeoutMs: number };

export type DemoCustomer = { name: string; accountId: number; openingBalanceWon: number; token: string };

export type BankProcess = {
  readonly dataDir: string;
  /** Spawns the server and resolves once it listens, with its address on 127.0.0.1. */
  start(): Promise<string>;
  /** The address of the running server; waits (bounded) while it is down or starting. */
  whenUp(timeoutMs?: number): Promise<string>;
  /** A crash: SIGKILL, and resolves once the process is gone (its DATA_DIR lock with it). */
  kill(): Promise<void>;
  /** A clean stop: SIGTERM (or the signal given), and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Synchronous last resort for finally blocks and exit handlers: SIGKILL if alive. */
  dispose(): void;
  /** The demo customers of the first start, from the tokens file it wrote in DATA_DIR. */
  demoCustomers(): DemoCustomer[];
  output(): string;
  /** The running server's process id. */
  pid(): number | null;
  starts(): number;
};

/**
 * Which server: the whole bank (src/main.ts), or one side of the split mode: the core
 * (src/core-main.ts, no HTTP; "up" once it takes link requests) or the channel (--channel).
 */
export type ServerKind = 'bank' | 'core' | 'channel';

const ENTRY: Record<ServerKind, { args: string[]; ready: RegExp }> = {
  bank: { args: ['src/main.ts'], ready: /scrollbank listening on http:\/\/127\.0\.0\.1:(\d+)/ },
  channel: { args: ['src/main.ts', '--channel'], ready: /scrollbank listening on http:\/\/127\.0\.0\.1:(\d+)/ },
  core: { args: ['src/core-main.ts'], ready: /scrollbank core ready()/ },
};

export function bankProcess(dataDir: string, settings: BankSettings, kind: ServerKind = 'bank', extraEnv: Record<string, string> = {}): BankProcess {
  const entry = ENTRY[kind];
  let child: ChildProcess | null = null;
  let url: string | null = null;
  let output = '';
  let startCount = 0;
  let waiters: { resolve: (url: string) => void }[] = [];
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-MAX_OUTPUT_CHARS);
  };
  const alive = (c: ChildProcess | null): boolean => c !== null && c.exitCode === null && c.signalCode === null;

  const exited = (c: ChildProcess, timeoutMs: number) =>
    new Promise<number | null>((resolve, reject) => {
      if (!alive(c)) return resolve(c.exitCode);
      const timer = setTimeout(() => reject(new Error(`the server (pid ${c.pid}) did not exit in ${timeoutMs} ms`)), timeoutMs);
      c.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });

  return {
    dataDir,
    start() {
      if (alive(child)) throw new Error('the server is already running');
      startCount++;
      output += `\n--- start ${startCount} ---\n`;
      // node with tsx's loader, not npx tsx: the pid we SIGKILL is the server itself, with no
      // wrapper process in between that would die and leave the server running.
      const c = spawn(process.execPath, ['--import', 'tsx', '--import', PRELOAD, ...entry.args], {
        cwd: REPO,
        env: {
          PATH: process.env['PATH'] ?? '',
          HOME: process.env['HOME'] ?? dataDir,
          DATA_DIR: dataDir,
          PORT: '0',
          HOST: '127.0.0.1',
          // Empty: none, so the server makes its own and keeps it in DATA_DIR.
          ...(settings.adminToken === '' ? {} : { ADMIN_TOKEN: settings.adminToken }),
          CUTOFF_MS: String(settings.cutoffMs),
          RESPONSE_TIMEOUT_MS: String(settings.responseTimeoutMs),
          RECONCILE_MS: '0',
          ...extraEnv,
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child = c;
      c.stdout!.on('data', append);
      c.stderr!.on('data', append);
      c.stdin!.on('error', () => {}); // a killed child closes its end; nothing is written to it
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the server did not start in ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
        const onData = () => {
          const m = entry.ready.exec(output.slice(output.lastIndexOf('--- start ')));
          if (m === null) return;
          clearTimeout(timer);
          c.stdout!.off('data', onData);
          // The core serves no HTTP: its "address" is only a sign that it is up.
          url = m[1] ? `http://127.0.0.1:${m[1]}` : 'nats:';
          const ready = waiters;
          waiters = [];
          ready.forEach((w) => w.resolve(url!));
          resolve(url);
        };
        c.stdout!.on('data', onData);
        c.once('exit', (code, signal) => {
          clearTimeout(timer);
          if (url === null || child !== c) reject(new Error(`the server exited during start (code ${code}, signal ${signal}):\n${output}`));
        });
      });
    },
    whenUp(timeoutMs = START_TIMEOUT_MS) {
      if (url !== null && alive(child)) return Promise.resolve(url);
      return new Promise<string>((resolve, reject) => {
        const waiter = { resolve: (u: string) => (clearTimeout(timer), resolve(u)) };
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter);
          reject(new Error(`the server was not up within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    async kill() {
      const c = child;
      if (c === null || !alive(c)) throw new Error('there is no server to kill');
      url = null; // from here on, callers wait for the next start instead of spinning
      c.kill('SIGKILL');
      await exited(c, EXIT_TIMEOUT_MS);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const c = child;
      if (c === null || !alive(c)) throw new Error('there is no server to stop');
      url = null;
      c.kill(signal);
      return exited(c, EXIT_TIMEOUT_MS);
    },
    dispose() {
      url = null;
      if (child !== null && alive(child)) child.kill('SIGKILL');
    },
    demoCustomers() {
      const out: DemoCustomer[] = [];
      const file = join(dataDir, DEMO_TOKENS_FILE);
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      for (const m of text.matchAll(/demo customer (.+?): account (\d+) \((\d+) won\), token (\S+)/g)) {
        out.push({ name: m[1]!, accountId: Number(m[2]), openingBalanceWon: Number(m[3]), token: m[4]! });
      }
      return out;
    },
    output: () => output,
    pid: () => (alive(child) ? child!.pid ?? null : null),
    starts: () => startCount,
  };
}
