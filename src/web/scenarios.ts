/// <reference lib="dom" />
/**
 * The admin panel: one button per scenario of the talk. Each queues its fault through
 * POST /admin/faults (or deposits, or restarts the channel), sends the transfer in the
 * form, follows it live, and says whether it ended as the talk predicts.
 */
import { api, won } from './api.ts';

export type ScenarioName = 'lose-response' | 'lose-request' | 'delay-past-cutoff' | 'duplicate' | 'deposit' | 'restart-channel';

export type Timing = { cutoffMs: number; responseTimeoutMs: number };

/** What the page can do for a scenario: send the form's transfer and follow it. */
export type ScenarioHost = {
  adminToken: string;
  customerToken: string;
  accountId: number;
  timing: Timing;
  sendTransfer(): Promise<{ id: string; amount: number; settled: Promise<{ state: string; reason: string | null }> }>;
  balance(): Promise<number>;
  refreshHistory(): Promise<void>;
  historyHasTransfer(id: string): number;
  historyHasSeq(seq: number): boolean;
};

export type ScenarioOutcome = { asPredicted: boolean; text: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function queueFault(host: ScenarioHost, fault: Record<string, unknown>): Promise<void> {
  await api(host.adminToken, 'DELETE', '/admin/faults');
  await api(host.adminToken, 'POST', '/admin/faults', fault);
}

const verdict = (ok: boolean, text: string): ScenarioOutcome => ({ asPredicted: ok, text: `${ok ? 'as the talk predicts' : 'NOT as the talk predicts'}: ${text}` });

export const SCENARIOS: Record<ScenarioName, { label: string; run(host: ScenarioHost): Promise<ScenarioOutcome> }> = {
  'lose-response': {
    label: 'Lose the response',
    async run(host) {
      await queueFault(host, { pipe: 'response', action: 'drop' });
      const t = await host.sendTransfer();
      const { state } = await t.settled;
      return verdict(state === 'succeeded', `the core's answer was lost, the event log brought the outcome: ${state}`);
    },
  },
  'lose-request': {
    label: 'Lose the request',
    async run(host) {
      await queueFault(host, { pipe: 'request', action: 'drop' });
      const t = await host.sendTransfer();
      const { state, reason } = await t.settled;
      return verdict(state === 'failed' && reason === 'not-received', `the core never saw it and now never will: ${state} (${reason})`);
    },
  },
  'delay-past-cutoff': {
    label: 'Delay the request past the cutoff',
    async run(host) {
      const delayMs = host.timing.cutoffMs + host.timing.responseTimeoutMs;
      await queueFault(host, { pipe: 'request', action: 'delay', delayMs });
      const before = await host.balance();
      const startedAt = Date.now();
      const t = await host.sendTransfer();
      const { state, reason } = await t.settled;
      // Wait for the late request to reach the core, then look again.
      await sleep(Math.max(0, startedAt + delayMs + 500 - Date.now()));
      const after = await host.balance();
      await host.refreshHistory();
      const ok = state === 'failed' && after === before && host.historyHasTransfer(t.id) === 0;
      return verdict(ok, `${state} (${reason}); the late request arrived and was refused: balance ${won(before)} → ${won(after)}`);
    },
  },
  duplicate: {
    label: 'Duplicate the request',
    async run(host) {
      await queueFault(host, { pipe: 'request', action: 'duplicate' });
      const before = await host.balance();
      const t = await host.sendTransfer();
      const { state } = await t.settled;
      const after = await host.balance();
      await host.refreshHistory();
      const rows = host.historyHasTransfer(t.id);
      const ok = state === 'succeeded' && before - after === t.amount && rows === 1;
      return verdict(ok, `${state}, executed once: ${rows} history row, balance ${won(before)} → ${won(after)}`);
    },
  },
  deposit: {
    label: 'Deposit from another bank',
    async run(host) {
      const { body } = await api(host.adminToken, 'POST', '/admin/deposits', { accountId: host.accountId, amount: 50_000, fromBank: 'Hana Bank', fromName: 'Park Seoyeon' });
      const seq = body.seq as number;
      for (let i = 0; i < 50 && !host.historyHasSeq(seq); i++) {
        await host.refreshHistory();
        if (!host.historyHasSeq(seq)) await sleep(100);
      }
      return verdict(host.historyHasSeq(seq), `a deposit the channel never saw coming arrived by the event log as row ${seq}`);
    },
  },
  'restart-channel': {
    label: 'Restart the channel',
    async run(host) {
      // Hold the request on the wire for half the response timeout: the transfer is in flight.
      await queueFault(host, { pipe: 'request', action: 'delay', delayMs: Math.floor(host.timing.responseTimeoutMs / 2) });
      const t = await host.sendTransfer();
      const { body } = await api(host.adminToken, 'POST', '/admin/restart', { side: 'channel' });
      const { state } = await t.settled;
      return verdict(state === 'succeeded', `restarted with ${body.transfersInFlight} transfer(s) in flight; this one still settled: ${state}`);
    },
  },
};
