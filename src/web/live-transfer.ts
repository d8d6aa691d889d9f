/// <reference lib="dom" />
/**
 * One transfer followed live: the transfer machine drawn with its current state
 * highlighted, and its journal beside it, both fed by GET /transfers/:id/stream.
 */
import { watchTransfer, type TransferJson, type TransferWatch, type TransitionJson } from './api.ts';
import { drawMachine, highlightState, type MachineConfig } from './statechart.ts';

export const isFinal = (state: string) => state === 'succeeded' || state === 'failed';

export type LiveElements = {
  chart: HTMLElement;
  journal: HTMLOListElement;
  state: HTMLElement;
  reason: HTMLElement;
};

let transferMachine: Promise<MachineConfig> | null = null;

/** The transfer machine's config, fetched once per page. */
export function transferMachineConfig(): Promise<MachineConfig> {
  transferMachine ??= fetch('/machines/transfer').then((r) => {
    if (!r.ok) throw new Error(`GET /machines/transfer answered ${r.status}`);
    return r.json() as Promise<MachineConfig>;
  });
  return transferMachine;
}

function journalItem(j: { at: string; event: string; from: string | null; to: string }): HTMLLIElement {
  const li = document.createElement('li');
  const time = document.createElement('time');
  time.dateTime = j.at;
  time.textContent = new Date(j.at).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hour12: false });
  const what = document.createElement('span');
  what.textContent = ` ${j.event}: ${j.from ?? '·'} → ${j.to}`;
  li.append(time, what);
  return li;
}

/**
 * Draws the chart, then follows the transfer until it settles. Resolves with the final
 * state and reason (the stream's word, or the snapshot's when it was already settled).
 */
/**
 * `shown()` says whether this transfer still owns the panel: a later send (or an account switch)
 * takes it, and this one is followed on to its end without writing into it.
 */
export async function followTransfer(id: string, token: string | null, els: LiveElements, onTransition?: (s: TransitionJson) => void, shown: () => boolean = () => true): Promise<{ state: string; reason: string | null }> {
  const svg = await drawMachine(await transferMachineConfig());
  if (shown()) {
    els.chart.replaceChildren(svg);
    els.journal.replaceChildren();
  }
  let state = '';
  let reason: string | null = null;
  const show = (s: string) => {
    state = s;
    if (!shown()) return;
    els.state.textContent = s;
    els.state.dataset['state'] = s;
    highlightState(svg, s);
    // The chart is drawn at 1:1 and may be wider than its box: bring the current state into view.
    const active = svg.querySelector('g.state.active');
    if (active !== null) {
      const box = active.getBoundingClientRect();
      const view = els.chart.getBoundingClientRect();
      els.chart.scrollLeft += box.left + box.width / 2 - (view.left + view.width / 2);
    }
  };
  return new Promise((resolve, reject) => {
    let watch: TransferWatch | null = null;
    watch = watchTransfer(id, token, {
      snapshot(t: TransferJson) {
        reason = t.reason;
        if (shown()) {
          els.journal.replaceChildren(...t.journal.map(journalItem));
          els.reason.textContent = t.reason ?? '';
        }
        show(t.state);
      },
      transition(s: TransitionJson) {
        onTransition?.(s);
        if (s.reason !== null) reason = s.reason;
        if (shown()) {
          els.journal.append(journalItem(s));
          if (s.reason !== null) els.reason.textContent = s.reason;
        }
        show(s.to);
      },
      end() {
        watch?.close();
        resolve({ state, reason });
      },
      failed(error) {
        watch?.close();
        reject(error);
      },
    });
  });
}
