"""The bridge's per-message work without brokers: routing, registry join, validation flags,
dead letters with reasons, presence transitions; output checked against the wire contracts."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hazmon.contracts import DeadLetter, DeviceEvent, DeviceStatus, ReadingBatch, ReadingFlag
from hazmon.topics import Topics
from ingest.adapters.base import RawSample
from ingest.directory import DeviceInfo, Directory, VendorInfo
from ingest.pipeline import Pipeline, Router, VendorTopic
from ingest.presence import PresenceTracker
from ingest.validation import Limits, SampleRejected, validate_sample

T = Topics("t")
NOW = 1714550400.0
DIRECTORY = Directory.build(
    [VendorInfo("acme", "hazmon_json"), VendorInfo("gasco", "gasjson"), VendorInfo("liftco", "elevator_json")],
    [
        DeviceInfo("GAS-1", "acme", "S1", "gas", expected_interval_s=60),
        DeviceInfo("GAS-2", "gasco", "S1", "gas", expected_interval_s=60),
        DeviceInfo("EL-1", "liftco", "S2", "elevator", expected_interval_s=30),
    ],
)


def pipeline(**kw) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(DIRECTORY, T, **kw)


def parse(records):  # type: ignore[no-untyped-def]
    model = {T.readings: ReadingBatch, T.status: DeviceStatus, T.device_events: DeviceEvent, T.deadletter: DeadLetter}
    return [(r.topic, model[r.topic].model_validate_json(r.value)) for r in records]


def only_dead(records) -> DeadLetter:  # type: ignore[no-untyped-def]
    (topic, dl), = parse(records)
    assert topic == T.deadletter
    return dl


# --- validation -------------------------------------------------------------------------------

def test_flags_and_clamping() -> None:
    lim = Limits(skew_s=300, max_age_s=86400)
    assert validate_sample(RawSample("gas_lel", 3.0, "%LEL", NOW - 1), NOW, lim) == {
        "metric": "gas_lel", "value": 3.0, "unit": "%LEL", "ts": "2024-05-01T07:59:59+00:00"}
    fut = validate_sample(RawSample("gas_lel", 3.0, "", NOW + 3600), NOW, lim)
    assert fut["flags"] == ["ts_future"] and fut["ts"] == "2024-05-01T08:00:00+00:00" and fut["unit"] == "%LEL"
    assert validate_sample(RawSample("gas_lel", 3.0, "", NOW - 2 * 86400), NOW, lim)["flags"] == ["ts_past"]
    assert validate_sample(RawSample("gas_lel", 3.0, "", None), NOW, lim)["flags"] == ["ts_missing"]
    nan = validate_sample(RawSample("gas_lel", math.nan, "", NOW), NOW, lim)
    assert nan["value"] is None and nan["flags"] == ["not_finite"]
    assert validate_sample(RawSample("gas_lel", 130.0, "", NOW), NOW, lim)["flags"] == ["out_of_range"]
    f = validate_sample(RawSample("temperature_c", 212.0, "°F", NOW), NOW, lim)
    assert f["value"] == pytest.approx(100.0) and f["unit"] == "°C" and f["flags"] == ["unit_converted"]
    assert validate_sample(RawSample("humidity", 40.0, "%RH", NOW), NOW, lim)["flags"] == ["unknown_metric"]
    with pytest.raises(SampleRejected, match="mg/m3"):
        validate_sample(RawSample("gas_lel", 1.0, "mg/m3", NOW), NOW, lim)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["gas_lel", "battery_pct", "floor", "x_unknown"]),
            st.floats(allow_nan=True, allow_infinity=True, width=64),
            st.one_of(st.none(), st.floats(0, 4.1e9)),
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        ),
        min_size=1, max_size=30,
    )
)
def test_reading_batches_always_match_the_contract(rows) -> None:  # type: ignore[no-untyped-def]
    readings = [{"metric": m, "value": v if math.isfinite(v) else str(v), **({"ts": ts} if ts is not None else {}),
                 **({"seq": s} if s is not None else {})} for m, v, ts, s in rows]
    out = pipeline().process("hazmon/v1/acme/GAS-1/telemetry", json.dumps({"readings": readings}).encode(), NOW)
    (topic, batch), = parse(out)
    assert topic == T.readings and len(batch.samples) == len(rows)
    for s in batch.samples:
        assert s.ts.timestamp() <= NOW + 300
        if s.value is None:
            assert ReadingFlag.NOT_FINITE in s.flags


# --- dead letters -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("topic", "payload", "reason", "vendor"),
    [
        ("hazmon/v1/acme/GAS-1/telemetry", b"{not json", "malformed", "acme"),
        ("hazmon/v1/acme/GAS-1/telemetry", b'{"values":{"gas_lel":"high"}}', "schema", "acme"),
        ("hazmon/v1/acme/GAS-1/telemetry", b'{"ts":true,"values":{"gas_lel":1}}', "bad_timestamp", "acme"),
        ("hazmon/v1/acme/NOPE-9/telemetry", b'{"values":{"gas_lel":1}}', "unknown_device", "acme"),
        ("hazmon/v1/acme/GAS-2/telemetry", b'{"values":{"gas_lel":1}}', "forbidden_topic", "acme"),
        ("hazmon/v1/ghost/GAS-1/telemetry", b'{"values":{"gas_lel":1}}', "unknown_vendor", "ghost"),
        ("hazmon/v1/acme/GAS-1/whatever", b"{}", "forbidden_topic", "acme"),
        ("elsewhere/x", b"{}", "forbidden_topic", ""),
        ("hazmon/v1/acme/GAS-1/telemetry", b'{"values":{"gas_lel":1},"units":{"gas_lel":"mg/m3"}}', "schema", "acme"),
        ("hazmon/v1/acme/GAS-1/event", b'{"code":"trapped"}', "schema", "acme"),  # not a gas code
    ],
)
def test_bad_input_becomes_a_dead_letter_with_reason(topic: str, payload: bytes, reason: str, vendor: str) -> None:
    p = pipeline()
    dl = only_dead(p.process(topic, payload, NOW))
    assert (dl.reason.value, dl.vendor, dl.source, dl.raw, dl.stage) == (reason, vendor, topic, payload, "ingest")
    assert dl.detail
    assert p.diagnostics.snapshot()[vendor or "(unknown)"]["counts"] == {reason: 1}


def test_oversized_payload_is_capped() -> None:
    p = pipeline(max_payload_bytes=1000)
    dl = only_dead(p.process("hazmon/v1/acme/GAS-1/telemetry", b"x" * 5000, NOW))
    assert dl.reason.value == "oversized" and len(dl.raw) == 1000 and "5000" in dl.detail


def test_partial_message_good_parts_pass_bad_parts_dead_letter() -> None:
    payload = b'[{"device_id":"GAS-1","values":{"gas_lel":1}},{"device_id":"GHOST","values":{"gas_lel":2}}]'
    out = parse(pipeline().process("hazmon/v1/acme/GAS-1/telemetry", payload, NOW))
    assert [t for t, _ in out] == [T.readings, T.deadletter]
    assert out[1][1].reason.value == "unknown_device" and "GHOST" in out[1][1].detail


def test_dead_letter_ids_are_stable_for_redelivery() -> None:
    a = only_dead(pipeline().process("hazmon/v1/acme/GAS-1/telemetry", b"{bad", NOW))
    b = only_dead(pipeline().process("hazmon/v1/acme/GAS-1/telemetry", b"{bad", NOW + 5))
    assert a.id == b.id


def test_vendor_topic_patterns() -> None:
    router = Router("hazmon/v1", [VendorTopic("gasco/{device_id}/up", "gasco", "gasjson")])
    assert router.subscriptions() == ["hazmon/v1/+/+/+", "gasco/+/up"]
    out = parse(Pipeline(DIRECTORY, T, router=router).process("gasco/GAS-2/up", b'{"conc":12,"unit":"%LEL"}', NOW))
    assert out[0][1].samples[0].value == 12.0


# --- presence ---------------------------------------------------------------------------------

def test_presence_transitions_once_per_change() -> None:
    pr = PresenceTracker(k=3, started_at=NOW)
    assert pr.seen("A", NOW).state == "online"  # type: ignore[union-attr]
    assert pr.seen("A", NOW + 10) is None
    assert pr.sweep(NOW + 100, {"A": 60}) == []
    (off,) = pr.sweep(NOW + 10 + 181, {"A": 60})
    assert (off.state, off.reason) == ("offline", "silence")
    assert pr.sweep(NOW + 500, {"A": 60}) == []
    assert pr.seen("A", NOW + 501).state == "online"  # type: ignore[union-attr]
    assert pr.reported("A", "offline", NOW + 502, "lwt").reason == "lwt"  # type: ignore[union-attr]
    assert pr.reported("A", "offline", NOW + 503, "lwt") is None
    # a registered device never heard from goes offline k × interval after start
    assert [t.device_id for t in pr.sweep(NOW + 181, {"B": 60})] == ["B"]


def test_pipeline_emits_status_records_for_presence() -> None:
    """Single-bridge mode (presence_k > 0): transitions plus every heartbeat forwarded."""
    p = pipeline(presence=PresenceTracker(k=3, started_at=NOW))
    out = parse(p.process("hazmon/v1/acme/GAS-1/telemetry", b'{"values":{"gas_lel":1}}', NOW))
    assert [(t, getattr(m, "state", None)) for t, m in out][1] == (T.status, "online")
    assert len(p.process("hazmon/v1/acme/GAS-1/telemetry", b'{"values":{"gas_lel":1}}', NOW + 1)) == 1
    (lwt,) = parse(p.process("hazmon/v1/acme/GAS-1/status", b"offline", NOW + 2))
    assert (lwt[1].state, lwt[1].reason) == ("offline", "lwt")
    assert p.process("hazmon/v1/acme/GAS-1/status", b'{"heartbeat":true}', NOW + 3)[0].topic == T.status  # back online
    # a heartbeat that changes nothing here is still forwarded: the detector judges presence
    ((topic, hb),) = parse(p.process("hazmon/v1/acme/GAS-1/status", b'{"heartbeat":true}', NOW + 4))
    assert (topic, hb.state, hb.reason) == (T.status, "online", "heartbeat")
    swept = parse(p.sweep(NOW + 1000))
    assert {m.device_id for _, m in swept} == {"GAS-1", "GAS-2", "EL-1"} and all(m.reason == "silence" for _, m in swept)


def test_default_bridge_judges_nothing_and_forwards_every_status() -> None:
    """presence_k = 0 (the default): no data-driven "online", no silence sweep; Last Will,
    explicit reports and every heartbeat go to the status topic as they came."""
    p = pipeline()
    out = p.process("hazmon/v1/acme/GAS-1/telemetry", b'{"values":{"gas_lel":1}}', NOW)
    assert [r.topic for r in out] == [T.readings]
    hbs = [parse(p.process("hazmon/v1/acme/GAS-1/status", b'{"heartbeat":true}', NOW + i)) for i in (1, 2, 3)]
    assert [(m.state, m.reason, m.received_at.timestamp()) for ((_, m),) in hbs] == [
        ("online", "heartbeat", NOW + 1), ("online", "heartbeat", NOW + 2), ("online", "heartbeat", NOW + 3)]
    ((_, lwt),) = parse(p.process("hazmon/v1/acme/GAS-1/status", b"offline", NOW + 4))
    assert (lwt.state, lwt.reason) == ("offline", "lwt")
    ((_, health),) = parse(p.process("hazmon/v1/acme/GAS-1/status", b'{"battery_pct": 40}', NOW + 5))
    assert (health.state, health.battery_pct) == (None, 40.0)
    assert p.sweep(NOW + 10_000) == []
