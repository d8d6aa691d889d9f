/**
 * Node 20 does not carry tsx's loader into worker threads: a worker's boot code registers it
 * first, then imports the TypeScript entry. This finds what it registers.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The URL of tsx's ESM register API, from the package's own exports map: import.meta.resolve
 * is missing under tsx's require hook (uvu -r tsx), and require's resolver picks the CommonJS
 * build, which cannot be imported.
 */
export function tsxEsmApiUrl(): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const exportsMap = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  return pathToFileURL(join(dirname(manifest), exportsMap['./esm/api']!.import.default)).href;
}
