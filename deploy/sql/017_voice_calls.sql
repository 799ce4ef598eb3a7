-- Voice calls (语音通知, issue 13): notifications on channel 'voice' (a TTS call; the same
-- channel list as 015_contact_channels, restated so this file stands alone), and "按1确认" — a
-- callee pressing 1 in a call — audited in inbound_audit as channel 'voice_key'.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('sms', 'webhook', 'console', 'voice', 'wecom', 'dingtalk'));
ALTER TABLE inbound_audit DROP CONSTRAINT IF EXISTS inbound_audit_channel_check;
ALTER TABLE inbound_audit ADD CONSTRAINT inbound_audit_channel_check
    CHECK (channel IN ('sms_reply', 'link', 'receipt', 'alertmanager', 'voice_key'));
-- the voice escalation looks for given-up calls of open alerts
CREATE INDEX IF NOT EXISTS notifications_voice_failed ON notifications (alert_id)
    WHERE channel = 'voice' AND status = 'failed';
