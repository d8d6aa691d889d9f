/**
 * Every bug the simulator found stays here: its seed replayed under the full protocol, and
 * where it helps, the same failure built by hand so that the cause reads plainly.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FULL_PROTOCOL } from '../../src/lib/protocol.ts';
import { checkAgreement } from '../../src/sim/invariants.ts';
import { violationLines } from '../../src/sim/cli.ts';
import { runSeed } from '../../src/sim/simulator.ts';
import { assertInvariants, balanceOf, createdId, makeBank, openCustomer, run, stateOf, transfer } from '../helpers.ts';

/** Seeds that once broke the full protocol, with the transfers per seed they were found at. */
const FOUND: { seed: number; transfers: number; bug: string }[] = [
  { seed: 43, transfers: 200, bug: 'a tombstone pruned while its late request was still inside the cutoff (core clock 14 s behind)' },
  { seed: 9499, transfers: 100, bug: "a success shown before the sender's row, held behind a hole, so a keyless customer paid again" },
];

for (const { seed, transfers, bug } of FOUND) {
  test(`seed ${seed} (${bug}) now breaks no invariant`, async () => {
    const lines = violationLines(await runSeed({ seed, transfers, protocol: FULL_PROTOCOL }), transfers, 'full');
    assert.equal(lines, [], lines.join('\n'));
  });
}

test('with the core clock 14 s behind, a tombstone outlives every request it fences, so a late request stays refused', () => {
  const bank = makeBank({ coreSkewMs: -14_000, settings: { allowedSkewMs: 20_000 } });
  try {
    const kim = openCustomer(bank, 'Kim', 100_000);
    const lee = openCustomer(bank, 'Lee', 0);
    // The request arrives 73 s late: 59 s old by the core's clock, inside the cutoff.
    bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs: 73_000 });
    const id = createdId(transfer(bank, kim, lee, 10_000));
    run(bank, 10_000);
    assert.is(stateOf(bank, id), 'failed', 'the query after the timeout fenced the request');
    // A core restart at 10 s puts its pruning tick at 70 s: after the fence is 65 s old, before the request lands.
    bank.restart('core');
    run(bank, 65_000);
    assert.equal(bank.core.readModel().decisionOf(id), { kind: 'rejected', reason: 'fenced' });
    run(bank, 200_000);
    assert.equal(balanceOf(bank, kim), { core: 100_000, channel: 100_000 });
    assert.equal(checkAgreement(bank), []);
    assertInvariants(bank);
  } finally {
    bank.dispose();
  }
});

test.run();
