"""The stage on the real broker and database: scenarios end to end, replays, bad input."""

from __future__ import annotations

from pathlib import Path

import msgspec
from det_kafka import consume_events, fetch, produce
from det_scenarios import SCENARIO_DIR, Feed, key_of, load

from detectors.decode import WireBatch
from detectors.service import DetectorService
from hazmon.catalog import METRICS
from hazmon.settings import DetectorSettings, Settings
from hazmon.topics import Topics

#: scenarios that share the default thresholds, run together through one consumer
E2E = ["gas/high_with_noise", "gas/bad_input", "elevator/trapped_and_motion", "elevator/codes_frequent_faults",
       "fire/panel_signals", "device/offline"]


def _combined() -> tuple[list[Feed], list[dict]]:
    feeds: list[Feed] = []
    expect: list[dict] = []
    for name in E2E:
        sc = load(SCENARIO_DIR / f"{name}.yaml")
        feeds.extend(sc.feeds)
        expect.extend(sc.expect)
    feeds.sort(key=lambda f: f.at)
    return feeds, expect


def _expected_reading_keys(feeds: list[Feed]) -> set[tuple]:
    keys = set()
    for f in feeds:
        if f.topic != "readings":
            continue
        try:
            b = msgspec.json.decode(f.value, type=WireBatch)
        except msgspec.DecodeError:
            continue
        if b.v != 1:
            continue
        for s in b.samples:
            spec = METRICS.get(s.metric)
            if spec and spec.domain in ("*", b.domain):
                keys.add((b.device_id, s.metric, s.ts))
    return keys


async def _run(settings: Settings, group: str) -> None:
    svc = DetectorService(settings, DetectorSettings(group_id=group, idle_exit_s=3.0, poll_timeout_ms=200))
    await svc.run()


def _episode_rows(rows) -> list[tuple]:
    return sorted(
        (key_of({"kind": r["kind"], "device": r["device_id"], "component": r["component"], "starts_at": r["starts_at"],
                 "state": r["state"], "ends_at": r["ends_at"]}) for r in rows),
        key=repr,
    )


async def test_scenarios_end_to_end_and_replay(det_settings: Settings, topics: Topics, kafka_bootstrap: str,
                                               pg_dsn: str) -> None:
    feeds, expect = _combined()
    await produce(kafka_bootstrap, topics, feeds)
    await _run(det_settings, "det-a")

    want = sorted((key_of(e) for e in expect), key=repr)
    rows = await fetch(pg_dsn, "SELECT * FROM events")
    assert _episode_rows(rows) == want
    readings = await fetch(pg_dsn, "SELECT device_id, metric, ts FROM readings")
    assert {(r[0], r[1], r[2]) for r in readings} == _expected_reading_keys(feeds)
    flagged = await fetch(pg_dsn, "SELECT flags FROM readings WHERE device_id = 'gas-4' AND flags <> '{}'")
    assert sorted(tuple(r[0]) for r in flagged) == [("not_finite",), ("out_of_range",), ("out_of_range",)]
    dead = await fetch(pg_dsn, "SELECT reason FROM deadletters WHERE stage = 'detectors'")
    assert sorted(r[0] for r in dead) == ["malformed", "unknown_metric", "unsupported_version"]
    latest = await fetch(pg_dsn, "SELECT ts, value FROM latest_readings WHERE device_id = 'gas-4' AND metric = 'gas_lel'")
    assert latest[0]["value"] == 58.0  # the 3-hours-late readings did not move it backwards
    presence = await fetch(pg_dsn, "SELECT device_id, state FROM device_presence WHERE device_id IN ('gas-7', 'elevator-9')")
    assert dict((r[0], r[1]) for r in presence) == {"gas-7": "online", "elevator-9": "offline"}
    events = await consume_events(kafka_bootstrap, topics.events)
    assert {e.id for e in events} == {r["id"] for r in rows}
    fire = [e for e in events if e.kind == "fire.alarm"]
    assert fire and fire[0].labels["panel"] == "fire-p1" and fire[0].severity.value == "red"

    # the same stream consumed again (a new group from offset 0, same database): no new rows
    # or events; what the topic gets again carries the same ids
    n_readings = len(readings)
    await _run(det_settings, "det-b")
    assert _episode_rows(await fetch(pg_dsn, "SELECT * FROM events")) == want
    assert len(await fetch(pg_dsn, "SELECT 1 FROM readings")) == n_readings
    assert len(await fetch(pg_dsn, "SELECT 1 FROM deadletters")) == 3
    again = await consume_events(kafka_bootstrap, topics.events)
    assert {e.id for e in again} == {r["id"] for r in rows}


async def test_fresh_state_replay_into_populated_database(det_settings: Settings, topics: Topics,
                                                          kafka_bootstrap: str, pg_dsn: str) -> None:
    """Stored twice from scratch (the second time through the COPY-conflict merge path)."""
    sc = load(SCENARIO_DIR / "gas/high_with_noise.yaml")
    await produce(kafka_bootstrap, topics, sc.feeds)
    await produce(kafka_bootstrap, topics, sc.feeds)  # every message delivered twice
    await _run(det_settings, "det-dup")
    rows = await fetch(pg_dsn, "SELECT * FROM events")
    assert _episode_rows(rows) == sorted((key_of(e) for e in sc.expect), key=repr)
    n = await fetch(pg_dsn, "SELECT count(*) FROM readings")
    assert n[0][0] == len(_expected_reading_keys(sc.feeds))


def test_scenario_dir_exists() -> None:
    assert Path(SCENARIO_DIR).is_dir()


async def test_registry_snapshot_feeds_device_facts(pg_dsn: str) -> None:
    import asyncpg

    from detectors.warmup import registry_meta

    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("""
            INSERT INTO domains (name, name_zh) VALUES ('fire', '消防') ON CONFLICT DO NOTHING;
            INSERT INTO townships (id, name) VALUES ('tw-1', '城关镇');
            INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES ('gst', 'GST', 'json', 'gst');
            INSERT INTO sites (id, name, township_id, site_class) VALUES ('hosp-1', '人民医院', 'tw-1', 'hospital');
            INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s)
                VALUES ('panel-1', 'gst', 'JB-QB', 'fire', 'hosp-1', 300);
            INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s, parent_id)
                VALUES ('smoke-1', 'gst', 'JTY-GD', 'fire', 'hosp-1', 600, 'panel-1');
        """)
        meta = await registry_meta(conn)
    finally:
        await conn.close()
    m = meta("smoke-1")
    assert m is not None
    assert (m.site_class, m.township, m.parent_id, m.model, m.expected_interval_s) == (
        "hospital", "tw-1", "panel-1", "JTY-GD", 600)
    assert meta("nope") is None
