-- The Alertmanager-compatible endpoint (POST /api/v2/alerts, issue 20): Prometheus's alerts are
-- authenticated by a bearer token; a refused request (forged token, replayed/stale alerts,
-- oversized, bad JSON) is audited in inbound_audit like a refused SMS callback, channel
-- 'alertmanager'.
ALTER TABLE inbound_audit DROP CONSTRAINT IF EXISTS inbound_audit_channel_check;
ALTER TABLE inbound_audit ADD CONSTRAINT inbound_audit_channel_check
    CHECK (channel IN ('sms_reply', 'link', 'receipt', 'alertmanager'));
