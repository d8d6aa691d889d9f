/// <reference lib="dom" />
/**
 * The bank page (GET /): sign in with a customer token, see the balance, scroll the whole
 * history, send money and watch the transfer's state live; with the admin token, run the
 * talk's scenarios from buttons.
 */
import { ApiError, api, won } from './api.ts';
import { HistoryView } from './history.ts';
import { followTransfer } from './live-transfer.ts';
import { SCENARIOS, type ScenarioHost, type ScenarioName, type Timing } from './scenarios.ts';

const TOKEN_COOKIE = 'scrollbank_token';
const STORAGE_KEY = 'scrollbank.session';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
};

type Session = { customerToken: string; adminToken: string | null };

function settings(): Timing {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="scrollbank-settings"]');
  return { cutoffMs: Number(meta?.dataset['cutoffMs'] ?? 60_000), responseTimeoutMs: Number(meta?.dataset['responseTimeoutMs'] ?? 3_000) };
}

/** A token that no longer works (a restarted server, a revoked token) means signing in again, not an error to read. */
const isStaleToken = (error: unknown) => error instanceof ApiError && error.status === 401;

function showError(error: unknown): void {
  const box = $('error');
  if (isStaleToken(error)) {
    box.replaceChildren('Your sign-in no longer works (the server restarted, or the token was revoked). ');
    const again = document.createElement('button');
    again.type = 'button';
    again.textContent = 'Sign in again';
    again.addEventListener('click', signOut);
    box.append(again);
  } else {
    box.textContent = error instanceof ApiError ? `${error.problem.title ?? 'Error'}: ${error.problem.detail ?? ''}` : String(error);
  }
  box.hidden = false;
}

/** The banner is about the last thing that failed: the next thing that works clears it. */
function clearError(): void {
  $('error').hidden = true;
}

const FORM_FIELDS: Record<string, string> = { toAccountId: 'transfer-to', amount: 'transfer-amount', memo: 'transfer-memo' };

/** A refused form: each problem beside the field it concerns ("body: amount: ...; toAccountId: ..."). */
function showFormProblem(error: unknown): boolean {
  if (!(error instanceof ApiError) || (error.status !== 400 && error.status !== 403 && error.status !== 409 && error.status !== 422)) return false;
  const detail = String(error.problem.detail ?? '');
  let placed = false;
  for (const part of detail.split('; ')) {
    const m = /^(?:body: )?(\w+): (.+)$/.exec(part);
    const field = m === null ? undefined : FORM_FIELDS[m[1]!];
    if (field !== undefined) {
      $(`${field}-error`).textContent = m![2]!;
      $(field).setAttribute('aria-invalid', 'true');
      placed = true;
    }
  }
  if (!placed) $('transfer-error').textContent = `${error.problem.title ?? 'Refused'}: ${detail}`;
  return true;
}

function clearFormProblems(): void {
  for (const field of Object.values(FORM_FIELDS)) {
    $(`${field}-error`).textContent = '';
    $(field).removeAttribute('aria-invalid');
  }
  $('transfer-error').textContent = '';
}

/** An Idempotency-Key per submitted form: a double click or a retry sends money once (S7). */
function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Set once a sign-in has started the bank: a second submit (a double click) does nothing. */
let signedIn = false;
let signingIn: Promise<void> | null = null;

function signIn(session: Session): Promise<void> {
  if (signedIn) return Promise.resolve();
  signingIn ??= signInOnce(session).finally(() => {
    signingIn = null;
  });
  return signingIn;
}

async function signInOnce(session: Session): Promise<void> {
  const me = await api(session.customerToken, 'GET', '/me');
  if (session.adminToken !== null) await api(session.adminToken, 'GET', '/admin/faults');
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  // Read-only browser routes (the live stream, /viz/transfers/:id) accept this cookie.
  document.cookie = `${TOKEN_COOKIE}=${encodeURIComponent(session.customerToken)}; path=/; SameSite=Strict`;
  const accounts = me.body.accounts as { id: number; balance: number }[];
  if (accounts.length === 0) throw new Error('this customer has no account');
  signedIn = true;
  startBank(session, me.body.customer.name as string, accounts);
}

function signOut(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  document.cookie = `${TOKEN_COOKIE}=; path=/; max-age=0; SameSite=Strict`;
  location.reload();
}

function startBank(session: Session, customerName: string, accounts: { id: number; balance: number }[]): void {
  $('signin').hidden = true;
  $('bank').hidden = false;
  $('customer-name').textContent = customerName;
  const token = session.customerToken;
  // The account shown: the balance, the history and the form's "from" all follow it.
  let accountId = accounts[0]!.id;
  const newHistory = (id: number) => {
    $<HTMLOListElement>('history-list').replaceChildren();
    $('history-end').hidden = true;
    return new HistoryView(token, id, $('history-scroll'), $<HTMLOListElement>('history-list'), $('history-sentinel'), $('history-end'), showError, clearError);
  };
  let history = newHistory(accountId);
  // The live panel shows the latest transfer sent on this account; an earlier one (a scenario's)
  // is followed on to its end without writing into it.
  let livePanel = 0;
  $('account-id').textContent = String(accountId);
  const select = $<HTMLSelectElement>('account-select');
  const own = $('own-accounts');
  for (const a of accounts) {
    select.append(new Option(`account ${a.id}`, String(a.id)));
    own.append(new Option(`your account ${a.id}`, String(a.id)));
  }
  $('account-picker').hidden = accounts.length < 2;
  select.addEventListener('change', () => {
    history.dispose();
    accountId = Number(select.value);
    $('account-id').textContent = String(accountId);
    $('live').hidden = true;
    livePanel++;
    history = newHistory(accountId);
    void balance().then(clearError, showError);
    void history.loadOlder();
  });

  const balance = async (): Promise<number> => {
    const asked = accountId;
    const { body } = await api(token, 'GET', `/accounts/${asked}`);
    // An answer for the account shown before a switch is not this account's balance.
    if (asked === accountId) {
      $('balance').textContent = won(body.balance);
      $('balance').dataset['balance'] = String(body.balance);
    }
    return body.balance as number;
  };
  const refresh = async () => {
    await Promise.all([history.refresh(), balance()]);
  };

  const sendTransfer = async (onTransition?: (t: { event: string; from: string; to: string }) => void) => {
    const form = $<HTMLFormElement>('transfer-form');
    const data = new FormData(form);
    const memo = String(data.get('memo') ?? '').trim();
    const body = { fromAccountId: accountId, toAccountId: Number(data.get('to')), amount: Number(data.get('amount')), ...(memo === '' ? {} : { memo }) };
    // The previous transfer's panel goes first: whatever this one answers, it is not about that one.
    $('live').hidden = true;
    const panel = ++livePanel;
    clearFormProblems();
    const { body: transfer } = await api(token, 'POST', '/transfers', body, { 'Idempotency-Key': newIdempotencyKey(), Prefer: 'wait=0' });
    clearError();
    $('live').hidden = false;
    const link = $<HTMLAnchorElement>('live-link');
    link.href = `/viz/transfers/${encodeURIComponent(transfer.id)}`;
    link.textContent = transfer.id;
    const settled = followTransfer(transfer.id, token, { chart: $('live-chart'), journal: $<HTMLOListElement>('live-journal'), state: $('live-state'), reason: $('live-reason') }, onTransition, () => panel === livePanel).then(async (outcome) => {
      await refresh().catch(showError);
      return outcome;
    });
    return { id: transfer.id as string, amount: transfer.amount as number, settled };
  };

  $<HTMLFormElement>('transfer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sendTransfer().then(
      // Followed to its end; a stream that was refused (a revoked token) asks to sign in again.
      (t) => void t.settled.catch(showError),
      (error: unknown) => {
        if (!showFormProblem(error)) showError(error);
      },
    );
  });
  $('refresh').addEventListener('click', () => {
    refresh().then(clearError, showError);
  });
  $('sign-out').addEventListener('click', signOut);
  enablePullToRefresh($('history-scroll'), () => refresh().then(clearError, showError));
  void balance().catch(showError);
  void history.loadOlder();

  if (session.adminToken !== null) {
    const host: ScenarioHost = {
      adminToken: session.adminToken,
      customerToken: token,
      get accountId() {
        return accountId;
      },
      timing: settings(),
      async sendTransfer(onTransition) {
        try {
          return await sendTransfer(onTransition);
        } finally {
          $<HTMLButtonElement>('transfer-send').disabled = false;
        }
      },
      refreshHistory: () => history.refresh(),
      step(text) {
        $('scenario-steps').append(Object.assign(document.createElement('li'), { textContent: text }));
      },
      countdown(text) {
        const box = $('scenario-countdown');
        box.hidden = text === null;
        box.textContent = text ?? '';
      },
      historyHasTransfer: (id) => document.querySelectorAll(`#history-list li[data-transfer-id="${CSS.escape(id)}"]`).length,
      historyHasSeq: (seq) => history.seqs().includes(seq),
    };
    startAdminPanel(host);
  }
}

function startAdminPanel(host: ScenarioHost): void {
  $('admin').hidden = false;
  const buttons = $('scenario-buttons');
  const result = $('scenario-result');
  for (const [name, scenario] of Object.entries(SCENARIOS) as [ScenarioName, (typeof SCENARIOS)[ScenarioName]][]) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = scenario.label;
    button.dataset['scenario'] = name;
    button.addEventListener('click', () => {
      for (const b of buttons.querySelectorAll('button')) b.disabled = true;
      // Until the scenario's own transfer is on its way, a transfer from the form could take
      // the fault queued for it: Send waits that long (the scenario's send gives it back).
      $<HTMLButtonElement>('transfer-send').disabled = true;
      // The scenario follows this account's transfer and history: switching away could not help it.
      $<HTMLSelectElement>('account-select').disabled = true;
      $('error').hidden = true;
      result.dataset['scenario'] = name;
      result.dataset['outcome'] = 'running';
      result.textContent = `${scenario.label}: running…`;
      $('scenario-steps').replaceChildren();
      $('scenario-countdown').hidden = true;
      scenario
        .run(host)
        .then((outcome) => {
          result.dataset['outcome'] = outcome.asPredicted ? 'as-predicted' : 'unexpected';
          result.textContent = `${scenario.label}: ${outcome.text}`;
        })
        .catch((error: unknown) => {
          // A token that stopped working is not a verdict on the scenario: it asks to sign in again.
          if (isStaleToken(error)) {
            // Which one: a restarted server has a new admin token, a revoked customer has none.
            void staleTokenName(host).then((which) => {
              result.dataset['outcome'] = 'signed-out';
              result.textContent = `${scenario.label}: not run: ${which} no longer works; sign in again`;
            });
            showError(error);
            return;
          }
          result.dataset['outcome'] = 'error';
          result.textContent = `${scenario.label}: ${String(error)}`;
        })
        .finally(() => {
          for (const b of buttons.querySelectorAll('button')) b.disabled = false;
          $<HTMLSelectElement>('account-select').disabled = false;
          $<HTMLButtonElement>('transfer-send').disabled = false;
        });
    });
    buttons.append(button);
  }
}

/** Names the token that stopped working, by asking with each. */
async function staleTokenName(host: ScenarioHost): Promise<string> {
  const works = (token: string, path: string) => api(token, 'GET', path).then(() => true, () => false);
  if (!(await works(host.adminToken, '/admin/faults'))) return 'the admin token';
  if (!(await works(host.customerToken, '/me'))) return 'your customer token';
  return 'a token';
}

/** Pull down at the top of the history to refresh it (touch screens); the button does the same. */
function enablePullToRefresh(scroller: HTMLElement, refresh: () => Promise<void>): void {
  let startY: number | null = null;
  scroller.addEventListener('touchstart', (e) => {
    startY = scroller.scrollTop === 0 ? (e.touches[0]?.clientY ?? null) : null;
  }, { passive: true });
  scroller.addEventListener('touchend', (e) => {
    const endY = e.changedTouches[0]?.clientY;
    if (startY !== null && endY !== undefined && endY - startY > 60) void refresh();
    startY = null;
  });
}

function main(): void {
  const form = $<HTMLFormElement>('signin-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const admin = String(data.get('admin') ?? '').trim();
    const session = { customerToken: String(data.get('customer') ?? '').trim(), adminToken: admin === '' ? null : admin };
    signIn(session).catch((error: unknown) => {
      $('signin-error').textContent = error instanceof ApiError && error.status === 401 ? 'Unknown token.' : error instanceof ApiError && error.status === 403 ? 'That is not a customer token (or the admin token is wrong).' : String(error);
    });
  });
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (saved !== null) signIn(JSON.parse(saved) as Session).catch(() => sessionStorage.removeItem(STORAGE_KEY));
}

main();
