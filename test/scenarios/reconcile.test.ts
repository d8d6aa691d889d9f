/**
 * Reconciliation (S8): trailing losses that no later record reveals, and planted mismatches
 * in the copy, are found by comparing with the core in bounded batches, repaired, and reported.
 * Every test runs on both event logs: the embedded one and JetStream on a real nats-server.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RECONCILE_BATCH } from '../../src/channel/reconciler.ts';
import type { LinkRequest } from '../../src/net/messages.ts';
import { assertInvariants, drive, LOG_KINDS, openCustomer, run, type LogKind, type TestBank, type TestCustomer, withBank } from '../helpers.ts';

const INVARIANTS = [1, 2, 3, 4, 5, 6, 7] as const;

function deposit(bank: TestBank, c: TestCustomer, amountWon: number): void {
  assert.ok(bank.core.deposit({ accountId: c.accountId, amountWon, fromBank: 'Shinhan', fromName: 'Park' }) !== 'unknown-account');
}

const reconcile = (bank: TestBank) => drive(bank, bank.channel.reconcile());

function reconciliation(log: LogKind): void {
  const test = suite(`reconciliation on the ${log} log`);

  test(
    "an account's last entries lost with nothing after them are found by reconciliation and repaired",
    withBank({ log }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      const lee = openCustomer(bank, 'Lee', 1_000);
      deposit(bank, kim, 5);
      await run(bank); // its own turn: the records of one turn are relayed to the log as one batch
      bank.faults.add({ pipe: 'log', action: 'drop', count: 2, delayMs: 0 });
      deposit(bank, kim, 10);
      deposit(bank, kim, 20);
      await run(bank, 10_000);
      assert.is(bank.channel.account(kim.accountId)!.lastSeq, 2, 'no later record reveals the loss');

      const report = await reconcile(bank);
      assert.is(report.accountsChecked, 2);
      assert.is(report.mismatches, 1);
      assert.is(report.repaired, 1);
      assert.equal(report.problems, [{ accountId: kim.accountId, problem: 'behind' }]);
      assert.ok(report.tookMs >= 0);
      assert.is(bank.channel.account(kim.accountId)!.lastSeq, 4);
      assert.equal(bank.channel.lastReconcileReport(), report);
      assert.is(bank.channel.account(lee.accountId)!.lastSeq, 1);
      assertInvariants(bank, [...INVARIANTS]);
    }),
  );

  test(
    'a planted mismatch (a row deleted, a balance changed, a running balance rewritten) is found, rebuilt and reported',
    withBank({ log }, async (bank) => {
      const customers = ['Kim', 'Lee', 'Park', 'Choi'].map((n) => openCustomer(bank, n, 1_000));
      for (const c of customers) for (let i = 1; i <= 5; i++) deposit(bank, c, i);
      await run(bank);
      const [kim, lee, park] = customers as [TestCustomer, TestCustomer, TestCustomer, TestCustomer];
      const db = bank.channel.readModel().db;
      db.prepare('DELETE FROM history WHERE account_id = ? AND seq = 3').run(kim.accountId);
      db.prepare('UPDATE accounts SET balance_won = balance_won + 1 WHERE id = ?').run(lee.accountId);
      db.prepare('UPDATE history SET balance_after_won = 7 WHERE account_id = ? AND seq = 6').run(park.accountId);
      db.prepare('UPDATE accounts SET balance_won = 7 WHERE id = ?').run(park.accountId);

      const report = await reconcile(bank);
      assert.is(report.accountsChecked, 4);
      assert.is(report.mismatches, 3);
      assert.is(report.repaired, 3);
      assert.equal(
        report.problems.map((p) => p.accountId),
        [kim.accountId, lee.accountId, park.accountId],
      );
      assert.ok(report.problems.every((p) => p.problem === 'diverged'));
      assertInvariants(bank, [...INVARIANTS]);

      const again = await reconcile(bank);
      assert.equal({ mismatches: again.mismatches, repaired: again.repaired }, { mismatches: 0, repaired: 0 }, 'a clean copy reports nothing');
    }),
  );

  test(
    'an account the channel never heard of is found and its history fetched',
    withBank({ log }, async (bank) => {
      bank.faults.add({ pipe: 'log', action: 'drop', count: 2, delayMs: 0 });
      const { accountId } = bank.core.openAccount('Stranger', 5_000); // account-opened and opening posting lost
      await run(bank, 10);
      assert.is(bank.channel.account(accountId), undefined);
      const report = await reconcile(bank);
      assert.equal(report.problems, [{ accountId, problem: 'missing' }]);
      assert.is(report.repaired, 1);
      assert.is(bank.channel.account(accountId)!.balanceWon, 5_000);
      assertInvariants(bank, [...INVARIANTS]);
    }),
  );

  test(
    'reconciliation reads the core in bounded batches and rides out lost answers',
    withBank({ log }, async (bank) => {
      const count = RECONCILE_BATCH * 2 + 5;
      for (let i = 0; i < count; i++) bank.core.openAccount(`Customer ${i}`, 0);
      await run(bank, 10);
      const asked: LinkRequest[] = [];
      const send = bank.link.request.bind(bank.link);
      bank.link.request = (m) => {
        asked.push(m);
        send(m);
      };
      bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
      bank.faults.add({ pipe: 'response', action: 'drop', count: 1, delayMs: 0 });
      const report = await reconcile(bank);
      assert.is(report.accountsChecked, count);
      assert.is(report.mismatches, 0);
      const batches = asked.filter((m) => m.type === 'account-summaries');
      assert.ok(batches.every((m) => m.type === 'account-summaries' && m.limit === RECONCILE_BATCH));
      assert.is(batches.length, 3 + 2, 'three batches, two of them asked twice');
    }),
  );

  test(
    'reconciliation runs every reconcileIntervalMs by itself and repairs a trailing loss',
    withBank({ log, settings: { reconcileIntervalMs: 60_000 } }, async (bank) => {
      const kim = openCustomer(bank, 'Kim', 1_000);
      bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
      deposit(bank, kim, 10);
      await run(bank, 59_000);
      assert.is(bank.channel.lastReconcileReport(), null);
      assert.is(bank.channel.account(kim.accountId)!.lastSeq, 1);
      await run(bank, 1_000); // the timer fires; the reconciliation goes on through the link
      for (let i = 0; i < 50 && bank.channel.lastReconcileReport() === null; i++) {
        await new Promise((r) => setImmediate(r));
        await run(bank, 100);
      }
      const report = bank.channel.lastReconcileReport();
      assert.ok(report !== null, 'a report after a minute');
      assert.is(report.mismatches, 1);
      assert.is(bank.channel.account(kim.accountId)!.lastSeq, 2);
      assertInvariants(bank, [...INVARIANTS]);
    }),
  );

  test.run();
}

for (const log of LOG_KINDS) reconciliation(log);
