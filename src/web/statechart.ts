/// <reference lib="dom" />
/**
 * Draws a machine config (as GET /machines/:name serves it) as an SVG statechart: states as
 * boxes with their names as <text>, transitions as arrows labelled by event and guard, laid
 * out by elkjs in the page itself.
 */
import ELK from 'elkjs/lib/elk.bundled.js';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api';
import { DELAY_EVENT_NAMES } from '../machines/delay-names.ts';

export type MachineConfig = {
  id: string;
  initial?: string;
  states?: Record<string, StateConfig>;
};
type StateConfig = {
  type?: string;
  description?: string;
  on?: Record<string, TransitionConfig | TransitionConfig[]>;
  after?: Record<string, TransitionConfig | TransitionConfig[]>;
};
type TransitionConfig = string | { target?: string | string[]; guard?: string | { type: string }; actions?: unknown };

export type Edge = { from: string; to: string; labels: string[] };

const SVG = 'http://www.w3.org/2000/svg';
const CHAR_WIDTH = 7.2;
const LINE_HEIGHT = 15;
const INITIAL = '__initial';
/** Guards a page against a hostile or runaway definition. */
const MAX_STATES = 200;
const MAX_LABEL_LINES = 20;

const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** '#transfer.sent' or 'sent' names the state 'sent'; no target means a self-transition. */
function targetOf(t: TransitionConfig, from: string): string {
  const raw = typeof t === 'string' ? t : asArray(t.target)[0];
  if (raw === undefined) return from;
  const parts = raw.replace(/^#/, '').split('.');
  return parts[parts.length - 1] ?? from;
}

function labelOf(event: string, t: TransitionConfig): string {
  const guard = typeof t === 'string' ? undefined : t.guard;
  const guardName = guard === undefined ? '' : typeof guard === 'string' ? guard : guard.type;
  return guardName === '' ? event : `${event} [${guardName}]`;
}

/** Every transition of a flat machine, grouped by (from, to) so parallel arrows share one label. */
export function edgesOf(config: MachineConfig): Edge[] {
  const byPair = new Map<string, Edge>();
  const add = (from: string, to: string, label: string) => {
    const key = `${from}\u0000${to}`;
    const edge = byPair.get(key) ?? { from, to, labels: [] };
    if (!edge.labels.includes(label)) edge.labels.push(label);
    byPair.set(key, edge);
  };
  for (const [name, state] of Object.entries(config.states ?? {})) {
    for (const [event, ts] of Object.entries(state.on ?? {})) for (const t of asArray(ts)) add(name, targetOf(t, name), labelOf(event, t));
    // A delayed event by the journal's name for it (RESPONSE_TIMEOUT, not "after untilResponseDeadline").
    for (const [delay, ts] of Object.entries(state.after ?? {})) for (const t of asArray(ts)) add(name, targetOf(t, name), labelOf(DELAY_EVENT_NAMES[delay] ?? `after ${delay}`, t));
  }
  return [...byPair.values()];
}

const textWidth = (lines: string[]) => Math.max(...lines.map((l) => l.length), 1) * CHAR_WIDTH;

export async function layoutMachine(config: MachineConfig): Promise<ElkNode> {
  const names = Object.keys(config.states ?? {}).slice(0, MAX_STATES);
  const edges = edgesOf(config).filter((e) => names.includes(e.from) && names.includes(e.to));
  const children: ElkNode[] = names.map((name) => ({ id: name, width: textWidth([name]) + 40, height: 44 }));
  const elkEdges: ElkExtendedEdge[] = edges.map((e, i) => {
    const lines = e.labels.slice(0, MAX_LABEL_LINES);
    return { id: `e${i}`, sources: [e.from], targets: [e.to], labels: [{ id: `l${i}`, text: lines.join('\n'), width: textWidth(lines), height: lines.length * LINE_HEIGHT }] };
  });
  if (config.initial !== undefined && names.includes(config.initial)) {
    children.unshift({ id: INITIAL, width: 14, height: 14 });
    elkEdges.unshift({ id: 'e-initial', sources: [INITIAL], targets: [config.initial] });
  }
  const elk = new ELK();
  return elk.layout({
    id: config.id,
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '50',
      'elk.spacing.nodeNode': '40',
      'elk.spacing.edgeLabel': '4',
      'elk.padding': '[top=20,left=20,bottom=20,right=20]',
    },
    children,
    edges: elkEdges,
  });
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, parent?: Element): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  parent?.appendChild(node);
  return node;
}

/** The laid-out machine as an SVG element; each state is a <g class="state" data-state=name>. */
export function renderStatechart(config: MachineConfig, graph: ElkNode): SVGSVGElement {
  const width = graph.width ?? 100;
  const height = graph.height ?? 100;
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'statechart', role: 'img', 'aria-label': `the ${config.id} machine` });
  const defs = el('defs', {}, svg);
  const marker = el('marker', { id: `arrow-${config.id}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }, marker);

  for (const edge of (graph.edges ?? []) as ElkExtendedEdge[]) {
    const g = el('g', { class: 'transition' }, svg);
    for (const s of edge.sections ?? []) {
      const points = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint];
      el('path', { d: points.map((p, i) => `${i === 0 ? 'M' : 'L'} ${p.x} ${p.y}`).join(' '), 'marker-end': `url(#arrow-${config.id})` }, g);
    }
    for (const label of edge.labels ?? []) {
      const text = el('text', { x: label.x ?? 0, y: (label.y ?? 0) + LINE_HEIGHT - 4, class: 'transition-label' }, g);
      (label.text ?? '').split('\n').forEach((line, i) => {
        const span = el('tspan', { x: label.x ?? 0, dy: i === 0 ? 0 : LINE_HEIGHT }, text);
        span.textContent = line;
      });
    }
  }
  for (const node of graph.children ?? []) {
    const x = node.x ?? 0;
    const y = node.y ?? 0;
    const w = node.width ?? 0;
    const h = node.height ?? 0;
    if (node.id === INITIAL) {
      el('circle', { cx: x + w / 2, cy: y + h / 2, r: w / 2, class: 'initial' }, svg);
      continue;
    }
    const state = config.states?.[node.id];
    const g = el('g', { class: state?.type === 'final' ? 'state final' : 'state', 'data-state': node.id }, svg);
    if (state?.description !== undefined) el('title', {}, g).textContent = state.description;
    el('rect', { x, y, width: w, height: h, rx: 10 }, g);
    if (state?.type === 'final') el('rect', { x: x + 4, y: y + 4, width: w - 8, height: h - 8, rx: 7, class: 'inner' }, g);
    const text = el('text', { x: x + w / 2, y: y + h / 2 + 5, 'text-anchor': 'middle', class: 'state-name' }, g);
    text.textContent = node.id;
  }
  return svg;
}

/** Marks one state as the current one (and no other). */
export function highlightState(svg: SVGSVGElement, state: string | null): void {
  for (const g of svg.querySelectorAll('g.state')) g.classList.toggle('active', g.getAttribute('data-state') === state);
}

export async function drawMachine(config: MachineConfig): Promise<SVGSVGElement> {
  return renderStatechart(config, await layoutMachine(config));
}
