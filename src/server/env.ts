/**
 * The Hono environment every route shares: who is calling, and the bank it talks to.
 */
import type { Bank } from '../bank.ts';
import type { Customer } from '../channel/channel-store.ts';
import type { Logger } from '../lib/logger.ts';

export type Principal = { kind: 'admin' } | { kind: 'customer'; customer: Customer };

export type AppDeps = {
  bank: Bank;
  adminToken: string;
  /** Request lines and what the admin routes do; silent unless given. */
  logger?: Logger;
};

export type AppEnv = { Variables: { principal: Principal; requestId: string } };
