/**
 * Holds real answers to the OpenAPI document the app serves: each answer's status must be
 * documented for its route, its media type documented for that status, and its body valid
 * against the documented schema (JSON Schema 2020-12, as OpenAPI 3.1 is, checked by Ajv).
 * It also records which documented (route, status) pairs the tests have seen.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import * as assert from 'uvu/assert';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>> };

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const METHODS = ['get', 'post', 'delete', 'put', 'patch'];
const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

export type Conformance = ReturnType<typeof conformanceOf>;

export function conformanceOf(doc: Doc) {
  const ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc as object, 'doc');
  const validators = new Map<string, ValidateFunction>();
  // Literal segments before templated ones: /docs/init.js is /docs/{file}, /docs is /docs.
  const templates = Object.keys(doc.paths)
    .map((t) => ({ t, re: new RegExp(`^${t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^/}]+\}/g, '[^/]+')}$`), params: (t.match(/\{/g) ?? []).length }))
    .sort((a, b) => a.params - b.params);
  const seen = new Set<string>();

  const templateOf = (path: string) => templates.find((x) => x.re.test(path))?.t;

  return {
    templateOf,
    /** Every documented `METHOD template status`. */
    documented(): string[] {
      const out: string[] = [];
      for (const [t, item] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(item)) {
          if (!METHODS.includes(method)) continue;
          for (const status of Object.keys(op.responses)) out.push(`${method.toUpperCase()} ${t} ${status}`);
        }
      }
      return out.sort();
    },
    seen: () => [...seen].sort(),
    /**
     * Checks one answer. Answers on paths the document does not describe (the catch-all 404)
     * are not the document's to judge, and return false.
     */
    check(method: string, url: string, status: number, contentType: string | null, body: unknown): boolean {
      const path = new URL(url, 'http://x').pathname;
      const t = templateOf(path);
      const op = t === undefined ? undefined : doc.paths[t]![method.toLowerCase()];
      if (t === undefined || op === undefined) return false;
      const what = `${method} ${path} (${t}) answered ${status}`;
      const response = op.responses[String(status)];
      assert.ok(response !== undefined, `${what}, which the document does not list: ${JSON.stringify(body)?.slice(0, 300)}`);
      seen.add(`${method.toUpperCase()} ${t} ${status}`);
      if (response.content === undefined) {
        assert.ok(body === null || body === '', `${what} with a body the document does not describe`);
        return true;
      }
      const type = (contentType ?? '').split(';')[0]!.trim();
      assert.ok(Object.hasOwn(response.content, type), `${what} as ${type}, but the document says ${Object.keys(response.content).join(', ')}`);
      if (type !== 'application/json' && type !== 'application/problem+json') return true;
      const key = `${t}|${method}|${status}|${type}`;
      let validate = validators.get(key);
      if (validate === undefined) {
        validate = ajv.compile({ $ref: `doc#/${pointer('paths', t, method.toLowerCase(), 'responses', String(status), 'content', type, 'schema')}` });
        validators.set(key, validate);
      }
      assert.ok(validate(body), `${what}: the body does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)?.slice(0, 500)}`);
      return true;
    },
  };
}
