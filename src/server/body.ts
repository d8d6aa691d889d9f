/**
 * Reads a JSON body with a hard size limit, counting the bytes actually read (a lying or
 * missing Content-Length cannot get past it), then validates it with a schema.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { Problem, badRequest } from './problem.ts';
import { formatIssues, MAX_BODY_BYTES } from './schemas.ts';

const tooLarge = () => new Problem(413, 'Content Too Large', `the body is larger than ${MAX_BODY_BYTES} bytes`);

async function readText(c: Context): Promise<string> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
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
