"""Issue 17 items 9 and 16 through to the database: the bridge (real mosquitto, Tansu) and the
detector service (real PostgreSQL) — a split batch, a too_large message, a retained publish and
a vendor over its rate in the middle of a steady stream: every good reading stored, every bad
message a row in ``deadletters`` with its reason."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from ingest_helpers import Env, KafkaReader
from test_ingest_limits import ADAPTERS, BIG_RECORDS, big_elevator_payload, settled, stream_around

from detectors.service import DetectorService
from hazmon.settings import DetectorSettings, IngestSettings

pytestmark = pytest.mark.timeout(240)


async def test_bad_and_greedy_messages_are_dead_letter_rows_and_the_stream_is_stored(ingest_env, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    env: Env = await ingest_env(12, adapters=ADAPTERS)
    env.settings = env.settings.model_copy(update={
        "ingest": IngestSettings(max_records_per_message=4, vendor_rate_per_s=50, vendor_burst=700),
        "detectors_file": Path("/nonexistent/detectors.yaml"),
    })
    root = env.settings.mqtt.topic_root
    gas = [d for d in env.devices if d.domain == "gas"]
    lift = next(d for d in env.devices if d.domain == "elevator")
    gateway = [{"device_id": d.device_id, "ts": time.time() - 5, "seq": 777_777, "values": {"gas_lel": 2.0}} for d in gas[:6]]
    big_topic = f"{root}/{lift.vendor}/{lift.device_id}/telemetry"
    gw_topic = f"{root}/{gas[0].vendor}/{gas[0].device_id}/telemetry"
    bridge = await env.start_bridge()
    # 600 gas messages: 700 tokens for the gas vendor → the stream passes, then a flood of 400 does not
    sim, t0 = await stream_around(env, [(big_topic, big_elevator_payload(lift.device_id)), (gw_topic, json.dumps(gateway).encode())], n=600)
    async with env.publisher() as pub:
        await pub.publish(f"{root}/{lift.vendor}/{lift.device_id}/event", b'{"code": "trapped", "active": true}', retain=True)
        flood = [pub.publish_nowait(gw_topic, json.dumps({"ts": time.time() - 3, "seq": 900_000 + i, "values": {"gas_lel": 1.0}}).encode())
                 for i in range(400)]
        await asyncio.gather(*flood)
        await pub.publish(f"{root}/{lift.vendor}/{lift.device_id}/event", b"", retain=True)  # clear the broker's copy
    await settled(bridge, 600 + 2 + 1 + 400)
    await env.stop_bridge(bridge)  # its watermark beats would keep the detector from going idle
    svc = DetectorService(env.settings, DetectorSettings(group_id="det-limits", idle_exit_s=3.0, poll_timeout_ms=200))
    await asyncio.wait_for(svc.run(), 120)
    conn = await asyncpg.connect(pg_dsn)
    try:
        # every reading the bridge put on Kafka is a row (the readings table is unique on device, metric, ts)
        async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
            await kr.until(lambda v: sum(len(x["samples"]) for x in v) >= bridge.stats.readings, timeout_s=30)
        on_kafka = {(x["device_id"], smp["metric"], datetime.fromisoformat(smp["ts"])) for x in kr.values for smp in x["samples"]}
        stored = {(r["device_id"], r["metric"], r["ts"]) for r in await conn.fetch("SELECT device_id, metric, ts FROM readings")}
        assert on_kafka == stored, (len(on_kafka), len(stored))
        stream = {(m.device_id, int(json.loads(m.payload)["readings"][0]["seq"])) for m in sim.messages(600, t0=t0, spacing_s=1.0)}
        assert stream <= {(x["device_id"], x["samples"][0].get("seq")) for x in kr.values}
        lift_metrics = {r["metric"] for r in await conn.fetch("SELECT DISTINCT metric FROM readings WHERE device_id = $1", lift.device_id)}
        assert len(lift_metrics) == 9, lift_metrics  # the split 2 MB batch (its 19,620 samples share one received time)
        assert not await conn.fetchval("SELECT count(*) FROM readings WHERE seq = 777777")  # the too_large gateway message
        rows = await conn.fetch("SELECT reason, vendor, source, detail FROM deadletters ORDER BY reason")
        by = {}
        for r in rows:
            by.setdefault(r["reason"], []).append(r)
        assert set(by) == {"too_large", "retained", "rate_limited"}, set(by)
        assert by["too_large"][0]["source"] == gw_topic and "6 records" in by["too_large"][0]["detail"]
        assert by["retained"][0]["vendor"] == lift.vendor
        stored_flood = len({x["samples"][0]["seq"] for x in kr.values if x["samples"][0].get("seq", 0) >= 900_000})
        shed = sum(int(r["detail"].split()[0]) for r in by["rate_limited"])
        assert stored_flood + shed == 400 and shed > 0, (stored_flood, shed)
    finally:
        await conn.close()
    assert BIG_RECORDS * 9 == 19_620
