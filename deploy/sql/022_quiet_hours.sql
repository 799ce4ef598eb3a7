-- 夜间免扰 (alerting/quiet.py): a yellow or blue alarm's SMS and calls in quiet hours wait as
-- 'held' rows, due at the window's end, when the morning digest (alerting/digest.py) takes them
-- (one message per recipient) and marks them suppressed.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'failed', 'suppressed', 'undeliverable',
                      'held'));
CREATE INDEX IF NOT EXISTS notifications_held ON notifications (next_attempt_at) WHERE status = 'held';
-- the outcome SMS (alerting/outcome.py) looks for alarms closed since its last pass
CREATE INDEX IF NOT EXISTS alerts_closed_at ON alerts (closed_at) WHERE closed_at IS NOT NULL;
-- a held row's attempt row says which digest it went into
ALTER TABLE notification_attempts DROP CONSTRAINT IF EXISTS notification_attempts_outcome_check;
ALTER TABLE notification_attempts ADD CONSTRAINT notification_attempts_outcome_check
    CHECK (outcome IN ('sent', 'failed', 'retrying', 'rate_limited', 'delivered', 'undelivered',
                       'undeliverable', 'digested'));
