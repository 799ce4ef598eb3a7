"""Decoder and engine properties: never crash on bad input, never detect from it, late data
never moves state; thresholds and severities resolve per site class and model."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.config import DetectorConfig
from detectors.decode import DecodeError, decode_batch
from detectors.engine import Engine, Message
from detectors.state import DeviceMeta
from hazmon.contracts import DeviceEvent, DeviceStatus, ReadingBatch, Sample
from hazmon.errors import ConfigError

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _batch(device: str, samples: list[Sample], domain: str = "gas", at: datetime | None = None) -> Message:
    rb = ReadingBatch(device_id=device, site_id="s-1", domain=domain, vendor="v",
                      received_at=at or max(s.ts for s in samples), samples=tuple(samples))
    return Message(rb.model_dump_json().encode(), "t:0:0")


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_decoder_never_raises_anything_but_decode_error(raw: bytes) -> None:
    try:
        decode_batch(raw)
    except DecodeError as exc:
        assert exc.reason.value in {"malformed", "schema", "unsupported_version"}


_values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6).map(float))
_metrics = st.sampled_from(["gas_lel", "valve_closed", "mains_power", "battery_pct", "co_ppm", "speed_mps", "x"])


@given(st.lists(st.tuples(_metrics, _values, st.integers(-86400 * 3, 600)), min_size=1, max_size=30))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_engine_never_crashes_and_stores_every_known_sample(items: list[tuple[str, float | None, int]]) -> None:
    engine = Engine(clock=lambda: T0)
    samples = [Sample(metric=m, value=v, ts=T0 + timedelta(seconds=dt)) for m, v, dt in items]
    out = engine.process([_batch("gas-1", samples, at=T0)])
    known = [s for s in samples if s.metric in {"gas_lel", "valve_closed", "mains_power", "battery_pct"}]
    assert len(out.readings) + len(out.flagged_readings) == len(known)
    for row in out.flagged_readings:
        assert row[6]  # every flagged row names why
    for row in out.readings:
        assert row[3] is not None and math.isfinite(row[3])
    unknown = {s.metric for s in samples} - {"gas_lel", "valve_closed", "mains_power", "battery_pct"}
    assert bool(out.deadletters) == bool(unknown)


def test_bad_values_never_start_an_alarm() -> None:
    engine = Engine(clock=lambda: T0)
    bad = [Sample(metric="gas_lel", value=v, ts=T0 + timedelta(seconds=i)) for i, v in
           enumerate([None, 150.0, -3.0, 1e9, None, 101.0])]
    future = [Sample(metric="gas_lel", value=80.0, ts=T0 + timedelta(hours=2, seconds=i)) for i in range(3)]
    out = engine.process([_batch("gas-1", bad, at=T0), _batch("gas-1", future, at=T0 + timedelta(seconds=10))])
    assert out.events == []
    assert [r[6] for r in out.flagged_readings][:3] == [["not_finite"], ["out_of_range"], ["out_of_range"]]
    assert all("ts_future" in r[6] for r in out.flagged_readings[-3:])
    assert ("gas-1", "gas_lel") in out.latest and out.latest[("gas-1", "gas_lel")][2] < T0 + timedelta(hours=1)


@given(st.lists(st.floats(0, 100), min_size=5, max_size=40), st.lists(st.floats(0, 100), min_size=1, max_size=10))
@settings(max_examples=100)
def test_late_readings_never_change_decisions(values: list[float], late: list[float]) -> None:
    stream = [Sample(metric="gas_lel", value=v, ts=T0 + timedelta(seconds=30 * i)) for i, v in enumerate(values)]
    old = [Sample(metric="gas_lel", value=v, ts=T0 - timedelta(hours=3, seconds=i)) for i, v in enumerate(late)]
    a = Engine(clock=lambda: T0)
    ev_a = a.process([_batch("gas-1", [s]) for s in stream]).events
    b = Engine(clock=lambda: T0)
    msgs = []
    for i, s in enumerate(stream):
        msgs.append(_batch("gas-1", [s]))
        if i == len(stream) // 2:
            msgs.append(_batch("gas-1", old, at=s.ts))
            msgs.append(_batch("gas-1", [s], at=s.ts))  # and a duplicate
    ev_b = b.process(msgs).events
    assert [(e.id, e.state) for e in ev_a] == [(e.id, e.state) for e in ev_b]


def test_config_precedence_and_errors() -> None:
    cfg = DetectorConfig({
        "defaults": {"gas": {"low_lel": 20}},
        "site_classes": {"hospital": {"gas": {"low_lel": 15}, "severity": {"device.offline": "orange"}}},
        "models": {"M2": {"gas": {"low_lel": 10}}},
    })
    assert cfg.params("", "").gas.low_lel == 20
    assert cfg.params("hospital", "").gas.low_lel == 15
    assert cfg.params("hospital", "M2").gas.low_lel == 10
    assert cfg.severity(cfg.params("hospital", ""), "device.offline").value == "orange"
    assert cfg.severity(cfg.params("", ""), "device.offline").value == "yellow"
    with pytest.raises(ConfigError, match=r"models.M3: gas.low_lell"):
        DetectorConfig({"models": {"M3": {"gas": {"low_lell": 10}}}}, source="x.yaml")
    with pytest.raises(ConfigError, match=r"severity.gas.low"):
        DetectorConfig({"defaults": {"severity": {"gas.low": "purple"}}})


def test_labels_and_site_class_severity_from_registry() -> None:
    metas = {
        "smoke-1": DeviceMeta(site_id="hosp", domain="fire", model="JTY", site_class="hospital", township="tw-1",
                              parent_id="panel-1"),
        "panel-1": DeviceMeta(site_id="hosp", domain="fire", model="GST", site_class="hospital", township="tw-1"),
    }
    engine = Engine(DetectorConfig({"site_classes": {"hospital": {"severity": {"fire.fault": "orange"}}}}),
                    metas.get, clock=lambda: T0)
    ev = DeviceEvent(device_id="panel-1", site_id="hosp", domain="fire", vendor="v", code="fault", component="1-7",
                     ts=T0, received_at=T0)
    st_ = DeviceStatus(device_id="smoke-1", site_id="hosp", vendor="v", state="offline", reason="lwt", ts=T0,
                       received_at=T0)
    out = engine.process(device_events=[Message(ev.model_dump_json().encode(), "e:0:0")],
                         statuses=[Message(st_.model_dump_json().encode(), "s:0:0")])
    by_kind = {e.kind: e for e in out.events}
    assert by_kind["fire.fault"].severity.value == "orange"
    assert by_kind["fire.fault"].labels == {"model": "GST", "site_class": "hospital", "township": "tw-1",
                                            "panel": "panel-1"}
    assert by_kind["device.offline"].labels["panel"] == "panel-1"
    assert by_kind["device.offline"].domain == "fire"


def test_warm_up_restores_episodes_and_resolves_under_the_same_id() -> None:
    """What the service does after kill -9, without the services: state from stored rows."""
    lel = [2, 2, 60, 61, 62, 63, 62, 3, 2, 2]
    stream = [Sample(metric="gas_lel", value=float(v), ts=T0 + timedelta(seconds=30 * i)) for i, v in enumerate(lel)]
    first = Engine(clock=lambda: T0)
    out1 = first.process([_batch("gas-9", [s]) for s in stream[:5]])
    fired = [e for e in out1.events if e.state.value == "firing"]
    assert {e.kind for e in fired} == {"gas.low", "gas.high", "gas.rate_of_rise"}
    # stored rows as the restart reads them: an unregistered device has no site in the join
    stored = [(r[0], "", "", r[1], r[2], r[3], [], r[6]) for r in out1.readings]
    second = Engine(clock=lambda: T0)
    second.warm_up(fired, stored, latest_times=[("gas-9", "gas_lel", stream[4].ts)])
    # the last stored message is consumed again, then the rest of the stream
    out2 = second.process([_batch("gas-9", [s]) for s in stream[4:]])
    assert out2.late == 1
    resolved = {e.kind: e for e in out2.events if e.state.value == "resolved"}
    assert {e.kind for e in out2.events if e.state.value == "firing"} == set()
    assert {k: e.id for k, e in resolved.items()} == {e.kind: e.id for e in fired if e.kind in resolved}
    assert {"gas.low", "gas.high"} <= set(resolved)
    assert all(e.site_id == "s-1" for e in out2.events)
