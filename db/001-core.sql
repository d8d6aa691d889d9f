-- Core banking (the ledger): accounts, postings, decided requests, tombstones, the log outbox.
CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  holder_name TEXT NOT NULL,
  balance_won INTEGER NOT NULL CHECK (balance_won >= 0),
  last_seq INTEGER NOT NULL DEFAULT 0,
  opened_at INTEGER NOT NULL
) STRICT;

-- One row per line of an account's history; seq counts from 1 per account with no holes.
CREATE TABLE postings (
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  seq INTEGER NOT NULL CHECK (seq >= 1),
  amount_won INTEGER NOT NULL CHECK (amount_won <> 0),
  balance_after_won INTEGER NOT NULL CHECK (balance_after_won >= 0),
  kind TEXT NOT NULL CHECK (kind IN ('opening', 'deposit', 'transfer-out', 'transfer-in')),
  counterparty TEXT,
  memo TEXT,
  transfer_id TEXT,
  occurred_at INTEGER NOT NULL,
  PRIMARY KEY (account_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX postings_by_transfer ON postings (transfer_id) WHERE transfer_id IS NOT NULL;

-- Every request id the core decided, with its decision: a duplicate EXECUTE answers this.
CREATE TABLE decisions (
  request_id TEXT PRIMARY KEY,
  from_account_id INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('executed', 'rejected')),
  reason TEXT,
  requested_at INTEGER NOT NULL,
  decided_at INTEGER NOT NULL
) STRICT;
CREATE INDEX decisions_by_requested_at ON decisions (outcome, requested_at);

-- A "never seen" answer fences the request id: it can never execute afterwards (S6).
CREATE TABLE tombstones (
  request_id TEXT PRIMARY KEY,
  fenced_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tombstones_by_fenced_at ON tombstones (fenced_at);

-- Transactional outbox: log records commit with the decision, a relay publishes them.
CREATE TABLE log_outbox (
  id INTEGER PRIMARY KEY,
  record TEXT NOT NULL,
  published INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX log_outbox_unpublished ON log_outbox (id) WHERE published = 0;
