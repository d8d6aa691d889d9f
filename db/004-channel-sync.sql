-- History sync (S8): the durable list of accounts whose history has a hole the channel is
-- repairing from the core.

-- One row per account with a hole: repair fetches the core's postings after the account's
-- last seq until the copy reaches at least target_seq. Written in the transaction that saw the gap.
CREATE TABLE sync_repairs (
  account_id INTEGER PRIMARY KEY,
  target_seq INTEGER NOT NULL CHECK (target_seq >= 1),
  noted_at INTEGER NOT NULL
) STRICT;
