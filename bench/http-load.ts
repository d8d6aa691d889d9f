/**
 * The load generator of the HTTP benchmarks: a worker thread that keeps a fixed number of
 * keep-alive clients busy with POSTs and reports each call's latency and whether it passed.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { tsxEsmApiUrl } from '../src/lib/tsx-worker.ts';

/** One request a client may send: its headers and its body. */
export type RequestShape = { headers: Record<string, string>; body: string };

export type LoadSpec = {
  label: string;
  url: string;
  requests: number;
  timeLimitMs: number;
  /** One entry per concurrent client; a client cycles through its own shapes, one request in flight at a time. */
  clients: RequestShape[][];
  /** transfer: 201 with state succeeded; echo: 201 with the body sent back. */
  expect: 'transfer' | 'echo';
  /** node:http with a keep-alive agent, or the global fetch (undici, keep-alive by default; about half as fast a client). */
  client: 'http' | 'fetch';
};

export type LoadResult = {
  label: string;
  completed: number;
  elapsedMs: number;
  latenciesMs: number[];
  statuses: Record<string, number>;
  failureCount: number;
  /** The first few failures, described. */
  failures: string[];
  timeCapHit: boolean;
  /** Share of the phase the client's event loop was busy (1: the client may be the limit). */
  clientLoopBusy: number;
};

const MAX_FAILURES_KEPT = 10;
const MAX_BODY_SHOWN = 300;

function check(spec: LoadSpec, status: number, sent: string, text: string): string | null {
  if (status !== 201) return `status ${status}: ${text.slice(0, MAX_BODY_SHOWN)}`;
  if (spec.expect === 'echo') return text === sent ? null : `echo differs: ${text.slice(0, MAX_BODY_SHOWN)}`;
  let state: unknown;
  try {
    state = (JSON.parse(text) as { state?: unknown }).state;
  } catch {
    return `201 with a body that is not JSON: ${text.slice(0, MAX_BODY_SHOWN)}`;
  }
  return state === 'succeeded' ? null : `201 with state ${String(state)}: ${text.slice(0, MAX_BODY_SHOWN)}`;
}

type Answer = { status: number; text: string };
type Send = (shape: RequestShape) => Promise<Answer>;

function httpSender(url: URL, agent: Agent): Send {
  return (shape) =>
    new Promise((resolve, reject) => {
      const headers = { ...shape.headers, 'content-length': String(Buffer.byteLength(shape.body)) };
      const req = request({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(shape.body);
    });
}

function fetchSender(url: URL): Send {
  return async (shape) => {
    const response = await fetch(url, { method: 'POST', headers: shape.headers, body: shape.body });
    return { status: response.status, text: await response.text() };
  };
}

/** One keep-alive pool per server, kept across phases so a warm-up also warms the connections. */
const agents = new Map<string, Agent>();

function agentFor(url: URL, maxSockets: number): Agent {
  const key = `${url.origin} ${maxSockets}`;
  let agent = agents.get(key);
  if (agent === undefined) {
    agent = new Agent({ keepAlive: true, maxSockets });
    agents.set(key, agent);
  }
  return agent;
}

/** Runs one phase: `requests` calls shared by the clients, stopping early at the time cap. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const statuses: Record<string, number> = {};
  const failures: string[] = [];
  let failureCount = 0;
  let issued = 0;
  let timeCapHit = false;
  const started = performance.now();
  const elu = performance.eventLoopUtilization();
  const deadline = started + spec.timeLimitMs;

  const url = new URL(spec.url);
  const send = spec.client === 'http' ? httpSender(url, agentFor(url, spec.clients.length)) : fetchSender(url);
  const fail = (what: string) => {
    failureCount++;
    if (failures.length < MAX_FAILURES_KEPT) failures.push(what);
  };

  async function client(shapes: RequestShape[]): Promise<void> {
    for (let turn = 0; issued < spec.requests; turn++) {
      if (performance.now() >= deadline) {
        timeCapHit = true;
        return;
      }
      issued++;
      const shape = shapes[turn % shapes.length]!;
      const t0 = performance.now();
      try {
        const { status, text } = await send(shape);
        latenciesMs.push(performance.now() - t0);
        statuses[status] = (statuses[status] ?? 0) + 1;
        const problem = check(spec, status, shape.body, text);
        if (problem !== null) fail(problem);
      } catch (error) {
        statuses.error = (statuses.error ?? 0) + 1;
        fail(`request failed: ${error instanceof Error ? `${error.message} ${String(error.cause ?? '')}` : String(error)}`);
      }
    }
  }

  await Promise.all(spec.clients.map(client));
  return {
    label: spec.label,
    completed: latenciesMs.length,
    elapsedMs: performance.now() - started,
    latenciesMs,
    statuses,
    failureCount,
    failures,
    timeCapHit,
    clientLoopBusy: performance.eventLoopUtilization(elu).utilization,
  };
}

/** A load generator on its own thread, so the client's work does not share the server's event loop. */
export function startLoadWorker() {
  // Node 20 does not carry tsx's loader into workers: the worker registers it, then loads this file.
  const boot = `import(${JSON.stringify(tsxEsmApiUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(boot, { eval: true });
  let pending: { resolve: (r: LoadResult) => void; reject: (e: unknown) => void } | null = null;
  let broken: unknown = null;
  const fail = (error: unknown) => {
    broken ??= error;
    pending?.reject(error);
    pending = null;
  };
  worker.on('message', (r: LoadResult) => {
    pending?.resolve(r);
    pending = null;
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the load worker exited with code ${code}`)));
  return {
    run(spec: LoadSpec): Promise<LoadResult> {
      return new Promise((resolve, reject) => {
        if (broken !== null) return reject(broken);
        pending = { resolve, reject };
        worker.postMessage(spec);
      });
    },
    stop: () => worker.terminate(),
  };
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  port.on('message', (spec: LoadSpec) => {
    void runLoad(spec).then((r) => port.postMessage(r));
  });
}
