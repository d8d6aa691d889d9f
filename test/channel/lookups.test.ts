/**
 * Token and owner lookups: only token hashes are stored, known tokens and account owners are
 * remembered in bounded caches, and the token cache never answers for a token the database does not know.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashToken, TOKEN_CACHE_SIZE } from '../../src/channel/channel.ts';
import { makeBank } from '../helpers.ts';

test('a token authenticates its customer, again from memory, and again after a restart', () => {
  const bank = makeBank();
  try {
    const { customer, token } = bank.channel.createCustomer('Kim');
    assert.equal(bank.channel.authenticate(token), customer);
    // Delete the stored hash: only the cache can answer now.
    bank.channel.readModel().db.prepare('DELETE FROM tokens WHERE token_hash = ?').run(hashToken(token));
    assert.equal(bank.channel.authenticate(token), customer, 'remembered');
    bank.restart('channel');
    assert.is(bank.channel.authenticate(token), undefined, 'a restart forgets what was remembered');
    assert.is(bank.channel.authenticate('not-a-token'), undefined);
  } finally {
    bank.dispose();
  }
});

test('the cache holds at most TOKEN_CACHE_SIZE tokens and lets the least recently used go first', () => {
  const bank = makeBank();
  try {
    const db = bank.channel.readModel().db;
    const tokens = db.transaction(() => Array.from({ length: TOKEN_CACHE_SIZE + 1 }, (_, i) => bank.channel.createCustomer(`C${i}`).token))();
    const [first, second] = tokens as [string, string];
    for (const t of tokens.slice(0, TOKEN_CACHE_SIZE)) assert.ok(bank.channel.authenticate(t));
    assert.ok(bank.channel.authenticate(first), 'first is used again, so second is now the oldest');
    assert.ok(bank.channel.authenticate(tokens[TOKEN_CACHE_SIZE]!), 'one more pushes the oldest out');
    db.prepare('DELETE FROM tokens').run();
    assert.ok(bank.channel.authenticate(first), 'still remembered');
    assert.is(bank.channel.authenticate(second), undefined, 'evicted, and the database no longer knows it');
  } finally {
    bank.dispose();
  }
});

test("an account's owner is read once and remembered; an account never changes owner", () => {
  const bank = makeBank();
  try {
    const { customer } = bank.channel.createCustomer('Kim');
    const other = bank.channel.createCustomer('Lee').customer;
    const { accountId } = bank.core.openAccount('Kim', 0);
    bank.time.advance(0);
    assert.is(bank.channel.ownerOf(999), undefined, 'no such account');
    assert.is(bank.channel.ownerOf(accountId), null, 'the log told the channel of it; nobody holds it yet');
    bank.channel.registerAccount(customer.id, accountId);
    assert.is(bank.channel.ownerOf(accountId), customer.id);
    bank.channel.readModel().db.prepare('UPDATE accounts SET customer_id = NULL WHERE id = ?').run(accountId);
    assert.is(bank.channel.ownerOf(accountId), customer.id, 'remembered');
    bank.restart('channel');
    assert.is(bank.channel.ownerOf(accountId), null, 'a restart reads it again');
    bank.channel.registerAccount(customer.id, accountId);
    assert.throws(() => bank.channel.registerAccount(other.id, accountId), /already belongs/);
  } finally {
    bank.dispose();
  }
});

test.run();
