/**
 * Opaque history cursors: an account and a seq, signed with the server's key (HMAC-SHA-256),
 * so a client can neither forge one, tamper with one, nor use one on another account.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const VERSION = 'v1';
const TAG_BYTES = 16;
/** Longer than any cursor this server issues; anything longer is refused unread. */
export const MAX_CURSOR_LENGTH = 100;

export type CursorCodec = {
  encode(accountId: number, seq: number): string;
  /** The seq a cursor names, or null when this server did not issue it for this account. */
  decode(cursor: string, accountId: number): number | null;
};

export function createCursorCodec(key: Buffer): CursorCodec {
  const tagOf = (payload: string) => createHmac('sha256', key).update(payload).digest().subarray(0, TAG_BYTES);
  return {
    encode(accountId, seq) {
      const payload = `${VERSION}.${accountId}.${seq}`;
      return `${Buffer.from(`${accountId}.${seq}`).toString('base64url')}.${tagOf(payload).toString('base64url')}`;
    },
    decode(cursor, accountId) {
      if (cursor.length > MAX_CURSOR_LENGTH) return null;
      const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(cursor);
      if (match === null) return null;
      const body = /^(\d{1,15})\.(\d{1,15})$/.exec(Buffer.from(match[1]!, 'base64url').toString('utf8'));
      if (body === null || Number(body[1]) !== accountId) return null;
      const seq = Number(body[2]);
      // Compared as text, not as decoded bytes: base64url's last character carries bits that
      // decoding drops, so several spellings decode to one tag. Only the one encode writes is taken.
      const tag = Buffer.from(match[2]!);
      const expected = Buffer.from(tagOf(`${VERSION}.${accountId}.${seq}`).toString('base64url'));
      if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) return null;
      // The body must be exactly what encode writes (no leading zeros, no re-encodings).
      return match[1] === Buffer.from(`${accountId}.${seq}`).toString('base64url') ? seq : null;
    },
  };
}
