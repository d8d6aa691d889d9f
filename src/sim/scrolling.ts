/**
 * Customers scrolling their history while it syncs: half through the real HTTP route
 * (createApp, app.request, signed cursors, pull to refresh with since), half straight from the
 * channel's store. Every page is checked: no row twice, none skipped, each the core's posting.
 */
import { createApp } from '../server/app.ts';
import type { SimRun } from './simulator.ts';
import type { SimCustomer } from './workload.ts';

/** Not a secret: the simulated bank's admin never calls. */
const SIM_ADMIN_TOKEN = 'simulator-admin-token-unused';

type Item = { seq: number; amount: number; balanceAfter: number; kind: string; transferId: string | null; memo: string | null };
type ScrollPage = { items: Item[]; nextCursor: string | null; headCursor: string | null };
type SincePage = { items: Item[]; headCursor: string; hasMore: boolean };

/** A scroll through HTTP: where it is, and what it still expects. */
type HttpScroll = {
  customer: SimCustomer;
  limit: number;
  pagesLeft: number;
  /** The seq just below the last page's oldest row (undefined before the first page). */
  dueBelow?: number;
  headCursor: string | null;
  headSeq: number;
};

export type Scrolling = { start(): void; active(): number; flush(): Promise<void> };

export function createScrolling(run: SimRun, customers: SimCustomer[]): Scrolling {
  const { bank, prng, time } = run;
  let active = 0;
  const calls = new Set<Promise<void>>();
  /** The last error the app caught: a channel that went down mid-call, or a bug (reported with the 500). */
  let unexpected: unknown = null;
  const app = createApp({ bank, adminToken: SIM_ADMIN_TOKEN, requestIdPrefix: 'sim', onUnexpectedError: (error) => void (unexpected = error) });

  const end = () => void active--;

  /** The page's rows are the core's postings for those seqs. */
  function matchCore(accountId: number, where: string, rows: { seq: number; amount: number; balanceAfter: number; kind: string; transferId: string | null }[]): void {
    if (!run.isUp('core')) return;
    const core = bank.core.readModel();
    for (const row of rows) {
      const p = core.postingsAfter(accountId, row.seq - 1, 1)[0];
      const same = p !== undefined && p.seq === row.seq && p.amountWon === row.amount && p.balanceAfterWon === row.balanceAfter && p.transferId === row.transferId && p.kind === row.kind;
      if (!same) run.report('invariant 6 (convergence)', `${where}: row seq ${row.seq} is not the core's posting`);
    }
  }

  /** Each row's seq is the one due: counting down (scrolling) or up (since) with no gap and no repeat. */
  function checkRun(where: string, seqs: number[], first: number | undefined, step: -1 | 1): void {
    seqs.forEach((seq, i) => {
      const due = i === 0 ? first : seqs[i - 1]! + step;
      if (due !== undefined && seq !== due) run.report('invariant 6 (convergence)', `${where}: row seq ${seq} where ${due} was due (a row missing or shown twice)`);
    });
  }

  /** Straight from the channel's store, the way the route reads it. */
  function scrollStore(customer: SimCustomer, pageSize: number, beforeSeq: number, pagesLeft: number): void {
    if (pagesLeft === 0 || !run.isUp('channel')) return end();
    const rows = bank.channel.pageHistoryBefore(customer.accountId, beforeSeq, pageSize);
    run.stats.pagesRead++;
    const where = `account ${customer.accountId} page before seq ${beforeSeq}`;
    const top = beforeSeq === Number.MAX_SAFE_INTEGER ? undefined : beforeSeq - 1;
    checkRun(where, rows.map((r) => r.seq), top, -1);
    if (rows.length === 0 && top !== undefined && top >= 1) run.report('invariant 6 (convergence)', `${where}: an empty page where seq ${top} was due`);
    matchCore(customer.accountId, where, rows.map((r) => ({ seq: r.seq, amount: r.amountWon, balanceAfter: r.balanceAfterWon, kind: r.kind, transferId: r.transferId })));
    const last = rows[rows.length - 1];
    if (last === undefined || last.seq === 1) return end();
    time.schedule(() => run.guard(() => scrollStore(customer, pageSize, last.seq, pagesLeft - 1)), prng.int(100, 2_000));
  }

  /**
   * One GET on the real app (Hono may answer inside the call when nothing in it awaits). A call
   * to a channel that is down, or that goes down under it, is tried again later, same cursor.
   */
  function get<T>(s: HttpScroll, query: string, onPage: (page: T) => void): void {
    const retry = () => time.schedule(() => get(s, query, onPage), prng.int(500, 3_000));
    if (!run.isUp('channel')) return void retry();
    const path = `/accounts/${s.customer.accountId}/transactions?${query}`;
    unexpected = null;
    const call = Promise.resolve(app.request(path, { headers: { authorization: `Bearer ${s.customer.token}` } }))
      .then(async (response): Promise<void> => {
        if (response.status === 200) {
          const page = (await response.json()) as T;
          if (!run.guard(() => onPage(page))) end();
          return;
        }
        if (!run.isUp('channel')) return void retry();
        run.report('http', `GET ${path} answered ${response.status}: ${await response.text()}${unexpected === null ? '' : ` (${String(unexpected)})`}`);
        end();
      })
      .finally(() => calls.delete(call));
    calls.add(call);
  }

  function scrollHttp(s: HttpScroll, cursor: string | null): void {
    if (s.pagesLeft === 0) return refresh(s);
    get<ScrollPage>(s, `limit=${s.limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, (page) => {
      run.stats.httpPages++;
      const where = `GET account ${s.customer.accountId} page ${cursor === null ? 'first' : `below seq ${s.dueBelow! + 1}`}`;
      const seqs = page.items.map((i) => i.seq);
      checkRun(where, seqs, s.dueBelow, -1);
      if (seqs.length === 0 && s.dueBelow !== undefined && s.dueBelow >= 1) run.report('invariant 6 (convergence)', `${where}: an empty page where seq ${s.dueBelow} was due`);
      matchCore(s.customer.accountId, where, page.items);
      if (cursor === null) {
        s.headCursor = page.headCursor;
        s.headSeq = seqs[0] ?? 0;
      }
      const oldest = seqs[seqs.length - 1];
      const more = oldest !== undefined && oldest > 1 && seqs.length === s.limit;
      if ((page.nextCursor !== null) !== more) run.report('http', `${where}: nextCursor ${page.nextCursor === null ? 'missing' : 'present'} with ${seqs.length} rows down to seq ${oldest}`);
      s.pagesLeft--;
      if (page.nextCursor === null) s.pagesLeft = 0;
      s.dueBelow = oldest === undefined ? s.dueBelow : oldest - 1;
      time.schedule(() => run.guard(() => scrollHttp(s, page.nextCursor)), prng.int(100, 2_000));
    });
  }

  /** Pull to refresh from the first page's head: what landed since, oldest first, until caught up. */
  function refresh(s: HttpScroll): void {
    if (s.headCursor === null) return end();
    get<SincePage>(s, `since=${encodeURIComponent(s.headCursor)}&limit=${s.limit}`, (page) => {
      run.stats.httpPages++;
      const where = `GET account ${s.customer.accountId} since seq ${s.headSeq}`;
      const seqs = page.items.map((i) => i.seq);
      checkRun(where, seqs, s.headSeq + 1, 1);
      matchCore(s.customer.accountId, where, page.items);
      s.headCursor = page.headCursor;
      s.headSeq = seqs[seqs.length - 1] ?? s.headSeq;
      if (!page.hasMore) return end();
      time.schedule(() => run.guard(() => refresh(s)), prng.int(100, 1_000));
    });
  }

  return {
    start(): void {
      active++;
      const customer = prng.pick(customers);
      const limit = prng.int(1, 20);
      const pages = prng.int(1, 6);
      if (prng.chance(0.5)) return scrollStore(customer, limit, Number.MAX_SAFE_INTEGER, pages);
      scrollHttp({ customer, limit, pagesLeft: pages, headCursor: null, headSeq: 0 }, null);
    },
    active: () => active,
    /**
     * Lets the calls in flight finish. An answer waits for the commit of what it shows, and that
     * commit is armed on virtual time: what is due now runs between turns, time does not move.
     */
    async flush(): Promise<void> {
      for (let turns = 0; calls.size > 0; turns++) {
        if (turns > 100_000) throw new Error('an HTTP call that never finishes');
        await Promise.race([Promise.all([...calls]), new Promise((r) => setImmediate(r))]);
        if (calls.size > 0) run.advance(0);
      }
    },
  };
}
