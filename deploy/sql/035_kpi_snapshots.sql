-- Daily snapshots for the KPIs (issue 15): what a past period's coverage (安装全覆盖) and online
-- rate (在线全时段) are read from, so last month shows last month's state and not today's.
-- One set per China-time calendar day, taken by alerting's daily pass after the day ends (or by
-- `hazmon kpi snapshot --date` to backfill); a day already taken is never retaken (idempotent).
-- State is the device's presence at the day's end: online / offline (since: when it went
-- offline, NULL when unknown) / never_seen (no presence row: never heard from).
CREATE TABLE IF NOT EXISTS kpi_snapshot_days (
    day         date PRIMARY KEY,
    taken_at    timestamptz NOT NULL,
    source      text NOT NULL CHECK (source IN ('pass', 'backfill')),
    sites       integer NOT NULL,
    devices     integer NOT NULL
);

CREATE TABLE IF NOT EXISTS kpi_site_days (
    day                 date NOT NULL REFERENCES kpi_snapshot_days (day) ON DELETE CASCADE,
    site_id             text NOT NULL,
    township_id         text NOT NULL,
    industry            text NOT NULL DEFAULT '',
    gas_alarm_required  boolean NOT NULL,
    PRIMARY KEY (day, site_id)
);

CREATE TABLE IF NOT EXISTS kpi_device_days (
    day         date NOT NULL REFERENCES kpi_snapshot_days (day) ON DELETE CASCADE,
    device_id   text NOT NULL,
    site_id     text NOT NULL,
    domain      text NOT NULL,
    vendor_id   text NOT NULL,
    model       text NOT NULL DEFAULT '',
    state       text NOT NULL CHECK (state IN ('online', 'offline', 'never_seen')),
    since       timestamptz,
    PRIMARY KEY (day, device_id)
);
