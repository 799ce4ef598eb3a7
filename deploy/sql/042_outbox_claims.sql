-- Who is sending an outbox row (issue 22, alerting HA): two or more `hazmon alerting` instances
-- share one outbox and claim rows with FOR UPDATE SKIP LOCKED. A restarting instance used to put
-- every row left `sending` back to `pending` — including the rows a live peer was sending at that
-- moment, which the peer then marked sent and the restarted instance sent again. Now a row names
-- its claimer: a restarted instance frees only its own rows (alerting.instance names it) and,
-- like every instance, anyone's held past the claim lease (alerting/outbox.py OutboxPolicy).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS claimed_by text;
CREATE INDEX IF NOT EXISTS notifications_sending ON notifications (updated_at) WHERE status = 'sending';
