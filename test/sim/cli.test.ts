/**
 * `npm run sim` as a customer of it sees it: exit codes, one line per violation with the
 * command that replays it, and a trace that is byte-identical from run to run.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../../', import.meta.url));
const sim = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/sim/cli.ts', ...args], { cwd: root, encoding: 'utf8' });

test('--trace prints the same bytes for the same seed, and exits 0 when nothing is violated', () => {
  const a = sim('--seed', '3', '--transfers', '40', '--trace');
  const b = sim('--seed', '3', '--transfers', '40', '--trace');
  assert.is(a.status, 0, a.stderr);
  assert.ok(a.stdout.split('\n').length > 100, 'the trace has the schedule and the transitions');
  assert.match(a.stdout, /channel tr_\S+ requested -> sent \(DISPATCH\)/);
  assert.match(a.stdout, /net request execute tr_/);
  assert.is(a.stdout, b.stdout);
});

test('a violation prints "violation", the invariant, the seed and the exact replay command, and exits 1', () => {
  const r = sim('--seed', '1', '--transfers', '300', '--protocol', 'without:S4');
  assert.is(r.status, 1, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.length > 0);
  for (const line of lines) {
    assert.match(line, /^violation seed=1 invariant 4 \(liveness\): .+ \| replay: npm run sim -- --seed 1 --seeds 1 --transfers 300 --protocol without:S4$/);
  }
  const replay = sim('--seed', '1', '--seeds', '1', '--transfers', '300', '--protocol', 'without:S4');
  assert.is(replay.stdout, r.stdout, 'the replay command finds the same violations');
});

test('a bad argument is refused with the usage and exit code 2', () => {
  const r = sim('--protocol', 'without:S9');
  assert.is(r.status, 2);
  assert.match(r.stderr, /--protocol must be/);
  assert.match(r.stderr, /usage: npm run sim/);
});

test.run();
