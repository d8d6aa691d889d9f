/**
 * GET /metrics (prom-client): admin token only, Prometheus text, and every figure the issue
 * names moves with what the bank does: transfers by outcome and reason, time in the waiting
 * states, link messages by fate, the log's offsets and lag, repairs and reconciliations,
 * commits per database, HTTP requests by route and status, and Node's default metrics.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp } from '../../src/server/app.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { drive, drivenApp, makeBank, openCustomer, run } from '../helpers.ts';

const ADMIN_TOKEN = 'admin-token-for-the-metrics-test';

/** The value of one series (name and exact label set), or undefined when it is not there. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('GET /metrics needs the admin token and shows what the bank did', async () => {
  const metrics = createMetrics();
  const bank = makeBank({ observer: metrics.observer });
  try {
    metrics.attach(bank);
    const app = drivenApp(bank, createApp({ bank, adminToken: ADMIN_TOKEN, metrics }));
    const kim = openCustomer(bank, 'Kim', 100_000);
    const lee = openCustomer(bank, 'Lee', 0);

    assert.is((await app.request('/metrics')).status, 401);
    assert.is((await app.request('/metrics', { headers: { Authorization: `Bearer ${kim.token}` } })).status, 403);

    const post = (from: typeof kim, to: typeof lee, amount: number) =>
      drive(bank, Promise.resolve(app.request('/transfers', { method: 'POST', headers: { Authorization: `Bearer ${from.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ fromAccountId: from.accountId, toAccountId: to.accountId, amount }) })));
    assert.is((await post(kim, lee, 1_000)).status, 201);
    // A lost request: timed out, queried, failed as not-received.
    bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
    assert.is((await post(kim, lee, 2_000)).status, 201);
    // Too much: the core refuses it.
    assert.is((await post(lee, kim, 1_000_000)).status, 201);
    // The log loses a posting: a reconciliation finds the copy behind and repairs it.
    bank.faults.add({ pipe: 'log', action: 'drop', count: 1, delayMs: 0 });
    bank.core.deposit({ accountId: lee.accountId, amountWon: 5, fromBank: 'Shinhan', fromName: 'Park' });
    run(bank, 100);
    await drive(bank, bank.channel.reconcile());
    run(bank, 10_000);

    const scrape = await app.request('/metrics', { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.is(scrape.status, 200);
    assert.match(scrape.headers.get('content-type') ?? '', 'text/plain');
    const text = await scrape.text();

    assert.is(value(text, 'scrollbank_transfers_created_total'), 3);
    assert.is(value(text, 'scrollbank_transfers_settled_total{outcome="succeeded",reason="none"}'), 1);
    assert.is(value(text, 'scrollbank_transfers_settled_total{outcome="failed",reason="not-received"}'), 1);
    assert.is(value(text, 'scrollbank_transfers_settled_total{outcome="failed",reason="insufficient-funds"}'), 1);
    assert.is(value(text, 'scrollbank_transfers_unfinished'), 0);
    assert.is(value(text, 'scrollbank_transfer_settle_seconds_count'), 3);
    assert.is(value(text, 'scrollbank_transfer_state_seconds_count{state="timedOut"}'), 1);
    assert.is(value(text, 'scrollbank_transfer_state_seconds_count{state="querying"}'), 1);
    // The lost request waited out the 3 s response timeout, then its query's answer came at once.
    assert.ok(value(text, 'scrollbank_transfer_settle_seconds_sum')! >= 3, 'the lost one took its timeout');
    assert.is(value(text, 'scrollbank_link_messages_total{pipe="request",type="execute",fate="dropped"}'), 1);
    assert.is(value(text, 'scrollbank_link_messages_total{pipe="request",type="execute",fate="delivered"}'), 2);
    assert.is(value(text, 'scrollbank_link_messages_total{pipe="request",type="query",fate="delivered"}'), 1);
    const appended = value(text, 'scrollbank_log_appended_offset')!;
    assert.ok(appended > 0);
    assert.is(value(text, 'scrollbank_log_consumed_offset'), appended);
    assert.is(value(text, 'scrollbank_log_consumer_lag_records'), 0);
    assert.ok(value(text, 'scrollbank_history_lag_seconds_count')! > 0);
    assert.is(value(text, 'scrollbank_reconciliations_total'), 1);
    assert.is(value(text, 'scrollbank_reconciliation_mismatches_total'), 1);
    assert.ok(value(text, 'scrollbank_gap_repairs_total')! >= 1);
    assert.ok(value(text, 'scrollbank_gap_repair_rows_total')! >= 1);
    for (const db of ['channel', 'core', 'log']) {
      assert.ok(value(text, `scrollbank_commits_total{db="${db}"}`)! > 0, db);
      assert.is(value(text, `scrollbank_commit_seconds_count{db="${db}"}`), value(text, `scrollbank_commits_total{db="${db}"}`), db);
    }
    assert.is(value(text, 'scrollbank_http_request_duration_seconds_count{method="POST",route="/transfers",status="201"}'), 3);
    assert.is(value(text, 'scrollbank_http_request_duration_seconds_count{method="GET",route="/metrics",status="401"}'), 1);
    assert.ok(value(text, 'nodejs_eventloop_lag_seconds') !== undefined, 'event-loop lag');
    assert.ok(value(text, 'process_resident_memory_bytes') !== undefined, 'the default process metrics');
  } finally {
    bank.dispose();
  }
});

test.run();
