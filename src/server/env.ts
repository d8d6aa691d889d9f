/**
 * The Hono environment every route shares: who is calling, and the bank it talks to.
 */
import type { Bank } from '../bank.ts';
import type { Customer } from '../channel/channel-store.ts';

export type Principal = { kind: 'admin' } | { kind: 'customer'; customer: Customer };

export type AppDeps = {
  bank: Bank;
  adminToken: string;
};

export type AppEnv = { Variables: { principal: Principal } };
