/**
 * A real nats-server with JetStream for the tests and the benchmarks (Debian's, installed by
 * .ci/run): started on a free port with a temporary store directory, and stopped at the end.
 * Missing, it fails what needs it, never skips it. The bank itself never starts one: in
 * production EVENT_LOG points at a server (or cluster) that is run for it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, createConnection, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BINARIES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

export type NatsServer = {
  readonly url: string;
  readonly port: number;
  /** What the server says it is (its first line: "nats-server: v2.9.10"). */
  readonly version: string;
  /** Stops the server (SIGTERM, or SIGKILL: a crash) and resolves once it is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
  /** Ends it for good and removes its store. */
  dispose(): void;
};

export function natsBinary(): string {
  const onPath = (process.env['PATH'] ?? '').split(':').filter((d) => d !== '').map((d) => join(d, 'nats-server'));
  const found = [...BINARIES, ...onPath].find((b) => existsSync(b));
  if (found === undefined) throw new Error(`nats-server is not installed (looked in ${BINARIES.join(', ')}); .ci/run installs it: apt-get install nats-server`);
  return found;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A server of its own (a test that restarts it); `shared` below serves the rest. */
export async function startNatsServer(): Promise<NatsServer> {
  const binary = natsBinary();
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'scrollbank-nats-'));
  let child: ChildProcess | null = null;
  let output = '';

  async function start(): Promise<void> {
    output = '';
    const c = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-10_000)));
    c.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-10_000)));
    // The server never keeps the test process alive: the process's end ends it (see below).
    c.unref();
    for (const stream of [c.stdout, c.stderr] as unknown as { unref(): void }[]) stream.unref();
    const started = Date.now();
    while (!/Server is ready/.test(output) || !(await accepts(port))) {
      if (c.exitCode !== null) throw new Error(`nats-server exited with ${c.exitCode}:\n${output}`);
      if (Date.now() - started > START_TIMEOUT_MS) throw new Error(`nats-server did not start within ${START_TIMEOUT_MS} ms:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await gone;
    clearTimeout(timer);
  }

  const killAtExit = () => child?.kill('SIGKILL');
  process.once('exit', killAtExit);
  await start();
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^nats-server:\s*/, '');
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    version,
    stop,
    start,
    dispose() {
      killAtExit();
      child = null;
      process.removeListener('exit', killAtExit);
      rmSync(store, { recursive: true, force: true });
    },
  };
}

let shared: Promise<NatsServer> | null = null;

/** The test process's one shared server, started on first use and ended when the process exits. */
export function sharedNatsServer(): Promise<NatsServer> {
  shared ??= startNatsServer().then((server) => {
    process.once('exit', () => server.dispose());
    return server;
  });
  return shared;
}
