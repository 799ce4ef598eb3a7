-- The console's live board polls "alerts changed since" every board_poll_s (1 s) for every
-- open board (alerting/queries.py changed_since): without this index each poll read the whole
-- alerts table. The cost: updated_at changes on every update, so alert updates are no longer
-- HOT; the board's poll is the more frequent and grows with the table.
CREATE INDEX IF NOT EXISTS alerts_updated_at ON alerts (updated_at);
