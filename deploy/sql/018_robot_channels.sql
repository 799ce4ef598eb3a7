-- Group robots (issue 13): notifications on channel 'wecom' (企业微信 群机器人) and 'dingtalk'
-- (钉钉 自定义机器人, 加签) beside a unit's duty phone. The channel list is the one
-- 015_contact_channels and 017_voice_calls state, restated so this file stands alone; a channel
-- added later comes with a later migration that states the whole list again.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('sms', 'webhook', 'console', 'voice', 'wecom', 'dingtalk'));
