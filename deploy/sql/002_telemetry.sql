-- Telemetry: readings, device status and presence, events, dead letters.
-- Plain PostgreSQL tables; timescale/002_telemetry.sql turns them into hypertables when the
-- extension is present. Primary keys make every writer idempotent (replays insert nothing).

CREATE TABLE IF NOT EXISTS readings (
    device_id   text NOT NULL,
    metric      text NOT NULL,
    ts          timestamptz NOT NULL,
    value       double precision,
    unit        text NOT NULL DEFAULT '',
    seq         bigint,
    flags       text[] NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, metric, ts)
);
-- time-range scans across devices (continuous aggregate refresh, retention)
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts DESC);

-- Latest value per device and metric, upserted by the storage writer once per batch, so the
-- console's "latest reading per device" is a primary-key lookup, not a scan.
CREATE TABLE IF NOT EXISTS latest_readings (
    device_id   text NOT NULL,
    metric      text NOT NULL,
    ts          timestamptz NOT NULL,
    value       double precision,
    unit        text NOT NULL DEFAULT '',
    flags       text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (device_id, metric)
);

CREATE TABLE IF NOT EXISTS device_status (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    reason      text NOT NULL,
    state       text CHECK (state IN ('online', 'offline')),
    battery_pct double precision,
    signal_dbm  double precision,
    mains_power boolean,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, ts, reason)
);

-- Current presence per device (在线全时段): one row per device.
CREATE TABLE IF NOT EXISTS device_presence (
    device_id   text PRIMARY KEY,
    state       text NOT NULL CHECK (state IN ('online', 'offline')),
    since       timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    id          text PRIMARY KEY,              -- deterministic (device, kind, start)
    kind        text NOT NULL,
    domain      text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('red', 'orange', 'yellow', 'blue')),
    state       text NOT NULL CHECK (state IN ('firing', 'resolved')),
    device_id   text NOT NULL,
    site_id     text NOT NULL,
    component   text NOT NULL DEFAULT '',
    zone        text NOT NULL DEFAULT '',
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    detected_at timestamptz NOT NULL,
    summary     text NOT NULL DEFAULT '',
    evidence    jsonb NOT NULL DEFAULT '[]'::jsonb,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_site_time ON events (site_id, starts_at DESC);
CREATE INDEX IF NOT EXISTS events_device_time ON events (device_id, starts_at DESC);
CREATE INDEX IF NOT EXISTS events_firing ON events (starts_at DESC) WHERE state = 'firing';

CREATE TABLE IF NOT EXISTS deadletters (
    id          text PRIMARY KEY,
    stage       text NOT NULL,
    source      text NOT NULL,
    vendor      text NOT NULL DEFAULT '',
    device_id   text NOT NULL DEFAULT '',
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    raw         bytea NOT NULL DEFAULT ''::bytea,
    received_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletters_vendor_time ON deadletters (vendor, received_at DESC);

-- Per-device per-minute rollup. With TimescaleDB the timescale step replaces this view by a
-- continuous aggregate of the same name and columns, so queries do not change.
CREATE OR REPLACE VIEW readings_1m AS
SELECT device_id, metric, date_trunc('minute', ts) AS bucket,
       min(value) AS min_value, max(value) AS max_value, avg(value) AS avg_value, count(*) AS n
FROM readings
GROUP BY device_id, metric, date_trunc('minute', ts);
