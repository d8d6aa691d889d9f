-- Where each producer's relay has published up to, written in the same transaction as the
-- records it appended (Kafka's idempotent producer, in one table): the core's outbox needs
-- no second transaction to mark rows published, and a relay restarted after a crash carries
-- on from the last batch the log really holds.
CREATE TABLE producer_positions (
  producer TEXT PRIMARY KEY,
  position INTEGER NOT NULL CHECK (position >= 0)
) STRICT;
