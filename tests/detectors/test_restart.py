"""kill -9 of the detector mid-stream, then a restart: no reading lost, no episode announced
twice, an ongoing alarm keeps its id and one that ended meanwhile is resolved under its id."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from det_kafka import consume_events, fetch, produce
from det_scenarios import Feed, Scenario, _batch, episodes, key_of, run_engine

from detectors.config import DetectorConfig
from hazmon.contracts import Sample
from hazmon.settings import Settings
from hazmon.topics import Topics

pytestmark = pytest.mark.fault

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def _stream(devices: int = 200, messages: int = 40, per: int = 5) -> list[Feed]:
    """Gas detectors, 5 readings per message 30 s apart. Devices 0–9 leak in the middle of the
    stream and recover; devices 10–14 start leaking and are still leaking at the end."""
    feeds = []
    for m in range(messages):
        for d in range(devices):
            dev = f"gas-{d:04d}"
            samples = []
            for j in range(per):
                k = m * per + j
                value = 2.0 + ((d * 7 + k * 3) % 10) / 10  # deterministic clean-air noise
                if d < 10 and 60 <= k < 140:
                    value = 55.0
                if 10 <= d < 15 and k >= 50:
                    value = 35.0
                samples.append(Sample(metric="gas_lel", value=value, unit="%LEL", ts=T0 + timedelta(seconds=30 * k)))
            at = samples[-1].ts + timedelta(seconds=1)
            feeds.append(Feed("readings", dev, _batch(dev, {}, samples, at), at))
    return feeds


def _expected(feeds: list[Feed]) -> dict:
    sc = Scenario("restart", Path("."), DetectorConfig(), {}, feeds, [], 64)
    _, events, _ = run_engine(sc)
    return episodes(events)


def _spawn(settings: Settings) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({
        "HAZMON_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
        "HAZMON_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "HAZMON_POSTGRES__DSN": settings.postgres.dsn,
        "HAZMON_DETECTORS_FILE": "/nonexistent/detectors.yaml",
    })
    return subprocess.Popen(
        [sys.executable, "-m", "hazmon.cli", "detect", "--group", "det-restart", "--max-records", "20",
         "--idle-exit", "4"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


async def test_kill_minus_nine_mid_stream(det_settings: Settings, topics: Topics, kafka_bootstrap: str,
                                          pg_dsn: str) -> None:
    feeds = _stream()
    want = _expected(feeds)
    assert any(e["state"] == "firing" for e in want.values()) and any(e["state"] == "resolved" for e in want.values())
    total = len(feeds) * 5
    await produce(kafka_bootstrap, topics, feeds)

    proc = _spawn(det_settings)
    try:
        deadline = time.monotonic() + 120
        stored = 0
        # kill once the leaks of devices 0–14 have started but before the 0–9 ones resolved
        while time.monotonic() < deadline:
            stored = (await fetch(pg_dsn, "SELECT count(*) FROM readings"))[0][0]
            firing = (await fetch(pg_dsn, "SELECT count(*) FROM events WHERE state = 'firing'"))[0][0]
            if stored >= total * 0.45 and firing:
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 0 < stored < total, "the kill must land mid-stream"
    before = {r["id"]: r["state"] for r in await fetch(pg_dsn, "SELECT id, state FROM events")}

    proc = _spawn(det_settings)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out.decode()[-2000:]

    n = (await fetch(pg_dsn, "SELECT count(*) FROM readings"))[0][0]
    assert n == total  # no reading lost (and none twice: the primary key)
    rows = await fetch(pg_dsn, "SELECT * FROM events")
    got = sorted((key_of({"kind": r["kind"], "device": r["device_id"], "component": r["component"],
                          "starts_at": r["starts_at"], "state": r["state"], "ends_at": r["ends_at"]}) for r in rows),
                 key=repr)
    assert got == sorted((key_of(e) for e in want.values()), key=repr)
    # episodes that were firing at the kill kept their id: either still firing, or resolved now
    assert set(before) <= {r["id"] for r in rows}
    topic_events = await consume_events(kafka_bootstrap, topics.events)
    assert {e.id for e in topic_events} == set(want)  # no episode announced under a second id
