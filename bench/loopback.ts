/**
 * The benchmarks' servers: a Hono fetch handler served on 127.0.0.1 at a free port by the same
 * Node server src/main.ts runs (src/server/http-server.ts), and a close that does not wait for
 * idle keep-alive connections.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../src/lib/logger.ts';
import { createHttpServer } from '../src/server/http-server.ts';

export type Listening = { server: Server; port: number; url: string };

export function listen(fetch: (request: Request) => Response | Promise<Response>): Promise<Listening> {
  const server = createHttpServer(fetch, silentLogger);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, port, url: `http://127.0.0.1:${port}` });
    });
  });
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
