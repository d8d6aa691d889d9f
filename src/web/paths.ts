/**
 * Where the front end's source and its build output live: the server reads the output,
 * the build writes it. dist/ is not committed.
 */
import { fileURLToPath } from 'node:url';

export const WEB_SOURCE_DIR = fileURLToPath(new URL('./', import.meta.url));
export const WEB_DIST_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));
/** The pages and assets the build writes, and the only files the server will serve. */
export const WEB_PAGES = ['index.html', 'viz.html'] as const;
export const WEB_ASSETS = ['bank.js', 'viz.js', 'style.css'] as const;
/** esbuild's shared chunks (chunkNames 'chunk-[hash]'): served when the build made them. */
export const WEB_CHUNK = /^chunk-[A-Z0-9]{8,16}\.js$/;
