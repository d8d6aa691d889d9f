-- Each history row also carries its API document, computed by SQLite from the row's own
-- columns when the row is written (a STORED generated column, so it can never disagree with
-- them). A page is then 20 short strings joined, not 160 values turned into objects and back
-- into JSON: turning rows into JSON was most of the cost of serving a page.
-- SQLite cannot add a STORED column to a table, so the table is rebuilt.
CREATE TABLE history_new (
  account_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  amount_won INTEGER NOT NULL,
  balance_after_won INTEGER NOT NULL,
  kind TEXT NOT NULL,
  counterparty TEXT,
  memo TEXT,
  transfer_id TEXT,
  occurred_at INTEGER NOT NULL CHECK (occurred_at >= 0),
  -- The shape of src/server/serialize.ts historyItemJson; test/server/history.test.ts keeps them equal.
  item_json TEXT NOT NULL GENERATED ALWAYS AS (json_object(
    'seq', seq,
    'amount', amount_won,
    'balanceAfter', balance_after_won,
    'kind', kind,
    'counterparty', counterparty,
    'memo', memo,
    'transferId', transfer_id,
    'occurredAt', strftime('%Y-%m-%dT%H:%M:%S.', occurred_at / 1000, 'unixepoch') || printf('%03dZ', occurred_at % 1000)
  )) STORED,
  PRIMARY KEY (account_id, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO history_new (account_id, seq, amount_won, balance_after_won, kind, counterparty, memo, transfer_id, occurred_at)
  SELECT account_id, seq, amount_won, balance_after_won, kind, counterparty, memo, transfer_id, occurred_at FROM history;
DROP TABLE history;
ALTER TABLE history_new RENAME TO history;
