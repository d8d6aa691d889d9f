/// <reference lib="dom" />
/**
 * The bank's HTTP API as the pages use it: JSON with a bearer token, problem+json turned
 * into an ApiError, and a transfer followed live over server-sent events.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string } & Record<string, unknown>,
  ) {
    super(`${status} ${problem.title ?? ''}: ${problem.detail ?? ''}`);
  }
}

export type Json = any;

export async function api(token: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const h: Record<string, string> = { ...headers };
  if (token !== null) h['Authorization'] = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const init: RequestInit = { method, headers: h };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  const parsed: Json = text === '' ? null : JSON.parse(text);
  if (!response.ok) throw new ApiError(response.status, parsed ?? {});
  return { status: response.status, body: parsed };
}

export type TransferJson = {
  id: string;
  fromAccountId: number;
  toAccountId: number;
  amount: number;
  memo: string | null;
  state: string;
  reason: string | null;
  journal: { at: string; event: string; from: string | null; to: string }[];
};

export type TransitionJson = { at: string; event: string; from: string; to: string; reason: string | null };

export type TransferWatch = { close(): void };

/**
 * Follows a transfer over GET /transfers/:id/stream. EventSource cannot send headers, so the
 * token rides in the query (or, when null, the scrollbank_token cookie does the job).
 */
export function watchTransfer(
  id: string,
  token: string | null,
  on: { snapshot(t: TransferJson): void; transition(s: TransitionJson): void; end(): void; failed(error: ApiError): void },
): TransferWatch {
  const query = token === null ? '' : `?access_token=${encodeURIComponent(token)}`;
  const source = new EventSource(`/transfers/${encodeURIComponent(id)}/stream${query}`);
  source.addEventListener('transfer', (e) => on.snapshot(JSON.parse((e as MessageEvent).data)));
  source.addEventListener('transition', (e) => on.transition(JSON.parse((e as MessageEvent).data)));
  source.addEventListener('end', () => {
    source.close();
    on.end();
  });
  // The token was revoked while the stream was open: the server says so, then closes.
  source.addEventListener('problem', (e) => {
    source.close();
    const problem = JSON.parse((e as MessageEvent).data) as { status?: number };
    on.failed(new ApiError(problem.status ?? 401, problem));
  });
  // A reconnect the server refused (a 401 for a token that stopped working): EventSource gives up.
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) on.failed(new ApiError(401, { title: 'Unauthorized', detail: 'the transfer stream was refused' }));
  });
  return { close: () => source.close() };
}

export const won = (n: number) => `${n.toLocaleString('en-US')} won`;
