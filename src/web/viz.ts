/// <reference lib="dom" />
/**
 * The machines page: GET /viz draws every machine the server lists; GET /viz/transfers/:id
 * draws the transfer machine with that transfer's state highlighted and its journal beside
 * it, live. The token is the scrollbank_token cookie (the server trades a `?access_token=` for it).
 */
import { followTransfer } from './live-transfer.ts';
import { drawMachine, type MachineConfig } from './statechart.ts';

type MachineSummary = { name: string; states: string[]; url: string };

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
  return response.json() as Promise<T>;
}

async function drawAll(root: HTMLElement): Promise<void> {
  const machines = await getJson<MachineSummary[]>('/machines');
  for (const m of machines) {
    const config = await getJson<MachineConfig>(m.url);
    const section = h('section', { class: 'card machine', 'data-machine': m.name });
    const title = h('h2', {}, m.name);
    const links = h('p', { class: 'hint' });
    links.append('Definition: ', h('a', { href: m.url }, 'JSON'), ' · ', h('a', { href: `${m.url}?format=code` }, 'code for the Stately editor'));
    const chart = h('div', { class: 'chart', tabindex: '0', role: 'region', 'aria-label': `the ${m.name} machine` });
    chart.append(await drawMachine(config));
    section.append(title, links, chart);
    root.append(section);
  }
  root.dataset['ready'] = 'true';
}

async function drawTransfer(root: HTMLElement, id: string): Promise<void> {
  const section = h('section', { class: 'card machine', 'data-machine': 'transfer' });
  const heading = h('h2', {}, `transfer ${id}: `);
  const state = h('strong', { id: 'live-state', 'aria-live': 'polite' });
  const reason = h('span', { id: 'live-reason', class: 'reason' });
  heading.append(state, ' ', reason);
  const body = h('div', { class: 'with-journal' });
  const chart = h('div', { id: 'live-chart', class: 'chart', tabindex: '0', role: 'region', 'aria-label': "the transfer machine, with this transfer's state highlighted" });
  const journal = h('ol', { id: 'live-journal', class: 'journal' });
  body.append(chart, journal);
  section.append(heading, body);
  root.append(section);
  root.dataset['ready'] = 'true';
  // The server traded any ?access_token= for the scrollbank_token cookie, which the stream takes.
  await followTransfer(id, null, { chart, journal, state, reason });
  root.dataset['settled'] = 'true';
}

function main(): void {
  const root = document.getElementById('viz')!;
  const match = /^\/viz\/transfers\/([^/]+)$/.exec(location.pathname);
  const work = match === null ? drawAll(root) : drawTransfer(root, decodeURIComponent(match[1]!));
  work.catch((error: unknown) => {
    const box = document.getElementById('error')!;
    box.textContent = String(error);
    box.hidden = false;
  });
}

main();
