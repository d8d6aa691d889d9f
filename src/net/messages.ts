/**
 * What crosses between core banking and the channel: link requests and answers,
 * and event-log records. Neither side imports the other; both import these types.
 */

export type PostingKind = 'opening' | 'deposit' | 'transfer-out' | 'transfer-in';

/** One line of an account's history, as the core wrote it. `seq` counts from 1 per account. */
export type Posting = {
  accountId: number;
  seq: number;
  amountWon: number; // signed: negative for money out
  balanceAfterWon: number;
  kind: PostingKind;
  counterparty: string | null;
  memo: string | null;
  transferId: string | null;
  occurredAt: number;
};

/** Why the core refused a request: a closed union. */
export type RejectReason =
  | 'past-cutoff'
  | 'future-dated'
  | 'fenced'
  | 'insufficient-funds'
  | 'unknown-account'
  | 'same-account'
  | 'invalid-amount';

/** What the channel asks of a transfer request. The request id is the transfer id. */
export type ExecuteRequest = {
  requestId: string;
  fromAccountId: number;
  toAccountId: number;
  amountWon: number;
  memo: string | null;
  requestedAt: number;
};

export type Decision =
  | { kind: 'executed'; postings: { from: Posting; to: Posting } }
  | { kind: 'rejected'; reason: RejectReason };

export type QueryAnswer = Decision | { kind: 'not-found' };

/**
 * Channel -> core. EXECUTE and QUERY name the last seq the channel's copy holds for the
 * sender's account, so that an executed answer can bring the rows before the sender's posting
 * that the copy still lacks: read your writes holds even while the log is behind.
 */
export type LinkRequest =
  | { type: 'execute'; request: ExecuteRequest; senderKnownSeq: number }
  | { type: 'query'; requestId: string; senderKnownSeq: number }
  | { type: 'postings-after'; accountId: number; afterSeq: number; limit: number }
  | { type: 'account-summaries'; afterAccountId: number; limit: number };

/** What reconciliation compares: the core's postings of an account are seq 1..lastSeq, no holes. */
export type AccountSummary = { accountId: number; lastSeq: number; balanceWon: number };

/** Core -> channel. */
export type LinkResponse =
  | { type: 'execute-answer'; requestId: string; decision: Decision; senderCatchUp: Posting[] }
  | { type: 'query-answer'; requestId: string; answer: QueryAnswer; senderCatchUp: Posting[] }
  | { type: 'postings'; accountId: number; afterSeq: number; postings: Posting[]; lastSeq: number }
  | { type: 'account-summaries'; afterAccountId: number; summaries: AccountSummary[]; done: boolean };

/** Whether a link message belongs to the transfer protocol or to history sync. */
export function messageKind(m: LinkRequest | LinkResponse): 'transfers' | 'sync' {
  switch (m.type) {
    case 'execute':
    case 'query':
    case 'execute-answer':
    case 'query-answer':
      return 'transfers';
    case 'postings-after':
    case 'postings':
    case 'account-summaries':
      return 'sync';
  }
}

/** One event-log record, keyed by account so per-account order holds. */
export type LogRecord =
  | { type: 'posting'; posting: Posting }
  /** senderSeq: the seq of the sender's posting when executed, so the channel knows what its history must hold first. */
  | { type: 'decision'; requestId: string; fromAccountId: number; outcome: 'executed' | 'rejected'; reason: RejectReason | null; senderSeq?: number }
  | { type: 'account-opened'; accountId: number; holderName: string; openedAt: number }
  /**
   * An EXECUTE that came after its id was decided (a late copy) or fenced (the talk's late
   * request): it changed nothing, and the channel keeps it on the transfer as an audit entry.
   */
  | { type: 'late-request-refused'; requestId: string; fromAccountId: number; reason: LateRefusalReason; at: number };

export type LateRefusalReason = 'already-decided' | 'fenced';

export function logKey(record: LogRecord): number {
  switch (record.type) {
    case 'posting':
      return record.posting.accountId;
    case 'decision':
      return record.fromAccountId;
    case 'account-opened':
      return record.accountId;
    case 'late-request-refused':
      return record.fromAccountId;
  }
}
