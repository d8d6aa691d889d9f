import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeBank, openCustomer, transfer, createdId, stateOf, run, assertInvariants, balanceOf } from './helpers.ts';

test('a transfer moves money and both histories show it', () => {
  const bank = makeBank();
  try {
    const a = openCustomer(bank, 'Kim', 100_000);
    const b = openCustomer(bank, 'Lee', 0);
    const id = createdId(transfer(bank, a, b, 30_000));
    run(bank);
    assert.is(stateOf(bank, id), 'succeeded');
    assert.equal(balanceOf(bank, a), { core: 70_000, channel: 70_000 });
    assert.equal(balanceOf(bank, b), { core: 30_000, channel: 30_000 });
    assert.equal(
      bank.channel.transfer(id)?.journal.map((j) => `${j.event}: ${j.from ?? '-'} -> ${j.to}`),
      ['REQUEST: - -> requested', 'DISPATCH: requested -> sent', 'EXECUTED (response): sent -> succeeded'],
    );
    assertInvariants(bank, [1, 2, 3, 5, 6, 7]);
  } finally {
    bank.dispose();
  }
});

test.run();
