-- Channel (transfer server): customers, tokens, transfers with their journal, the history copy.
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

-- Only a SHA-256 of each token is stored.
CREATE TABLE tokens (
  token_hash TEXT PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id)
) STRICT;

-- The channel's copy of every account the event log told it about.
CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER REFERENCES customers(id),
  balance_won INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX accounts_by_customer ON accounts (customer_id);

CREATE TABLE transfers (
  id TEXT PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  from_account_id INTEGER NOT NULL,
  to_account_id INTEGER NOT NULL,
  amount_won INTEGER NOT NULL CHECK (amount_won > 0),
  memo TEXT,
  state TEXT NOT NULL CHECK (state IN ('requested', 'sent', 'timedOut', 'querying', 'succeeded', 'failed')),
  reason TEXT,
  requested_at INTEGER NOT NULL,
  settled_at INTEGER,
  next_deadline_at INTEGER,
  snapshot TEXT NOT NULL,
  idempotency_key TEXT,
  body_hash TEXT,
  -- 1 while this transfer holds its account's one-in-flight lock (S3); 0 when S3 is switched off.
  holds_lock INTEGER NOT NULL DEFAULT 1
) STRICT;

-- S3: an account has at most one unfinished transfer, enforced here and not only in code.
CREATE UNIQUE INDEX one_unfinished_transfer_per_account ON transfers (from_account_id)
  WHERE holds_lock = 1 AND state IN ('requested', 'sent', 'timedOut', 'querying');
CREATE INDEX transfers_unfinished ON transfers (state)
  WHERE state IN ('requested', 'sent', 'timedOut', 'querying');
-- S7: one Idempotency-Key, one transfer, per customer.
CREATE UNIQUE INDEX transfers_by_idempotency_key ON transfers (customer_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE transfer_journal (
  transfer_id TEXT NOT NULL REFERENCES transfers(id),
  n INTEGER NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  PRIMARY KEY (transfer_id, n)
) STRICT, WITHOUT ROWID;

-- History rows keyed (account, seq): applying the same posting twice changes nothing.
CREATE TABLE history (
  account_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  amount_won INTEGER NOT NULL,
  balance_after_won INTEGER NOT NULL,
  kind TEXT NOT NULL,
  counterparty TEXT,
  memo TEXT,
  transfer_id TEXT,
  occurred_at INTEGER NOT NULL,
  PRIMARY KEY (account_id, seq)
) STRICT, WITHOUT ROWID;

-- Where the event-log consumer has read up to; committed with the rows it applied.
CREATE TABLE consumer_offsets (
  consumer TEXT PRIMARY KEY,
  next_offset INTEGER NOT NULL
) STRICT;
