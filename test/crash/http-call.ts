/**
 * The crash tests' HTTP client, to 127.0.0.1 only: one call with a bearer token and a JSON body.
 * A connection error (or no answer in time) throws: the call was not acknowledged.
 */
import * as assert from 'uvu/assert';

export type Json = any;
export type Reply = { status: number; body: Json };

export async function call(url: string, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Reply> {
  assert.ok(url.startsWith('http://127.0.0.1:'), `traffic stays on this machine, not ${url}`);
  const init: RequestInit = {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
    signal: AbortSignal.timeout(timeoutMs),
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(`${url}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}
