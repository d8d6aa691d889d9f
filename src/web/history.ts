/// <reference lib="dom" />
/**
 * The history list: newest first, the next page loads when the bottom comes into view
 * (nextCursor), and refresh fetches what is newer (`since=<headCursor>`). Rows are keyed by
 * their seq, so a row can never appear twice.
 */
import { api, won, type Json } from './api.ts';

export type HistoryItem = {
  seq: number;
  amount: number;
  balanceAfter: number;
  kind: string;
  counterparty: string | null;
  memo: string | null;
  transferId: string | null;
  occurredAt: string;
};

export const PAGE_SIZE = 20;
const SINCE_PAGE_SIZE = 100;
/** Refresh stops after this many `since` pages and reloads from the top instead. */
const MAX_SINCE_PAGES = 10;

export class HistoryView {
  private readonly rows = new Map<number, HTMLLIElement>();
  private nextCursor: string | null = null;
  /** Null until the server hands one out (older servers do not): refresh then reloads the top. */
  private headCursor: string | null = null;
  private exhausted = false;
  private loading: Promise<void> | null = null;
  private readonly observer: IntersectionObserver;
  /** Set when another account's view takes the list: pages still on their way are dropped. */
  private disposed = false;

  constructor(
    private readonly token: string,
    private readonly accountId: number,
    private readonly scroller: HTMLElement,
    private readonly list: HTMLOListElement,
    private readonly sentinel: HTMLElement,
    private readonly endNote: HTMLElement,
    private readonly onError: (error: unknown) => void,
    /** After each page that loaded: the page clears an error banner on the next success. */
    private readonly onLoaded: () => void = () => {},
  ) {
    // An entry may be stale by the time it is delivered (it was taken while the list was still
    // empty, and the first page has landed since): the bottom is looked at again before loading.
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && this.sentinelInView()) void this.loadOlder();
    }, { root: scroller, rootMargin: '0px 0px 120px 0px' });
    this.observer.observe(sentinel);
  }

  dispose(): void {
    this.disposed = true;
    this.observer.disconnect();
  }

  seqs(): number[] {
    return [...this.rows.keys()];
  }

  private get path() {
    return `/accounts/${this.accountId}/transactions`;
  }

  /** Loads the next older page; keeps loading while the bottom is still in view. */
  loadOlder(): Promise<void> {
    if (this.loading !== null || this.exhausted) return this.loading ?? Promise.resolve();
    this.loading = (async () => {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (this.nextCursor !== null) query.set('cursor', this.nextCursor);
      const first = this.rows.size === 0;
      const { body } = await api(this.token, 'GET', `${this.path}?${query}`);
      if (this.disposed) return;
      if (first) this.headCursor = typeof body.headCursor === 'string' ? body.headCursor : null;
      for (const item of body.items as HistoryItem[]) this.place(item, 'bottom');
      this.nextCursor = body.nextCursor ?? null;
      this.exhausted = this.nextCursor === null;
      this.endNote.hidden = !this.exhausted;
      this.onLoaded();
    })()
      .catch((error: unknown) => {
        if (!this.disposed) this.onError(error);
      })
      .finally(() => {
        this.loading = null;
        if (!this.disposed && !this.exhausted && this.sentinelInView()) void this.loadOlder();
      });
    return this.loading;
  }

  /** Pull to refresh: rows newer than the newest one shown go on top. Rejects when it could not: the caller says so. */
  async refresh(): Promise<void> {
    await this.loading;
    if (this.disposed) return;
    if (this.headCursor === null || !(await this.refreshSince())) await this.refreshTop();
  }

  /** `since=<headCursor>`: rows newer than the cursor, oldest first. False if the server cannot. */
  private async refreshSince(): Promise<boolean> {
    for (let page = 0; page < MAX_SINCE_PAGES; page++) {
      const query = new URLSearchParams({ since: this.headCursor!, limit: String(SINCE_PAGE_SIZE) });
      const { body } = await api(this.token, 'GET', `${this.path}?${query}`);
      if (this.disposed) return true;
      if (!Array.isArray(body.items) || typeof body.hasMore !== 'boolean') return false;
      for (const item of body.items as HistoryItem[]) this.place(item, 'top');
      if (typeof body.headCursor === 'string') this.headCursor = body.headCursor;
      if (!body.hasMore) return true;
    }
    return false;
  }

  /** Without `since`: reload the first page and put what is new on top; a gap means start over. */
  private async refreshTop(): Promise<void> {
    const { body } = await api(this.token, 'GET', `${this.path}?limit=${PAGE_SIZE}`);
    if (this.disposed) return;
    const items = body.items as HistoryItem[];
    const newest = Math.max(0, ...this.rows.keys());
    const fresh = items.filter((i) => i.seq > newest);
    const oldestFresh = fresh[fresh.length - 1];
    if (fresh.length === items.length && oldestFresh !== undefined && newest > 0 && oldestFresh.seq > newest + 1) return this.reset(body);
    for (const item of fresh.reverse()) this.place(item, 'top');
    if (typeof body.headCursor === 'string') this.headCursor = body.headCursor;
  }

  private reset(firstPage: Json): void {
    this.rows.clear();
    this.list.replaceChildren();
    for (const item of firstPage.items as HistoryItem[]) this.place(item, 'bottom');
    this.headCursor = typeof firstPage.headCursor === 'string' ? firstPage.headCursor : null;
    this.nextCursor = firstPage.nextCursor ?? null;
    this.exhausted = this.nextCursor === null;
    this.endNote.hidden = !this.exhausted;
  }

  private sentinelInView(): boolean {
    const s = this.sentinel.getBoundingClientRect();
    const r = this.scroller.getBoundingClientRect();
    return s.top < r.bottom + 120 && s.bottom > r.top;
  }

  private place(item: HistoryItem, where: 'top' | 'bottom'): void {
    if (this.rows.has(item.seq)) return;
    const li = rowElement(item);
    this.rows.set(item.seq, li);
    if (where === 'top') this.list.prepend(li);
    else this.list.append(li);
  }
}

function rowElement(item: HistoryItem): HTMLLIElement {
  const li = document.createElement('li');
  li.className = `row ${item.amount >= 0 ? 'in' : 'out'}`;
  li.dataset['seq'] = String(item.seq);
  if (item.transferId !== null) li.dataset['transferId'] = item.transferId;
  const cells: [string, string][] = [
    ['when', new Date(item.occurredAt).toLocaleString('en-GB', { day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })],
    ['what', [kindLabel(item.kind), item.counterparty, item.memo].filter((x) => x !== null && x !== '').join(' · ')],
    ['amount', `${item.amount >= 0 ? '+' : ''}${won(item.amount)}`],
    ['after', `balance ${won(item.balanceAfter)}`],
  ];
  for (const [cls, text] of cells) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  return li;
}

function kindLabel(kind: string): string {
  return kind.replace(/[-_]/g, ' ');
}
