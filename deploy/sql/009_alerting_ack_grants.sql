-- Alerting: acknowledgements that cannot be forged (issue 17).
--
-- * alert_ack_grants: what each SMS recipient of an alert may acknowledge it with — a 6-digit
--   回复码 of their own (valid only from their number, only while the alert is open) and a long
--   random link token (only its SHA-256 is kept here). One row per SMS notification; a
--   recipient keeps one code per alert across reminders and notices.
-- * inbound_audit: every refused (and every accepted) acknowledgement or callback: forged
--   signature, unknown code or token, non-recipient, closed alert, GET, rate-limited, oversized.
--   Numbers are stored masked (138****5678); the recipient is named by recipient_id.
-- * inbound_limits: fixed-window counters, incremented atomically (INSERT … ON CONFLICT DO
--   UPDATE … WHERE n < limit RETURNING), so concurrent guesses cannot race past a limit.
-- * acked_by / actor / sms_replies.phone held full numbers (sms_reply:<phone>): masked here.

CREATE TABLE IF NOT EXISTS alert_ack_grants (
    notification_id text PRIMARY KEY REFERENCES notifications(id) ON DELETE CASCADE,
    alert_id        text NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    recipient_id    text NOT NULL,            -- the matrix rule that chose the recipient, never a number
    recipient_role  text NOT NULL,
    recipient_name  text NOT NULL DEFAULT '',
    recipient_unit  text NOT NULL DEFAULT '',
    phone           text NOT NULL,            -- normalised mobile: replies are matched on it; shown masked only
    code            text NOT NULL CHECK (code ~ '^[0-9]{6}$'),
    token_hash      text NOT NULL UNIQUE,     -- hex SHA-256 of the link token
    created_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_ack_grants_phone_code ON alert_ack_grants (phone, code);
CREATE INDEX IF NOT EXISTS alert_ack_grants_code ON alert_ack_grants (code);
CREATE INDEX IF NOT EXISTS alert_ack_grants_alert ON alert_ack_grants (alert_id);

CREATE TABLE IF NOT EXISTS inbound_audit (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    channel       text NOT NULL CHECK (channel IN ('sms_reply', 'link', 'receipt')),
    provider      text NOT NULL DEFAULT '',
    outcome       text NOT NULL,      -- acknowledged, already_acknowledged, forged, unknown_code, unknown_token,
                                      -- non_recipient, closed_alert, get_no_ack, rate_limited, too_large, bad_request
    ip            text NOT NULL DEFAULT '',
    phone_masked  text NOT NULL DEFAULT '',
    recipient_id  text NOT NULL DEFAULT '',
    alert_id      text,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS inbound_audit_at ON inbound_audit (at DESC);
CREATE INDEX IF NOT EXISTS inbound_audit_alert ON inbound_audit (alert_id, id) WHERE alert_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS inbound_limits (
    key           text NOT NULL,
    window_start  timestamptz NOT NULL,
    n             integer NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX IF NOT EXISTS inbound_limits_window ON inbound_limits (window_start);

ALTER TABLE sms_replies ADD COLUMN IF NOT EXISTS recipient_id text NOT NULL DEFAULT '';

-- 13812345678 → 138****5678 wherever a full mainland mobile was written by the old code
UPDATE sms_replies SET phone = regexp_replace(phone, '(1[3-9][0-9])[0-9]{4}([0-9]{4})', '\1****\2', 'g')
 WHERE phone ~ '1[3-9][0-9]{9}';
UPDATE alerts SET acked_by = regexp_replace(acked_by, '(1[3-9][0-9])[0-9]{4}([0-9]{4})', '\1****\2', 'g')
 WHERE acked_by ~ '1[3-9][0-9]{9}';
UPDATE alert_transitions SET actor = regexp_replace(actor, '(1[3-9][0-9])[0-9]{4}([0-9]{4})', '\1****\2', 'g')
 WHERE actor ~ '1[3-9][0-9]{9}';
