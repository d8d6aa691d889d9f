/**
 * The benchmarks' servers: a Hono fetch handler served on 127.0.0.1 at a free port, and a
 * close that does not wait for idle keep-alive connections.
 */
import { serve, type ServerType } from '@hono/node-server';

export type Listening = { server: ServerType; port: number; url: string };

export function listen(fetch: (request: Request) => Response | Promise<Response>): Promise<Listening> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server, port: info.port, url: `http://127.0.0.1:${info.port}` }));
  });
}

export function closeServer(server: ServerType): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
