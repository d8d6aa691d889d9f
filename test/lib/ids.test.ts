import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom, timeOrderedId } from '../../src/lib/ids.ts';
import { transferIdParam } from '../../src/server/schemas.ts';

test('time-ordered ids sort as the times they were made at, whatever their random part', () => {
  const random = seededRandom(7);
  const times = [0, 1, 63, 64, 4095, 1_700_000_000_000, 1_700_000_000_001, Date.UTC(2026, 11, 1), 2 ** 48 - 1];
  const ids = times.map((t) => timeOrderedId(random, t, 'tr'));
  // Shuffled, then sorted as SQLite's BINARY collation sorts TEXT (byte order).
  const sorted = [...ids].reverse().sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  assert.equal(sorted, ids);
  for (const id of ids) assert.ok(transferIdParam.safeParse(id).success, `${id} is a valid transfer id`);
});

test('ids made in the same millisecond differ by their random part', () => {
  const random = seededRandom(1);
  const a = timeOrderedId(random, 1_000, 'tr');
  const b = timeOrderedId(random, 1_000, 'tr');
  assert.is.not(a, b);
  assert.is(a.slice(0, 11), b.slice(0, 11), 'same time part');
  assert.is(a.length, 'tr_'.length + 8 + 16);
});

test.run();
