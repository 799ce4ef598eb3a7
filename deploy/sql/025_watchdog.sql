-- The out-of-band watchdog (`hazmon watchdog`, issue 20 item 2) reads, every poll (5 s), the SMS
-- attempts of the last sms_window_s (10 min) to see whether the provider fails every request
-- (hazwatch/checks.py): without this index each poll read the whole notification_attempts
-- table, which grows by one row per send. The outbox's overdue rows are found by the existing
-- notifications_due index.
CREATE INDEX IF NOT EXISTS notification_attempts_at ON notification_attempts (at);
