/**
 * A server secret kept in the data directory: created once from the injected random source,
 * readable only by its owner, and the same on every start so that what it signed stays valid.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { assert } from './assert.ts';
import type { RandomSource } from './ids.ts';

export const SECRET_KEY_BYTES = 32;

export function loadOrCreateSecretKey(path: string, random: RandomSource): Buffer {
  try {
    writeFileSync(path, Buffer.from(random.bytes(SECRET_KEY_BYTES)), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  const key = readFileSync(path);
  assert(key.length === SECRET_KEY_BYTES, `${path} holds a ${SECRET_KEY_BYTES}-byte key`);
  return key;
}

/** A token kept in the data directory (the admin's, when ADMIN_TOKEN is unset): made once, then the same on every start. */
export function loadOrCreateToken(path: string, make: () => string): string {
  try {
    writeFileSync(path, `${make()}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  const token = readFileSync(path, 'utf8').trim();
  assert(/^[\x21-\x7e]{16,200}$/.test(token), `${path} holds a token of 16-200 visible ASCII characters`);
  return token;
}
