/**
 * The Hono environment every route shares: who is calling, and the bank it talks to.
 */
import type { Bank } from '../bank.ts';
import type { Customer } from '../channel/channel-store.ts';
import type { Logger } from '../lib/logger.ts';
import type { Metrics } from './metrics.ts';

export type Principal = { kind: 'admin' } | { kind: 'customer'; customer: Customer };

export type AppDeps = {
  bank: Bank;
  adminToken: string;
  /** Request lines and what the admin routes do; silent unless given. */
  logger?: Logger;
  /** GET /metrics and the HTTP request histogram; the route is absent without it. */
  metrics?: Metrics;
};

export type AppEnv = { Variables: { principal: Principal; requestId: string } };
