-- Alerting: 回复码 (ack codes) are six digits, so they must be unique among *open* alerts only;
-- a global UNIQUE would run out after years of alarms. A reply matches the open alert with
-- that code (alerting.lifecycle.acknowledge_by_code).
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_ack_code_key;
CREATE UNIQUE INDEX IF NOT EXISTS alerts_ack_code_open ON alerts (ack_code) WHERE phase <> 'closed';
CREATE INDEX IF NOT EXISTS alerts_ack_code ON alerts (ack_code);
