"""One bad message must not blind a district (issue 17): poison records in the middle of a
steady stream, through the real bridge (MQTT → Kafka) and the real detector (Kafka → PostgreSQL).

The poison, published by a vendor between good messages:

* a trapped-passenger event whose ``zone`` holds U+0000, one whose ``detail`` does;
* a reading whose metric name holds U+0000; a reading whose ``seq`` is 2⁶⁴−1 (beyond bigint);
* the same kinds of record produced straight to Kafka by a producer that skipped the contracts;
* a device event that passes every contract but that the database refuses (a rule the
  contracts do not know: this district's DBA limited ``device_events.zone`` to 16 characters).

Expected: every good reading and every alarm stored; each bad record in ``deadletters`` with its
reason (the database-refused one with the SQLSTATE and PostgreSQL's message); the detector still
running; the consumer group's offsets committed past everything (a restarted detector reads
nothing again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from detectors.service import DetectorService
from hazmon.settings import DetectorSettings, KafkaSettings, MqttSettings, PostgresSettings, Settings
from hazmon.topics import Topics
from ingest.bridge import Bridge
from ingest.directory import pg_loader
from ingest.mqtt import MqttClient
from sim.devices import register_fleet, synthetic_fleet
from sim.harness import wait_until

GROUP = "det-poison"
ROUNDS = 24
POISON_ROUND = 12


def _settings(mqtt: Any, kafka_bootstrap: str, topics: Topics, pg_dsn: str, root: str, tag: str, run_dir: Path) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topics.prefix, linger_ms=5),
        postgres=PostgresSettings(dsn=pg_dsn),
        mqtt=MqttSettings(host=mqtt.host, port=mqtt.port, username=mqtt.username, password=SecretStr(mqtt.password),
                          topic_root=root, shared_group=f"g{tag}", client_id=f"br{tag}", session_expiry_s=600,
                          presence_k=0),
        run_dir=run_dir,
        detectors_file=Path("/nonexistent/detectors.yaml"),  # built-in thresholds
    )


async def _committed_past_everything(bootstrap: str, topics: Topics) -> dict[str, int]:
    """Per topic: records not yet committed by the detector's group (0 = committed past all)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    await c.start()
    try:
        out: dict[str, int] = {}
        for topic in (topics.readings, topics.device_events):
            parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
            ends = await c.end_offsets(parts)
            behind = 0
            for tp in parts:
                done = await c.committed(tp) or 0
                behind += max(0, ends[tp] - done)  # (Tansu reports the end one short)
            out[topic] = behind
        return out
    finally:
        await c.stop()


async def test_poison_in_a_steady_stream_is_dead_lettered_and_the_district_stays_seen(
        mqtt_broker: Any, kafka_bootstrap: str, topics: Topics, pg_dsn: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    root = f"poison{tag}/v1"
    s = _settings(mqtt_broker, kafka_bootstrap, topics, pg_dsn, root, tag, tmp_path)
    fleet = synthetic_fleet(12, adapters=(("hazmon_json", "gas"), ("hazmon_json", "elevator")), prefix=f"P{tag[:4]}")
    gas = [d.device_id for d in fleet if d.domain == "gas"]
    elevators = [d.device_id for d in fleet if d.domain == "elevator"]
    vendor = fleet[0].vendor
    conn = await asyncpg.connect(pg_dsn)
    try:
        await register_fleet(conn, fleet)
        # a rule of this database the contracts do not know
        await conn.execute("ALTER TABLE device_events ADD CONSTRAINT zone_at_most_16 CHECK (char_length(zone) <= 16)")
    finally:
        await conn.close()

    bridge = Bridge(s, pg_loader(pg_dsn), instance="poison")
    bridge_task = asyncio.create_task(bridge.run())
    await asyncio.wait_for(bridge.ready.wait(), 30)
    detector = DetectorService(s, DetectorSettings(group_id=GROUP, poll_timeout_ms=100, presence_check_s=None,
                                                 registry_refresh_s=None))
    det_task = asyncio.create_task(detector.run())
    try:
        base = time.time() - 300.0
        good_readings: set[tuple[str, str, float]] = set()
        alarms: set[tuple[str, str]] = set()
        async with MqttClient(mqtt_broker.host, mqtt_broker.port, client_id=f"pub-{tag}",
                              username=mqtt_broker.username, password=mqtt_broker.password) as pub:

            async def send(device: str, kind: str, doc: Any) -> None:
                await pub.publish(f"{root}/{vendor}/{device}/{kind}", json.dumps(doc, ensure_ascii=True).encode(), 1)

            for r in range(ROUNDS):
                ts = round(base + r * 5.0, 3)
                for i, dev in enumerate(gas):
                    lel = 62.0 if (i == 0 and r >= 5) else 1.0 + i * 0.1
                    await send(dev, "telemetry", {"ts": ts, "seq": r, "values": {"gas_lel": lel, "battery_pct": 90}})
                    good_readings |= {(dev, "gas_lel", ts), (dev, "battery_pct", ts)}
                for dev in elevators:
                    await send(dev, "telemetry", {"ts": ts, "seq": r, "values": {"battery_pct": 80}})
                    good_readings.add((dev, "battery_pct", ts))
                if r == 4:  # real trapped-passenger alarms before the poison …
                    for dev in elevators[:2]:
                        await send(dev, "event", {"code": "trapped", "zone": "2号楼", "ts": ts})
                        alarms.add((dev, "elevator.trapped"))
                if r == POISON_ROUND:
                    await send(elevators[3], "event", {"code": "trapped", "zone": "3F\u0000东侧", "ts": ts})
                    await send(elevators[4], "event", {"code": "fault", "detail": {"note": "a\u0000b"}, "ts": ts})
                    await send(gas[3], "telemetry", {"ts": ts + 1, "values": {"gas\u0000lel": 1.0}})
                    await send(gas[4], "telemetry", {"ts": ts + 1, "seq": 2**64 - 1, "values": {"gas_lel": 1.0}})
                    await send(elevators[5], "event", {"code": "fault", "zone": "北区地下二层设备间东侧第三排电梯机房", "ts": ts})
                    await _produce_unchecked(kafka_bootstrap, topics, gas[5], elevators[5], ts + 2)
                if r == POISON_ROUND + 4:  # … and after it
                    for dev in elevators[2:3]:
                        await send(dev, "event", {"code": "trapped", "zone": "5号楼", "ts": ts})
                        alarms.add((dev, "elevator.trapped"))
        alarms.add((gas[0], "gas.high"))

        state: dict[str, Any] = {}

        async def all_stored() -> bool:
            c = await asyncpg.connect(pg_dsn)
            try:
                rows = await c.fetch("SELECT device_id, metric, ts FROM readings WHERE device_id = ANY($1::text[])",
                                     [d.device_id for d in fleet])
                state["readings"] = {(r[0], r[1], round(r[2].timestamp(), 3)) for r in rows}
                state["events"] = {(r[0], r[1]) for r in await c.fetch("SELECT device_id, kind FROM events")}
                state["dead"] = [dict(r) for r in await c.fetch(
                    "SELECT stage, device_id, reason, detail, source FROM deadletters ORDER BY device_id, reason")]
            finally:
                await c.close()
            return good_readings <= state["readings"] and alarms <= state["events"] and len(state["dead"]) >= 7

        try:
            await wait_until(all_stored, 90.0, 0.5, "good readings, alarms and dead letters stored")
        finally:
            print(f"\n[poison] detector task done={det_task.done()} "
                  f"{det_task.exception() if det_task.done() and not det_task.cancelled() else ''}")
            print(f"[poison] readings {len(state.get('readings', ()))}/{len(good_readings)} good, "
                  f"alarms {sorted(state.get('events', ()))}")
            for d in state.get("dead", []):
                print(f"[poison] dead letter {d['stage']} {d['device_id']} {d['reason']}: {d['detail'][:160]}")
        assert not det_task.done(), "the detector exited"
        assert good_readings <= state["readings"]
        assert alarms <= state["events"]
        dead = state["dead"]
        by_device: dict[str, list[dict[str, Any]]] = {}
        for d in dead:
            by_device.setdefault(d["device_id"], []).append(d)
        # the poison published over MQTT: refused at the edge, with what was wrong
        for dev in (elevators[3], elevators[4], gas[3], gas[4]):
            assert any(d["stage"] == "ingest" and d["reason"] == "schema" for d in by_device.get(dev, [])), (dev, dead)
        assert any("U+0000" in d["detail"] for d in by_device[elevators[3]])
        assert any("64-bit" in d["detail"] or "bigint" in d["detail"] for d in by_device[gas[4]])
        # the producer that skipped the contracts: refused by the detector's contracts
        assert any(d["stage"] == "detectors" and d["reason"] == "schema" for d in by_device.get(gas[5], [])), dead
        # passed every contract, refused by the database: its SQLSTATE and message
        refused = [d for d in by_device.get(elevators[5], []) if d["reason"] == "refused"]
        assert refused and len({d["source"] for d in refused}) == 1, dead
        assert "23514" in refused[0]["detail"] and "zone_at_most_16" in refused[0]["detail"], refused

        await wait_until(lambda: _all_zero(kafka_bootstrap, topics), 30.0, 0.5, "offsets committed past the poison")
    finally:
        detector.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(det_task, 30)
        bridge.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bridge_task, 30)

    # a restarted detector of the same group reads nothing again
    again = DetectorService(s, DetectorSettings(group_id=GROUP, poll_timeout_ms=100, idle_exit_s=3.0,
                                              presence_check_s=None, registry_refresh_s=None))
    stats = await asyncio.wait_for(again.run(), 60)
    assert stats.consumed == 0 and stats.deadletters == 0


async def _all_zero(bootstrap: str, topics: Topics) -> bool:
    behind = await _committed_past_everything(bootstrap, topics)
    return not any(behind.values())


async def _produce_unchecked(bootstrap: str, topics: Topics, gas_dev: str, elv_dev: str, ts: float) -> None:
    """Records a producer that skipped the contracts might write: they reach the detector as they are."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))
    batch = {"v": 1, "device_id": gas_dev, "site_id": "S-SIM", "domain": "gas", "vendor": "sim-hazmon-json",
             "received_at": iso, "source": "unchecked",
             "samples": [{"metric": "gas_lel", "value": 1.0, "ts": iso, "seq": 2**64 - 1}]}
    event = {"v": 1, "device_id": elv_dev, "site_id": "S-SIM", "domain": "elevator", "vendor": "sim-hazmon-json",
             "code": "fault", "zone": "机房\u0000", "ts": iso, "received_at": iso}
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(topics.readings, json.dumps(batch).encode(), key=gas_dev.encode())
        await prod.send_and_wait(topics.device_events, json.dumps(event).encode(), key=elv_dev.encode())
    finally:
        await prod.stop()
