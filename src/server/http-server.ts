/**
 * The Node HTTP server around the Hono app. What Node's parser and the adapter refuse before
 * the app ever sees a request (a header too large, a broken request line or header, an
 * `Expect` it cannot meet, a URL it cannot build) is answered here, as problem+json too.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { getRequestListener, RequestError } from '@hono/node-server';
import type { Logger } from '../lib/logger.ts';
import { Problem } from './problem.ts';

type Fetch = Parameters<typeof getRequestListener>[0];

/** Node's parser error codes and the status each deserves (anything else it refuses is a 400). */
const PARSER_STATUS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

function problemBody(status: number, detail: string): string {
  return JSON.stringify(new Problem(status as 400, STATUS_CODES[status] ?? 'Bad Request', detail).body());
}

/** A whole HTTP/1.1 answer, written straight to a socket the parser has given up on. */
export function rawProblem(status: number, detail: string): string {
  const body = problemBody(status, detail);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\n` +
    'Content-Type: application/problem+json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

export function createHttpServer(fetch: Fetch, logger: Logger): Server {
  const listener = getRequestListener(fetch, {
    // The adapter could not make a Request of what came (`OPTIONS *`, `Host: a b`, a path it
    // will not normalise): a 400 problem. Anything else that escaped the app is a 500.
    errorHandler: (error) => {
      const status = error instanceof RequestError ? 400 : 500;
      if (status === 500) logger.error({ err: error }, 'unexpected error below the app');
      const detail = status === 400 ? 'the request line or its Host header is not one this server can read' : 'something broke inside the bank; the server log has the details';
      return new Response(problemBody(status, detail), { status, headers: { 'Content-Type': 'application/problem+json' } });
    },
  });
  const server = createServer(listener);

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // A reset or closed socket has no one left to answer; nor has one whose answer to an
    // earlier request is already on its way (an event stream): bytes written now would land
    // inside that answer, so the connection just ends, as Node's own handler does.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    const status = PARSER_STATUS[error.code ?? ''] ?? 400;
    const detail = status === 431 ? 'the request headers are too large' : status === 408 ? 'the request took too long to arrive' : `the request is not valid HTTP/1.1 (${error.code ?? 'unreadable'})`;
    logger.info({ status, code: error.code }, 'refused by the HTTP parser');
    socket.end(rawProblem(status, detail));
  });

  // Node answers an Expect other than 100-continue with a bare 417; this one says why.
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    const body = problemBody(417, 'only "Expect: 100-continue" is supported');
    res.writeHead(417, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  });
  return server;
}
