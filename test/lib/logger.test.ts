/**
 * The logger censors fields named like a secret wherever a line carries them, and the bank
 * logs the events an operator needs: restarts, faults queued, reconciliation reports and every
 * refusal the core makes, each with its transfer id.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, REDACTED } from '../../src/lib/logger.ts';
import { createApp } from '../../src/server/app.ts';
import { capturingLogger, drive, makeBank, openCustomer, run, transfer } from '../helpers.ts';

test('fields named like a secret are censored, at the top and one level down', () => {
  const chunks: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (c: string) => void chunks.push(c) } });
  logger.info({ token: 'SECRET-1', adminToken: 'SECRET-2', headers: { authorization: 'Bearer SECRET-3', cookie: 'scrollbank_token=SECRET-4' }, customer: { token: 'SECRET-5' }, route: '/me' }, 'a line');
  const text = chunks.join('');
  for (const secret of ['SECRET-1', 'SECRET-2', 'SECRET-3', 'SECRET-4', 'SECRET-5']) assert.not.match(text, secret);
  const line = JSON.parse(text);
  assert.equal([line.token, line.adminToken, line.headers.authorization, line.headers.cookie, line.customer.token, line.route], [REDACTED, REDACTED, REDACTED, REDACTED, REDACTED, '/me']);
});

test('restarts, faults queued, reconciliation reports and the core\'s refusals are logged', async () => {
  const capture = capturingLogger();
  const bank = makeBank({ logger: capture.logger });
  try {
    const app = createApp({ bank, adminToken: 'admin-token-for-the-log-test', logger: capture.logger });
    const admin = { Authorization: 'Bearer admin-token-for-the-log-test', 'Content-Type': 'application/json' };
    const kim = openCustomer(bank, 'Kim', 1_000);
    const lee = openCustomer(bank, 'Lee', 0);
    assert.is((await drive(bank, Promise.resolve(app.request('/admin/faults', { method: 'POST', headers: admin, body: JSON.stringify({ pipe: 'log', action: 'drop' }) })))).status, 201);
    assert.is((await drive(bank, Promise.resolve(app.request('/admin/restart', { method: 'POST', headers: admin, body: JSON.stringify({ side: 'core' }) })))).status, 200);
    const outcome = transfer(bank, kim, lee, 5_000); // more than Kim has: the core refuses it
    run(bank, 1_000);
    assert.is(outcome.kind, 'created');
    await drive(bank, bank.channel.reconcile());
    const lines = capture.lines();
    const find = (what: string, test: (l: Record<string, any>) => boolean) => assert.ok(lines.some(test), `${what}: ${lines.map((l) => l.msg).join(' | ')}`);
    find('fault queued', (l) => l.msg === 'fault queued on the log pipe: drop x1' && l.fault.pipe === 'log');
    find('restart', (l) => l.msg.startsWith('restarting the core') && l.side === 'core');
    find('back', (l) => l.msg === 'the core is back');
    find('refusal', (l) => l.side === 'core' && l.reason === 'insufficient-funds' && outcome.kind === 'created' && l.transferId === outcome.transfer.id);
    find('reconciliation', (l) => /^reconciliation/.test(l.msg) && typeof l.accountsChecked === 'number');
  } finally {
    bank.dispose();
  }
});

test.run();
