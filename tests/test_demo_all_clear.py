"""The end of the demo's scripted incidents: what :meth:`Simulator.all_clear` publishes goes
through the bridge's real pipeline (vendor adapters) and the real detector engine, and every
episode the incidents opened resolves — for every adapter the sample district uses."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from detectors.engine import Engine, Message
from detectors.state import DeviceMeta
from hazmon.contracts import Event, EventState
from hazmon.topics import Topics
from ingest.adapters.base import MessageContext
from ingest.adapters.gasjson import ADAPTER as GASJSON
from ingest.directory import DeviceInfo, Directory, VendorInfo
from ingest.pipeline import Pipeline
from sim.devices import FireAlarm, GasLeak, SimDevice, Simulator, Trapped

START = 1714550400.0
DEVICES = [
    SimDevice("GAS-1", "gasco", "gasjson", "gas", 60),
    SimDevice("GAS-2", "acme", "senml", "gas", 60),
    SimDevice("GAS-3", "hz", "hazmon_json", "gas", 60),
    SimDevice("EL-1", "liftco", "elevator_json", "elevator", 30),
    SimDevice("FP-1", "fireco", "gbt26875", "fire", 60),
    SimDevice("FP-2", "fj", "firejson", "fire", 60),
]


def _run(sim: Simulator, until: float, clear_at: float | None) -> dict[tuple[str, str, str], Event]:
    directory = Directory.build(
        [VendorInfo(d.vendor, d.adapter) for d in DEVICES],
        [DeviceInfo(d.device_id, d.vendor, "S1", d.domain, expected_interval_s=d.interval_s) for d in DEVICES])
    topics = Topics("t")
    pipeline = Pipeline(directory, topics)
    meta = {d.device_id: DeviceMeta(site_id="S1", domain=d.domain) for d in DEVICES}
    engine = Engine(meta=meta.get, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    msgs = [m for m in sim.messages(10_000) if m.t <= until]
    if clear_at is not None:
        msgs += sim.all_clear(clear_at)
    last: dict[tuple[str, str, str], Event] = {}
    for k, m in enumerate(msgs):
        by: dict[str, list[Message]] = defaultdict(list)
        for r in pipeline.process(m.topic, m.payload, m.t):
            assert r.topic != topics.deadletter, r.value
            by[r.topic].append(Message(r.value, f"{r.topic}:0:{k}"))
        out = engine.process(by[topics.readings], by[topics.status], by[topics.device_events])
        for ev in out.events:
            last[(ev.device_id, ev.kind, ev.component)] = ev
    return last


def _incidents() -> list[GasLeak | Trapped | FireAlarm]:
    return [GasLeak("GAS-1", 60), GasLeak("GAS-2", 60), GasLeak("GAS-3", 60),
            Trapped("EL-1", 60, duration_s=10_000), FireAlarm("FP-1", 60), FireAlarm("FP-2", 60)]


def test_incidents_fire_and_all_clear_resolves_every_episode() -> None:
    firing = _run(Simulator(DEVICES, start=START, incidents=_incidents()), START + 400, None)
    fired = {(d, k) for (d, k, _c), ev in firing.items() if ev.state == EventState.FIRING}
    # without the all-clear, every scripted incident is still in alarm
    assert {"GAS-1", "GAS-2", "GAS-3", "EL-1", "FP-1", "FP-2"} <= {d for d, _k in fired}
    assert ("EL-1", "elevator.trapped") in fired and ("FP-1", "fire.alarm") in fired and ("GAS-1", "gas.low") in fired

    ended = _run(Simulator(DEVICES, start=START, incidents=_incidents()), START + 400, START + 401)
    still = sorted(key for key, ev in ended.items() if ev.state == EventState.FIRING)
    assert still == []
    assert {(d, k) for (d, k, _c) in ended} >= fired


def test_after_all_clear_the_simulator_reports_normal() -> None:
    sim = Simulator(DEVICES, start=START, incidents=_incidents())
    sim.all_clear(START + 100)
    assert sim._incidents("GAS-1", 200) == []
    # messages before the all-clear still carry the incident
    assert sim._incidents("GAS-1", 90) != []


@pytest.mark.parametrize(("alarm", "active", "inactive"), [
    ("high", {"gas_high"}, set()),
    ("low", {"gas_low"}, {"gas_high"}),
    ("normal", set(), {"gas_low", "gas_high"}),
])
def test_gasjson_alarm_is_a_level_and_restores(alarm: str, active: set[str], inactive: set[str]) -> None:
    payload = json.dumps({"sn": "GAS-1", "time": "2024-05-01T12:00:00+08:00", "conc": 1.0, "unit": "%LEL",
                          "alarm": alarm}).encode()
    items = GASJSON.decode(payload, MessageContext("x", "gasco", "GAS-1", "telemetry", START))
    reports = [i for i in items if hasattr(i, "active")]
    assert {r.code for r in reports if r.active} == active
    assert {r.code for r in reports if not r.active} == inactive
