/**
 * Builds the front end with esbuild: src/web/{bank,viz}.ts bundled into dist/web/assets/
 * (elkjs in a chunk they share), the pages and the stylesheet copied beside them. `--if-stale` skips
 * the build when the sources and the lock file hash to what the last build recorded.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { WEB_ASSETS, WEB_DIST_DIR, WEB_PAGES, WEB_SOURCE_DIR } from './paths.ts';

const LOCK_FILE = fileURLToPath(new URL('../../package-lock.json', import.meta.url));
const STAMP = join(WEB_DIST_DIR, '.build-hash');

function sourceHash(): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(WEB_SOURCE_DIR).sort()) {
    hash.update(name).update(readFileSync(join(WEB_SOURCE_DIR, name)));
  }
  if (existsSync(LOCK_FILE)) hash.update(readFileSync(LOCK_FILE));
  return hash.digest('hex');
}

export function isWebBuildFresh(): boolean {
  if (!existsSync(STAMP)) return false;
  if (![...WEB_PAGES, ...WEB_ASSETS.map((a) => `assets/${a}`)].every((f) => existsSync(join(WEB_DIST_DIR, f)))) return false;
  return readFileSync(STAMP, 'utf8') === sourceHash();
}

export async function buildWeb(options: { ifStale?: boolean } = {}): Promise<'built' | 'fresh'> {
  if (options.ifStale === true && isWebBuildFresh()) return 'fresh';
  const assets = join(WEB_DIST_DIR, 'assets');
  rmSync(assets, { recursive: true, force: true }); // no chunk of an older build lingers
  mkdirSync(assets, { recursive: true });
  await build({
    entryPoints: [join(WEB_SOURCE_DIR, 'bank.ts'), join(WEB_SOURCE_DIR, 'viz.ts')],
    outdir: assets,
    bundle: true,
    format: 'esm',
    // Both pages draw statecharts: elkjs goes into one shared chunk, loaded once.
    splitting: true,
    chunkNames: 'chunk-[hash]',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  for (const page of WEB_PAGES) copyFileSync(join(WEB_SOURCE_DIR, page), join(WEB_DIST_DIR, page));
  copyFileSync(join(WEB_SOURCE_DIR, 'style.css'), join(assets, 'style.css'));
  writeFileSync(STAMP, sourceHash());
  return 'built';
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now();
  buildWeb({ ifStale: process.argv.includes('--if-stale') }).then(
    (result) => console.log(result === 'fresh' ? 'front end is up to date (dist/web)' : `front end built into dist/web in ${Date.now() - started} ms`),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
