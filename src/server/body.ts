/**
 * Reads a JSON body with a hard size limit, counting the bytes actually read (a lying or
 * missing Content-Length cannot get past it), then validates it with a schema.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { z } from 'zod';
import { Problem, badRequest } from './problem.ts';
import { formatIssues, MAX_BODY_BYTES } from './schemas.ts';

const tooLarge = (headers: Record<string, string> = {}) =>
  new Problem(413, 'Content Too Large', `the body is larger than ${MAX_BODY_BYTES} bytes`, {}, headers);

/** What @hono/node-server hands a route as `c.env`: the socket's request (absent under app.request()). */
type NodeBindings = { incoming?: IncomingMessage };

/**
 * Straight from Node's request stream when there is one: the web-stream path builds a whole
 * undici Request, an AbortSignal and a ReadableStream per request, about 4% of the server's
 * time on POST /transfers. The limit is the same, counted on the bytes read. Past it the
 * reading stops without destroying the stream (that would take the socket, and the 413 with
 * it), and the answer closes the connection, so the rest of the body is never read.
 */
function readIncoming(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      incoming.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      done();
      incoming.pause();
      reject(tooLarge({ Connection: 'close' }));
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    // A client that goes away mid-body: the request ends here, whether or not an error came first.
    const onClose = () => {
      done();
      reject(badRequest('the body was cut off before its end'));
    };
    incoming.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

async function readText(c: Context): Promise<string> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  const incoming = (c.env as NodeBindings | undefined)?.incoming;
  if (incoming !== undefined) return readIncoming(incoming);
  const body = c.req.raw.body;
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await readText(c);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('the body is not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badRequest(formatIssues(parsed.error));
  return parsed.data;
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badRequest(`${what}: ${formatIssues(parsed.error, '')}`);
  return parsed.data;
}
