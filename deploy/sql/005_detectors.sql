-- Detectors: the device-reported alarms/faults (DeviceEvent: 火警/故障/监管/屏蔽 on a panel
-- component, 困人/门锁回路故障 from an elevator box, gas sensor faults) as received, so the
-- detector can rebuild its state after a restart (a component shielded two hours ago is still
-- shielded) and the console can show the raw signal behind an event.
-- The primary key makes the writer idempotent: a replayed message inserts nothing.

CREATE TABLE IF NOT EXISTS device_events (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    code        text NOT NULL,
    component   text NOT NULL DEFAULT '',
    active      boolean NOT NULL,
    zone        text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, ts, code, component, active)
);
-- warm-up after restart reads the recent window across devices
CREATE INDEX IF NOT EXISTS device_events_ts ON device_events (ts DESC);
