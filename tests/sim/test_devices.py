"""The device simulator: deterministic for a seed, and its scripted incidents show up in what the
bridge's pipeline makes of the payloads."""

from __future__ import annotations

from hazmon.contracts import DeviceEvent, ReadingBatch
from hazmon.topics import Topics
from ingest.directory import DeviceInfo, Directory, VendorInfo
from ingest.pipeline import Pipeline
from sim.devices import FireAlarm, GasLeak, Offline, SimDevice, Simulator, Trapped

DEVICES = [
    SimDevice("GAS-1", "gasco", "gasjson", "gas", 60),
    SimDevice("EL-1", "liftco", "elevator_json", "elevator", 30),
    SimDevice("FP-1", "fireco", "gbt26875", "fire", 60),
    SimDevice("GAS-2", "acme", "senml", "gas", 60),
]
START = 1714550400.0


def pipeline() -> Pipeline:
    d = Directory.build([VendorInfo(x.vendor, x.adapter) for x in DEVICES],
                        [DeviceInfo(x.device_id, x.vendor, "S1", x.domain, expected_interval_s=x.interval_s) for x in DEVICES])
    return Pipeline(d, Topics("t"))


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = [m.payload for m in Simulator(DEVICES, seed=5, batch=3, start=START).messages(40)]
    b = [m.payload for m in Simulator(DEVICES, seed=5, batch=3, start=START).messages(40)]
    c = [m.payload for m in Simulator(DEVICES, seed=6, batch=3, start=START).messages(40)]
    assert a == b and a != c


def test_incidents_reach_the_pipeline_output() -> None:
    sim = Simulator(DEVICES, seed=1, start=START, incidents=[
        GasLeak("GAS-1", start_s=120, ramp_s=120, peak_lel=60), Trapped("EL-1", start_s=60, duration_s=120),
        FireAlarm("FP-1", start_s=180), Offline("GAS-2", start_s=60, end_s=300)])
    p = pipeline()
    lel: list[float] = []
    codes: set[tuple[str, str]] = set()
    gas2_times: list[float] = []
    for m in sim.messages(40):
        if m.device_id == "GAS-2":
            gas2_times.append(m.t - START)
        for r in p.process(m.topic, m.payload, START + 400):
            if r.topic == "t.readings.v1" and m.device_id == "GAS-1":
                lel += [s.value for s in ReadingBatch.model_validate_json(r.value).samples if s.metric == "gas_lel"]  # type: ignore[misc]
            if r.topic == "t.device-events.v1":
                ev = DeviceEvent.model_validate_json(r.value)
                codes.add((ev.device_id, ev.code))
            assert r.topic != "t.deadletter.v1", r.value
    assert max(lel) >= 50 > lel[0]  # the ramp reaches the high alarm
    assert {("GAS-1", "gas_low"), ("GAS-1", "gas_high"), ("EL-1", "trapped"), ("FP-1", "fire_alarm")} <= codes
    assert not [t for t in gas2_times if 60 <= t < 300]  # silent window
