-- Alerting: acknowledgement per recipient (issue 13 item 6).
--
-- * alert_ack_grants.acked_at / acked_via: when and how (sms_reply, link) that recipient
--   acknowledged that alert — set on every grant of the number for the alert (the alarm, its
--   reminders, its notices), whether the acknowledgement was the alert's first or a colleague
--   had been first. The flush reads it: a reminder (alarm_repeat) is not sent again to a
--   recipient who acknowledged, nor — per the route's ``ack_stops`` — to the rest of their unit.
-- * a reply of 收到 / 确认 / 1 acknowledges the number's most recently sent open alert: the
--   index finds a number's grants newest first.

ALTER TABLE alert_ack_grants ADD COLUMN IF NOT EXISTS acked_at timestamptz;
ALTER TABLE alert_ack_grants ADD COLUMN IF NOT EXISTS acked_via text;
CREATE INDEX IF NOT EXISTS alert_ack_grants_phone_created ON alert_ack_grants (phone, created_at DESC);
CREATE INDEX IF NOT EXISTS alert_ack_grants_acked ON alert_ack_grants (alert_id) WHERE acked_at IS NOT NULL;
