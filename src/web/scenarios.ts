/// <reference lib="dom" />
/**
 * The admin panel: one button per scenario of the talk. Each queues its fault through
 * POST /admin/faults (or deposits, or restarts the channel), sends the transfer in the
 * form, follows it live step by step, and says whether it ended as the talk predicts.
 * Every verdict is judged from the scenario's own transfer (its state, its journal, its
 * audit and its own history rows), never from whole-account balances: whatever else the
 * customer does meanwhile cannot make it wrong.
 */
import { api, type TransferJson } from './api.ts';

export type ScenarioName = 'lose-response' | 'lose-request' | 'delay-past-cutoff' | 'duplicate' | 'deposit' | 'restart-channel';

export type Timing = { cutoffMs: number; responseTimeoutMs: number };

export type Transition = { event: string; from: string; to: string };

/** What the page can do for a scenario: send the form's transfer and follow it, and show its steps. */
export type ScenarioHost = {
  adminToken: string;
  customerToken: string;
  accountId: number;
  timing: Timing;
  sendTransfer(onTransition?: (t: Transition) => void): Promise<{ id: string; amount: number; settled: Promise<{ state: string; reason: string | null }> }>;
  refreshHistory(): Promise<void>;
  historyHasTransfer(id: string): number;
  historyHasSeq(seq: number): boolean;
  /** A step as it happens (announced: the steps are a live region). */
  step(text: string): void;
  /** A countdown beside the steps, updated each second and not announced; null hides it. */
  countdown(text: string | null): void;
};

export type ScenarioOutcome = { asPredicted: boolean; text: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function queueFault(host: ScenarioHost, fault: Record<string, unknown>, what: string): Promise<void> {
  await api(host.adminToken, 'DELETE', '/admin/faults');
  await api(host.adminToken, 'POST', '/admin/faults', fault);
  host.step(`fault queued: ${what}`);
}

/** Sends the form's transfer and reports each of its transitions as a step, in the journal's words. */
async function send(host: ScenarioHost) {
  const t = await host.sendTransfer((s) => host.step(`${s.event}: ${s.from} → ${s.to}`));
  host.step(`sent ${t.id}`);
  return t;
}

const transferOf = async (host: ScenarioHost, id: string): Promise<TransferJson & { audit: { event: string; reason: string }[] }> => (await api(host.customerToken, 'GET', `/transfers/${encodeURIComponent(id)}`)).body;

/** Polls the transfer until its audit holds a late refusal for `reason`, or `waitMs` pass. */
async function lateRefusal(host: ScenarioHost, id: string, reason: string, waitMs: number): Promise<boolean> {
  for (const until = Date.now() + waitMs; ; await sleep(200)) {
    const t = await transferOf(host, id);
    if (t.audit.some((a) => a.event === 'late-request-refused' && a.reason === reason)) return true;
    if (Date.now() > until) return false;
  }
}

/** The transfer's own rows in the sender's history, after a refresh. */
async function ownRows(host: ScenarioHost, id: string): Promise<number> {
  await host.refreshHistory();
  return host.historyHasTransfer(id);
}

const verdict = (ok: boolean, text: string): ScenarioOutcome => ({ asPredicted: ok, text: `${ok ? 'as the talk predicts' : 'NOT as the talk predicts'}: ${text}` });

export const SCENARIOS: Record<ScenarioName, { label: string; run(host: ScenarioHost): Promise<ScenarioOutcome> }> = {
  'lose-response': {
    label: 'Lose the response',
    async run(host) {
      await queueFault(host, { pipe: 'response', action: 'drop' }, "the core's next answer is lost");
      const t = await send(host);
      const { state } = await t.settled;
      const byLog = (await transferOf(host, t.id)).journal.some((j) => j.event === 'EXECUTED (log)');
      return verdict(state === 'succeeded' && byLog, `the core's answer was lost, the event log brought the outcome: ${state}${byLog ? ' (EXECUTED (log))' : ''}`);
    },
  },
  'lose-request': {
    label: 'Lose the request',
    async run(host) {
      await queueFault(host, { pipe: 'request', action: 'drop' }, 'the next request never reaches the core');
      const t = await send(host);
      const { state, reason } = await t.settled;
      return verdict(state === 'failed' && reason === 'not-received', `the core never saw it and now never will: ${state} (${reason})`);
    },
  },
  'delay-past-cutoff': {
    label: 'Delay the request past the cutoff',
    async run(host) {
      const delayMs = host.timing.cutoffMs + host.timing.responseTimeoutMs;
      await queueFault(host, { pipe: 'request', action: 'delay', delayMs }, `the next request arrives ${Math.round(delayMs / 1000)} s late, past the cutoff`);
      const arrivesAt = Date.now() + delayMs;
      const t = await send(host);
      const { state, reason } = await t.settled;
      host.step(`settled: ${state} (${reason})`);
      // A countdown while the late request is still on its way to the core.
      host.step(`waiting for the late request to reach the core, ${Math.max(0, Math.ceil((arrivesAt - Date.now()) / 1000))} s from now`);
      for (let left = arrivesAt - Date.now(); left > 0; left = arrivesAt - Date.now()) {
        host.countdown(`${Math.ceil(left / 1000)} s until the late request reaches the core`);
        await sleep(Math.min(1_000, left));
      }
      host.countdown(null);
      host.step('the late request reached the core');
      const refused = await lateRefusal(host, t.id, 'fenced', 5_000);
      if (refused) host.step('refused as fenced: nothing moved (the transfer\'s audit says so)');
      const rows = await ownRows(host, t.id);
      const ok = state === 'failed' && refused && rows === 0;
      return verdict(ok, `${state} (${reason}); the late request ${refused ? 'was refused as fenced' : 'was NOT seen refused'}, and the transfer has ${rows} history row${rows === 1 ? '' : 's'}`);
    },
  },
  duplicate: {
    label: 'Duplicate the request',
    async run(host) {
      await queueFault(host, { pipe: 'request', action: 'duplicate' }, 'the next request reaches the core twice');
      const t = await send(host);
      const { state } = await t.settled;
      const refused = await lateRefusal(host, t.id, 'already-decided', 5_000);
      if (refused) host.step('the copy was refused as already decided');
      const rows = await ownRows(host, t.id);
      const ok = state === 'succeeded' && refused && rows === 1;
      return verdict(ok, `${state}, executed once: ${rows} history row for it, and its copy ${refused ? 'refused as already decided' : 'NOT seen refused'}`);
    },
  },
  deposit: {
    label: 'Deposit from another bank',
    async run(host) {
      const { body } = await api(host.adminToken, 'POST', '/admin/deposits', { accountId: host.accountId, amount: 50_000, fromBank: 'Hana Bank', fromName: 'Park Seoyeon' });
      const seq = body.seq as number;
      host.step(`the core posted a deposit as row ${seq}`);
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
      await queueFault(host, { pipe: 'request', action: 'delay', delayMs: Math.floor(host.timing.responseTimeoutMs / 2) }, 'the next request is held on the wire');
      const t = await send(host);
      const { body } = await api(host.adminToken, 'POST', '/admin/restart', { side: 'channel' });
      host.step(`the channel restarted with ${body.transfersInFlight} transfer(s) in flight`);
      const { state } = await t.settled;
      return verdict(state === 'succeeded', `restarted with ${body.transfersInFlight} transfer(s) in flight; this one still settled: ${state}`);
    },
  },
};
