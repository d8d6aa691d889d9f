/**
 * Identity: customers, their tokens (only a SHA-256 is stored) and which accounts they own,
 * with bounded in-memory caches so that most requests authenticate without a read.
 */
import { createHash } from 'node:crypto';
import { assert } from '../lib/assert.ts';
import type { GroupCommit } from '../lib/group-commit.ts';
import { randomToken, type RandomSource } from '../lib/ids.ts';
import type { ChannelAccount, ChannelStore, Customer } from './channel-store.ts';

/** Known tokens kept in memory, so that most requests authenticate without a read. */
export const TOKEN_CACHE_SIZE = 10_000;
/** Account owners kept in memory (the oldest entry goes first). */
export const OWNER_CACHE_SIZE = 100_000;

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export type IdentityDeps = {
  store: Pick<ChannelStore, 'createCustomer' | 'addToken' | 'removeTokensOf' | 'customer' | 'customerByTokenHash' | 'ensureAccount' | 'account' | 'setOwner' | 'accountsOf'>;
  batch: GroupCommit;
  now: () => number;
  random: RandomSource;
  /** After the commit that revoked a customer's tokens: open event streams signed with them end. */
  onRevoked: (customerId: number) => void;
};

export function createIdentity(deps: IdentityDeps) {
  const { store, batch } = deps;
  const tokenCache = new Map<string, Customer>();
  const ownerCache = new Map<number, number>();

  return {
    /** A new customer and their token, as one unit of the open batch. */
    createCustomer(name: string): { customer: Customer; token: string } {
      const token = randomToken(deps.random);
      const customer = batch.run(() => {
        const id = store.createCustomer(name, deps.now());
        store.addToken(hashToken(token), id);
        return { id, name };
      });
      return { customer, token };
    },
    /** Another token for an existing customer (shown once: only its hash is stored). */
    issueToken(customerId: number): string {
      const token = randomToken(deps.random);
      batch.run(() => store.addToken(hashToken(token), customerId));
      return token;
    },
    /**
     * Revokes every token of a customer. The cache forgets them in the same turn, before the
     * commit: no request authenticated after this call gets in with one, even from memory.
     */
    revokeTokens(customerId: number): number {
      const revoked = batch.run(() => store.removeTokensOf(customerId));
      for (const [hash, customer] of tokenCache) if (customer.id === customerId) tokenCache.delete(hash);
      batch.after(() => deps.onRevoked(customerId));
      return revoked;
    },
    /** Records that an account the core opened belongs to a customer. */
    registerAccount(customerId: number, accountId: number): void {
      batch.run(() => {
        store.ensureAccount(accountId);
        const owner = store.account(accountId)!.customerId;
        assert(owner === null || owner === customerId, `account ${accountId} already belongs to customer ${owner}`);
        store.setOwner(accountId, customerId);
      });
    },
    /**
     * Who owns an account: undefined for no such account, null for one no customer holds yet.
     * Owners are remembered: once an account has one, it never changes.
     */
    ownerOf(accountId: number): number | null | undefined {
      const known = ownerCache.get(accountId);
      if (known !== undefined) return known;
      const account = store.account(accountId);
      if (account === undefined || account.customerId === null) return account === undefined ? undefined : null;
      if (ownerCache.size >= OWNER_CACHE_SIZE) ownerCache.delete(ownerCache.keys().next().value!);
      ownerCache.set(accountId, account.customerId);
      return account.customerId;
    },
    /** The customer a token belongs to. Known tokens are remembered: a token never changes owner. */
    authenticate(token: string): Customer | undefined {
      const hash = hashToken(token);
      const known = tokenCache.get(hash);
      if (known !== undefined) {
        tokenCache.delete(hash); // least recently used goes first: move this one to the end
        tokenCache.set(hash, known);
        return known;
      }
      const customer = store.customerByTokenHash(hash);
      // Unknown tokens are not remembered, so a flood of them cannot push known ones out.
      if (customer === undefined) return undefined;
      if (tokenCache.size >= TOKEN_CACHE_SIZE) tokenCache.delete(tokenCache.keys().next().value!);
      tokenCache.set(hash, customer);
      return customer;
    },
    customer: (id: number) => store.customer(id),
    accountsOf: (customerId: number): ChannelAccount[] => store.accountsOf(customerId),
    account: (id: number): ChannelAccount | undefined => store.account(id),
  };
}

export type Identity = ReturnType<typeof createIdentity>;
