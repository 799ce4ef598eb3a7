"""Presence end to end on the real services: two bridges on one MQTT shared subscription
(round-robin in mosquitto: each sees part of every device's traffic) → Tansu → the detector,
which judges presence because it sees all of a device's traffic (docs/detectors.md, Presence).

Devices report every 2 s (registry interval), so k = 3 makes them silent after 6 s."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from ingest_helpers import REPO, Env, KafkaReader, settings_env

from detectors.service import DetectorService
from hazmon.settings import DetectorSettings
from ingest.mqtt import MqttClient, Will
from sim.devices import SimDevice, register_fleet

pytestmark = pytest.mark.timeout(240)

INTERVAL_S = 2  # registry expected interval; k = 3 (data/detectors.yaml default) → 6 s


async def _register(env: Env, pg_dsn: str, names: dict[str, int]) -> dict[str, SimDevice]:
    base = env.devices[0]
    devs = {n: SimDevice(f"{n}-{uuid.uuid4().hex[:6]}", base.vendor, base.adapter, base.domain, iv) for n, iv in names.items()}
    conn = await asyncpg.connect(pg_dsn)
    try:
        await register_fleet(conn, list(devs.values()))
    finally:
        await conn.close()
    return devs


class Talker:
    """Publishes for some devices every ``every_s`` while they are switched on."""

    def __init__(self, env: Env, every_s: float = 0.4) -> None:
        self.env, self.every_s = env, every_s
        self.on: dict[SimDevice, bytes] = {}  # device → payload
        self.kind: dict[SimDevice, str] = {}
        self.sent: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def talk(self, dev: SimDevice, kind: str = "telemetry", payload: bytes = b'{"values": {"gas_lel": 1.5}}') -> None:
        self.on[dev], self.kind[dev] = payload, kind

    def hush(self, dev: SimDevice) -> None:
        self.on.pop(dev, None)

    async def _run(self) -> None:
        root = self.env.settings.mqtt.topic_root
        async with self.env.publisher() as pub:
            while True:
                for dev, payload in list(self.on.items()):
                    await pub.publish(f"{root}/{dev.vendor}/{dev.device_id}/{self.kind[dev]}", payload)
                    self.sent[dev.device_id] = self.sent.get(dev.device_id, 0) + 1
                await asyncio.sleep(self.every_s)

    def __enter__(self) -> Talker:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


@contextlib.asynccontextmanager
async def detector(env: Env, group: str, registry_refresh_s: float | None = 60.0) -> AsyncIterator[DetectorService]:
    svc = DetectorService(env.settings, DetectorSettings(group_id=group, poll_timeout_ms=100, presence_check_s=0.3,
                                                       presence_margin_s=0.3, registry_refresh_s=registry_refresh_s))
    task = asyncio.create_task(svc.run())
    try:
        yield svc
    finally:
        svc.stop()
        await asyncio.wait_for(task, 30)


async def offline_rows(dsn: str, device_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT id, state, starts_at, ends_at, summary FROM events "
                                "WHERE kind = 'device.offline' AND device_id = $1 ORDER BY starts_at", device_id)
    finally:
        await conn.close()


async def presence_of(dsn: str, *device_ids: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT device_id, state FROM device_presence WHERE device_id = ANY($1::text[])", list(device_ids))
    finally:
        await conn.close()
    return {r[0]: r[1] for r in rows}


async def wait_for(pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await pred():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def offline_on_topic(values: list[dict[str, Any]], device_id: str) -> list[tuple[str, str]]:
    return [(v["id"], v["state"]) for v in values if v["kind"] == "device.offline" and v["device_id"] == device_id]


async def test_two_bridges_detector_judges_presence(ingest_env, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(1)
    devs = await _register(env, pg_dsn, {"STEADY": INTERVAL_S, "SILENT": INTERVAL_S, "HB": INTERVAL_S, "LWT": 600})
    steady, silent, hb, lwt = devs["STEADY"], devs["SILENT"], devs["HB"], devs["LWT"]
    b1 = await env.start_bridge("one")
    b2 = await env.start_bridge("two")
    root = env.settings.mqtt.topic_root
    async with detector(env, f"det-{uuid.uuid4().hex[:6]}"):
        with Talker(env) as talker:
            talker.talk(steady)
            talker.talk(silent)
            talker.talk(hb, "status", b'{"heartbeat": true}')
            # a device with a Last Will that dies without DISCONNECT (keepalive 2 s → the broker
            # publishes the will within ~3 s)
            dev = MqttClient(env.mqtt.host, env.mqtt.port, client_id=f"dev-{lwt.device_id}", username=env.admin[0],
                             password=env.admin[1], keepalive=2, will=Will(f"{root}/{lwt.vendor}/{lwt.device_id}/status", b"offline"))
            await dev.connect()
            await dev.publish(f"{root}/{lwt.vendor}/{lwt.device_id}/telemetry", b'{"values": {"gas_lel": 1.0}}')
            await asyncio.sleep(4.0)
            talker.hush(silent)
            dev._client.socket().shutdown(socket.SHUT_RDWR)

            async def lwt_fired() -> bool:
                return bool(await offline_rows(pg_dsn, lwt.device_id))
            await wait_for(lwt_fired, 30, "the Last Will's offline event")
            (lw,) = await offline_rows(pg_dsn, lwt.device_id)
            assert lw["state"] == "firing" and "遗嘱" in lw["summary"]  # at once, not after 3 × 600 s

            async def silent_fired() -> bool:
                return bool(await offline_rows(pg_dsn, silent.device_id))
            await wait_for(silent_fired, 30, "the silent device's offline event")
            await asyncio.sleep(4.0)  # more checks during the outage: still one episode
            talker.talk(silent)

            async def silent_resolved() -> bool:
                rows = await offline_rows(pg_dsn, silent.device_id)
                return bool(rows) and rows[-1]["state"] == "resolved"
            await wait_for(silent_resolved, 30, "the silent device's resolution")
            await asyncio.sleep(3.0)  # steady and heartbeat-only devices keep going past several windows
        await dev.disconnect()
        await asyncio.sleep(1.0)
    # both bridges carried each device's traffic: neither saw all of it
    assert b1.stats.received > 20 and b2.stats.received > 20, (b1.stats, b2.stats)
    (ep,) = await offline_rows(pg_dsn, silent.device_id)
    assert ep["state"] == "resolved" and ep["ends_at"] > ep["starts_at"]
    assert await offline_rows(pg_dsn, steady.device_id) == []
    assert await offline_rows(pg_dsn, hb.device_id) == []
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.events) as er:
        await er.until(lambda v: len(offline_on_topic(v, silent.device_id)) >= 2, timeout_s=30)
        await er.poll(1000)
    assert offline_on_topic(er.values, silent.device_id) == [(ep["id"], "firing"), (ep["id"], "resolved")]
    assert offline_on_topic(er.values, steady.device_id) == [] and offline_on_topic(er.values, hb.device_id) == []
    assert await presence_of(pg_dsn, steady.device_id, silent.device_id, hb.device_id, lwt.device_id) == {
        steady.device_id: "online", silent.device_id: "online", hb.device_id: "online", lwt.device_id: "offline"}
    assert talker.sent[hb.device_id] > 20
    # each bridge stamped its watermark on the status topic while it ran (every partition)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.status) as sr:
        await sr.until(lambda v: {x.get("bridge") for x in v} >= {b1.client_id, b2.client_id}, timeout_s=30)
    beats = [x for x in sr.values if "bridge" in x]
    assert all(x["at"] <= x["sent_at"] for x in beats)
    assert min(b1.beats, b2.beats) >= 5 and len(beats) >= 4 * 5


def test_bridge_watermark_is_the_oldest_message_not_yet_on_kafka() -> None:
    from hazmon.settings import Settings
    from ingest.bridge import Bridge
    from ingest.mqtt import MqttMessage
    from ingest.producer import InFlight

    async def no_registry():  # type: ignore[no-untyped-def]
        raise AssertionError("not loaded")

    b = Bridge(Settings(), no_registry)
    assert b.watermark(1000.0) == 1000.0  # nothing in flight: everything received is on Kafka
    b._inbox.append((MqttMessage("t", b"", 1, 1), 990.0))
    first, second = InFlight(None, 2, 0.0, 980.0), InFlight(None, 1, 0.0, 985.0)
    b._open.extend([first, second])
    assert b.watermark(1000.0) == 980.0
    first.remaining = 0  # acknowledged by Kafka
    assert b.watermark(1000.0) == 985.0
    second.remaining = 0
    assert b.watermark(1000.0) == 990.0  # only the inbox left
    b._inbox.clear()
    assert b.watermark(1000.0) == 1000.0 and not b._open


def _spawn_detector(env: Env, group: str) -> subprocess.Popen[bytes]:
    log = open(env.log_dir / f"detect-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115 - lives with the process
    return subprocess.Popen([sys.executable, "-m", "hazmon.cli", "detect", "--group", group], cwd=REPO,
                            env=settings_env(env.settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.fault
async def test_detector_kill9_mid_outage_no_second_episode(ingest_env, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(1)
    devs = await _register(env, pg_dsn, {"STEADY": INTERVAL_S, "SILENT": INTERVAL_S})
    steady, silent = devs["STEADY"], devs["SILENT"]
    await env.start_bridge("one")
    await env.start_bridge("two")
    group = f"det-{uuid.uuid4().hex[:6]}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_spawn_detector(env, group))
        with Talker(env) as talker:
            talker.talk(steady)
            talker.talk(silent)
            await asyncio.sleep(4.0)
            talker.hush(silent)

            async def fired() -> bool:
                return bool(await offline_rows(pg_dsn, silent.device_id))
            await wait_for(fired, 60, "the offline event")
            os.killpg(procs[0].pid, signal.SIGKILL)  # mid-outage
            procs[0].wait(10)
            procs.append(_spawn_detector(env, group))
            await asyncio.sleep(12.0)  # the restarted detector runs several checks while the device is still silent
            (ep,) = await offline_rows(pg_dsn, silent.device_id)
            assert ep["state"] == "firing"
            talker.talk(silent)

            async def resolved() -> bool:
                rows = await offline_rows(pg_dsn, silent.device_id)
                return bool(rows) and rows[-1]["state"] == "resolved"
            await wait_for(resolved, 60, "the resolution after the restart")
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
    (ep2,) = await offline_rows(pg_dsn, silent.device_id)  # one episode, resolved under its first id
    assert ep2["id"] == ep["id"] and ep2["ends_at"] > ep2["starts_at"]
    assert await offline_rows(pg_dsn, steady.device_id) == []
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.events) as er:
        await er.until(lambda v: any(s == "resolved" for _, s in offline_on_topic(v, silent.device_id)), timeout_s=30)
    assert {i for i, _ in offline_on_topic(er.values, silent.device_id)} == {ep["id"]}  # never a second id
    assert offline_on_topic(er.values, steady.device_id) == []


@pytest.mark.fault
async def test_ingest_outage_is_not_mistaken_for_silent_devices(ingest_env, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    """Both bridges down for twice k × interval while the device keeps publishing (the broker
    queues for their persistent sessions): the detector is caught up on Kafka, so only the
    bridges' watermark tells it that nothing was vouched for — no offline verdict."""
    env = await ingest_env(1)
    devs = await _register(env, pg_dsn, {"STEADY": INTERVAL_S})
    steady = devs["STEADY"]
    b1 = await env.start_bridge("one")
    b2 = await env.start_bridge("two")
    async with detector(env, f"det-{uuid.uuid4().hex[:6]}"):
        with Talker(env) as talker:
            talker.talk(steady)
            await asyncio.sleep(4.0)
            await env.stop_bridge(b1)
            await env.stop_bridge(b2)
            await asyncio.sleep(4 * INTERVAL_S * 3 / 2)  # 12 s: twice k × interval, checks every 0.3 s
            sent_during = talker.sent[steady.device_id]
            await env.start_bridge("one")  # same client ids: the queued messages arrive
            await env.start_bridge("two")
            await asyncio.sleep(6.0)
        await asyncio.sleep(1.0)
    assert await offline_rows(pg_dsn, steady.device_id) == []
    assert sent_during > 30
    assert await presence_of(pg_dsn, steady.device_id) == {steady.device_id: "online"}


async def test_a_device_registered_while_the_detector_runs_is_judged_for_silence(  # type: ignore[no-untyped-def]
        ingest_env, pg_dsn: str) -> None:
    """The detector re-reads the registry (here every 0.5 s): a device registered after it
    started gets its expected interval, so when it falls silent it is declared offline —
    before, it was judged only after a detector restart."""
    env = await ingest_env(1)
    async with detector(env, f"det-{uuid.uuid4().hex[:6]}", registry_refresh_s=0.5) as svc:
        await wait_for(lambda: asyncio.sleep(0, svc.engine is not None), 30, "the detector to start")
        devs = await _register(env, pg_dsn, {"LATE": INTERVAL_S})
        late = devs["LATE"]
        await env.start_bridge("one")  # the bridge loads the registry at start: it knows LATE
        await asyncio.sleep(1.0)  # past a registry reload of the detector
        with Talker(env) as talker:
            talker.talk(late)

            async def known() -> bool:  # heard, and its registry facts applied by a reload
                ctx = svc.engine.devices.get(late.device_id) if svc.engine is not None else None
                return ctx is not None and ctx.expected_interval_s == INTERVAL_S

            await wait_for(known, 30, "the detector to know the late device's expected interval")
            talker.hush(late)

        async def offline() -> bool:
            return [r["state"] for r in await offline_rows(pg_dsn, late.device_id)] == ["firing"]

        await wait_for(offline, 30, "the late device's offline episode")  # k × 2 s = 6 s of silence
    assert await presence_of(pg_dsn, late.device_id) == {late.device_id: "offline"}


async def test_two_detectors_each_judge_only_their_partitions(ingest_env, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    """Two detector instances in one group (range assignor: each owns half the partitions of
    readings, status and device-events). After the rebalance both hold every device's stored
    presence, but each judges only the devices its partitions carry (the bridge's partitioner):
    steady devices are never judged by the instance that does not see their traffic, and each
    silent device gets exactly one episode."""
    env = await ingest_env(1)
    names = {f"ST{i}": INTERVAL_S for i in range(8)} | {"SIL0": INTERVAL_S, "SIL1": INTERVAL_S}
    devs = await _register(env, pg_dsn, names)
    await env.start_bridge("one")
    await env.start_bridge("two")
    group = f"det-{uuid.uuid4().hex[:6]}"
    async with detector(env, group) as first:
        with Talker(env) as talker:
            for dev in devs.values():
                talker.talk(dev)
            await asyncio.sleep(4.0)  # the first instance owns everything and stores presence
            async with detector(env, group) as second:
                await asyncio.sleep(4.0)  # rebalance: each now owns half
                talker.hush(devs["SIL0"])
                talker.hush(devs["SIL1"])

                async def both_fired() -> bool:
                    return all([await offline_rows(pg_dsn, devs[n].device_id) for n in ("SIL0", "SIL1")])
                await wait_for(both_fired, 40, "both silent devices' offline events")
                await asyncio.sleep(4.0)
                owned = [{tp.partition for tp in svc._consumer.assignment() if tp.topic == env.topics.status}  # type: ignore[union-attr]
                         for svc in (first, second)]
    assert owned[0] and owned[1] and not owned[0] & owned[1]  # the work really was split
    for n, dev in devs.items():
        rows = await offline_rows(pg_dsn, dev.device_id)
        assert len(rows) == (1 if n.startswith("SIL") else 0), (n, rows)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.events) as er:
        await er.until(lambda v: sum(1 for x in v if x["kind"] == "device.offline") >= 2, timeout_s=30)
        await er.poll(1000)
    for n in ("SIL0", "SIL1"):
        assert [s for _, s in offline_on_topic(er.values, devs[n].device_id)] == ["firing"]
