-- Transfers as durable actors: the row is the actor. Its next deadline and the event that
-- deadline delivers live beside the snapshot, and one partial index over them is the deadline
-- index: the earliest due row wakes one timer, whatever the number of waiting transfers.
ALTER TABLE transfers ADD COLUMN deadline_event TEXT;
-- The journal's next entry number, kept on the row so that appending needs no MAX() scan.
ALTER TABLE transfers ADD COLUMN journal_length INTEGER NOT NULL DEFAULT 0;
UPDATE transfers SET journal_length = (SELECT COUNT(*) FROM transfer_journal j WHERE j.transfer_id = transfers.id);
-- A requested row never sent (a crash between its commit and its dispatch) is due at once.
UPDATE transfers SET next_deadline_at = requested_at, deadline_event = 'RESUME' WHERE state = 'requested';
UPDATE transfers SET deadline_event = CASE state
    WHEN 'sent' THEN 'xstate.after.untilResponseDeadline.transfer.sent'
    WHEN 'timedOut' THEN 'xstate.after.untilNextQuery.transfer.timedOut'
    WHEN 'querying' THEN 'xstate.after.untilQueryDeadline.transfer.querying'
  END
  WHERE state IN ('sent', 'timedOut', 'querying') AND next_deadline_at IS NOT NULL;
UPDATE transfers SET next_deadline_at = NULL, deadline_event = NULL WHERE state IN ('succeeded', 'failed');
CREATE INDEX transfers_by_deadline ON transfers (next_deadline_at) WHERE next_deadline_at IS NOT NULL;
