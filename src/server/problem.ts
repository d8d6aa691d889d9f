/**
 * problem+json (RFC 9457): the one shape of every error answer. Routes throw a Problem;
 * the app's onError turns it, and anything else, into a response.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export type ProblemBody = { type: string; title: string; status: number; detail: string } & Record<string, unknown>;

export class Problem extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    /** Headers the answer carries besides the content type. */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  body(): ProblemBody {
    const slug = this.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    return { type: `https://scrollbank.dev/problems/${slug}`, title: this.title, status: this.status, detail: this.detail, ...this.extra };
  }
}

export function problemResponse(c: Context, problem: Problem, headers: Record<string, string> = {}): Response {
  return c.body(JSON.stringify(problem.body()), problem.status, { 'Content-Type': 'application/problem+json', ...headers });
}

export const badRequest = (detail: string) => new Problem(400, 'Bad Request', detail);
export const unauthorized = (detail: string) => new Problem(401, 'Unauthorized', detail);
export const forbidden = (detail: string) => new Problem(403, 'Forbidden', detail);
export const notFound = (detail: string) => new Problem(404, 'Not Found', detail);
/** A side crashed before the batch holding this request committed: nothing of it is durable, retry it. */
export const restarting = (detail: string) => new Problem(503, 'Restarting', detail);
