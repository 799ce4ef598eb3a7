-- Forms for what was API-only (issue 14 item 6).
--
-- 维保/测试 报备: a silence with a kind, filed by the centre or by a business / 维保单位 for its own
-- devices (alerting/report.py). ``notify_phone``: who is reminded when the window ends, with the
-- alarms the silence held; ``reminded_at``: when that reminder was queued (once per 报备).
ALTER TABLE silences ADD COLUMN IF NOT EXISTS report_kind text NOT NULL DEFAULT ''
    CHECK (report_kind IN ('', '维保', '测试'));
ALTER TABLE silences ADD COLUMN IF NOT EXISTS site_id text;
ALTER TABLE silences ADD COLUMN IF NOT EXISTS notify_name text NOT NULL DEFAULT '';
ALTER TABLE silences ADD COLUMN IF NOT EXISTS notify_phone text;
ALTER TABLE silences ADD COLUMN IF NOT EXISTS reminded_at timestamptz;
-- a 报备's own audit row (kind, site, devices, self-service) beside the silence's ``create``
ALTER TABLE silence_audit DROP CONSTRAINT IF EXISTS silence_audit_action_check;
ALTER TABLE silence_audit ADD CONSTRAINT silence_audit_action_check
    CHECK (action IN ('create', 'expire', 'update', 'report'));
CREATE INDEX IF NOT EXISTS silences_to_remind ON silences (ends_at)
    WHERE reminded_at IS NULL AND report_kind <> '';

-- 安全公益短信: draft → approval by another user → send. A broadcast sent by the CLI (before
-- this migration) is ``sent``; ``raw_body`` is what the author typed (``body`` the rendered text).
ALTER TABLE broadcasts ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'sent'
    CHECK (status IN ('draft', 'approved', 'rejected', 'sent'));
ALTER TABLE broadcasts ADD COLUMN IF NOT EXISTS raw_body text NOT NULL DEFAULT '';
ALTER TABLE broadcasts ADD COLUMN IF NOT EXISTS approved_by text;
ALTER TABLE broadcasts ADD COLUMN IF NOT EXISTS approved_at timestamptz;
ALTER TABLE broadcasts ADD COLUMN IF NOT EXISTS sent_by text;
ALTER TABLE broadcasts ADD COLUMN IF NOT EXISTS sent_at timestamptz;

CREATE TABLE IF NOT EXISTS broadcast_audit (
    id              bigserial PRIMARY KEY,
    broadcast_id    text NOT NULL,          -- no foreign key: a refused draft is audited too
    action          text NOT NULL,          -- draft, approve, reject, send, refused
    actor           text NOT NULL,
    at              timestamptz NOT NULL,
    reason          text NOT NULL DEFAULT '',
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS broadcast_audit_b ON broadcast_audit (broadcast_id, id);
