-- The monitor watches itself (issue 20): the stages' heartbeats, the canaries' path, the
-- watchdog's state. Written by the stages themselves (hazmon/heartbeat.py), by alerting (the
-- canaries' arrivals) and by `hazmon watchdog`; read by the console's 监测系统运行状态 page, the
-- watchdog and alerting's own checks.

-- One row per running stage process, upserted every few seconds. stage: bridge, detect,
-- alerting, console, watchdog, canary. instance: the process's name (host:pid unless
-- configured). detail: what the stage says of itself (consumer lag, readings handled, last
-- error), shown on the console.
CREATE TABLE IF NOT EXISTS stage_heartbeats (
    stage       text        NOT NULL,
    instance    text        NOT NULL,
    started_at  timestamptz NOT NULL,
    beat_at     timestamptz NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (stage, instance)
);

-- One row per canary device (devices.is_canary): the last canary reading that reached
-- alerting, with the stamps it carried at each hop (published by the canary publisher,
-- bridged by ingest, detected by the detector, arrived at alerting). broken_since/broken_hop:
-- set while 监测链路中断 is raised for this family (the hop where it stopped, in the stages'
-- words: mqtt, bridge, kafka, detect, database, alerting), cleared with its 恢复 notice.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS is_canary boolean NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS canary_state (
    device_id     text        PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    family        text        NOT NULL,           -- the adapter family (vendors.adapter)
    seq           bigint      NOT NULL DEFAULT 0,
    published_at  timestamptz,
    bridged_at    timestamptz,
    bridge        text        NOT NULL DEFAULT '',  -- the bridge instance that carried it
    detected_at   timestamptz,
    arrived_at    timestamptz,
    broken_since  timestamptz,
    broken_hop    text        NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS canary_state_family ON canary_state (family);

-- The watchdog's own view, one row per watchdog instance: what it checked last and what it
-- found ('ok', 'degraded', 'down'), and the page it has out (if any). Alerting raises an alarm
-- when beat_at stops moving (stage_heartbeats row of stage 'watchdog').
CREATE TABLE IF NOT EXISTS watchdog_state (
    instance     text        PRIMARY KEY,
    checked_at   timestamptz NOT NULL,
    verdict      text        NOT NULL CHECK (verdict IN ('ok', 'degraded', 'down')),
    findings     jsonb       NOT NULL DEFAULT '[]'::jsonb,  -- [{"check": ..., "ok": bool, "detail": "..."}]
    paging_since timestamptz,
    paged_about  text        NOT NULL DEFAULT ''
);
