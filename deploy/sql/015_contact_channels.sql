-- Contact channels (issue 13): a township's or department's 24-hour duty room has its duty line
-- (duty_phone: a mobile gets SMS, a landline a voice call), optionally a duty mobile beside the
-- landline, and optionally a group robot (企业微信 / 钉钉 webhook, 钉钉 加签 secret).
-- The outbox sends on the recipients' channels (voice, wecom, dingtalk beside sms/webhook/console)
-- and records a recipient no channel reaches as an 'undeliverable' row (未送达) with the reason.
ALTER TABLE townships ADD COLUMN IF NOT EXISTS duty_mobile text,
    ADD COLUMN IF NOT EXISTS robot text CHECK (robot IN ('wecom', 'dingtalk')),
    ADD COLUMN IF NOT EXISTS robot_url text,
    ADD COLUMN IF NOT EXISTS robot_secret text;
ALTER TABLE departments ADD COLUMN IF NOT EXISTS duty_mobile text,
    ADD COLUMN IF NOT EXISTS robot text CHECK (robot IN ('wecom', 'dingtalk')),
    ADD COLUMN IF NOT EXISTS robot_url text,
    ADD COLUMN IF NOT EXISTS robot_secret text;

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('sms', 'webhook', 'console', 'voice', 'wecom', 'dingtalk'));
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'failed', 'suppressed', 'undeliverable'));
ALTER TABLE notification_attempts DROP CONSTRAINT IF EXISTS notification_attempts_outcome_check;
ALTER TABLE notification_attempts ADD CONSTRAINT notification_attempts_outcome_check
    CHECK (outcome IN ('sent', 'failed', 'retrying', 'rate_limited', 'delivered', 'undelivered',
                       'undeliverable'));
