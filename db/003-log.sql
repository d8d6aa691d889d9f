-- The event log (the talk's Kafka topic): append-only, totally ordered, offset-addressed.
CREATE TABLE records (
  log_offset INTEGER PRIMARY KEY,
  key INTEGER NOT NULL,
  record TEXT NOT NULL,
  appended_at INTEGER NOT NULL
) STRICT;
