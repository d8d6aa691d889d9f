/**
 * Every command-line tool the npm scripts run, as its user meets it: `--help` prints the usage
 * and the exit codes and exits 0, a bad argument prints what was wrong and the usage and exits
 * 2 (nothing runs), and a reader that closes the pipe ends the tool quietly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../', import.meta.url));
const TOOLS: [name: string, args: string[]][] = [
  ['sim', ['--import', 'tsx', 'src/sim/cli.ts']],
  ['sim:soak', ['--import', 'tsx', 'src/sim/soak.ts']],
  ['bench:transfers', ['--import', 'tsx', 'bench/transfers.ts']],
  ['bench:history', ['--import', 'tsx', 'bench/history.ts']],
  ['bench:restore', ['--import', 'tsx', 'bench/restore.ts']],
];
const run = (args: string[], extra: string[]) => spawnSync(process.execPath, [...args, ...extra], { cwd: root, encoding: 'utf8', timeout: 30_000 });

for (const [name, args] of TOOLS) {
  test(`${name}: --help prints the usage and the exit codes, and exits 0`, () => {
    const r = run(args, ['--help']);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, `usage: npm run ${name} --`);
    assert.match(r.stdout, /exit codes: 0 .+, 1 .+, 2 a bad argument/);
  });

  test(`${name}: an unknown option or a bad value prints the reason and the usage, and exits 2`, () => {
    for (const bad of [['--no-such-option'], ['--seeds', 'many'], ['--transfers', '0'], ['--rounds', '-1']]) {
      // Each tool has some of these options: an option it lacks is unknown, one it has is out of range.
      const r = run(args, bad);
      assert.is(r.status, 2, `${bad.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, `usage: npm run ${name} --`, bad.join(' '));
      assert.ok(r.stderr.split('\n')[0]!.length > 0, 'the first line says what was wrong');
    }
  });
}

test('sim: a reader that stops reading (`| head`) ends the trace quietly, with exit 0 and no EPIPE', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/sim/cli.ts', '--seed', '5', '--seeds', '5', '--transfers', '300', '--trace'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Read one chunk, then close our end, as `head -1` does.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.is(code, 0, stderr);
  assert.not.match(stderr, 'EPIPE');
  assert.not.match(stderr, 'Error');
});

test.run();
