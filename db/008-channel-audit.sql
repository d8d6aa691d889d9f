-- What happened to a transfer without changing its state: the core refusing a late copy of
-- its request (already decided, or fenced). Keyed by what the record says, so the log's
-- redelivery of the same record adds nothing.
CREATE TABLE transfer_audit (
  transfer_id TEXT NOT NULL REFERENCES transfers(id),
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (transfer_id, at, event, reason)
) STRICT, WITHOUT ROWID;
