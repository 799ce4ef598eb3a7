"""Each adapter against byte-exact sample payloads, and fuzzed: arbitrary bytes never raise
anything but AdapterError (which the bridge turns into a dead letter with a reason)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hazmon.contracts import DeviceEvent, Sample
from hazmon.errors import AdapterError
from ingest.adapters import adapter_names, get_adapter
from ingest.adapters.base import AlarmReport, MessageContext, SampleSet, StatusReport
from ingest.adapters.gbt26875 import (
    FAULT,
    FIRE_ALARM,
    NORMAL,
    AnalogValue,
    ComponentState,
    SystemState,
    UitdState,
    checksum,
    encode_frame,
)

NOW = 1714550400.0  # 2024-05-01T08:00:00Z


def ctx(device: str = "DEV-1", kind: str = "telemetry") -> MessageContext:
    return MessageContext(f"hazmon/v1/v/{device}/{kind}", "v", device, kind, NOW)


def samples(items: list) -> dict[str, tuple[float, str, float | None]]:
    out = {}
    for it in items:
        if isinstance(it, SampleSet):
            for s in it.samples:
                out[s.metric] = (s.value, s.unit, s.ts)
    return out


def alarms(items: list) -> list[tuple[str, bool, str]]:
    return [(a.code, a.active, a.component) for a in items if isinstance(a, AlarmReport)]


# --- hazmon_json ------------------------------------------------------------------------------

def test_hazmon_json_values_and_readings() -> None:
    a = get_adapter("hazmon_json")
    items = a.decode(b'{"ts":1714550400,"seq":17,"values":{"gas_lel":3.2,"battery_pct":88}}', ctx())
    assert samples(items) == {"gas_lel": (3.2, "", NOW), "battery_pct": (88.0, "", NOW)}
    assert items[0].samples[0].seq == 17
    items = a.decode(b'{"readings":[{"metric":"gas_lel","value":4,"unit":"%LEL","ts":"2024-05-01T16:00:00"}]}', ctx())
    # no offset = Beijing time: 16:00 CST is 08:00Z
    assert samples(items) == {"gas_lel": (4.0, "%LEL", NOW)}


def test_hazmon_json_gateway_batch_names_devices() -> None:
    items = get_adapter("hazmon_json").decode(
        b'[{"device_id":"A","ts":1714550400000,"values":{"gas_lel":1}},{"device_id":"B","values":{"gas_lel":2}}]', ctx("GW")
    )
    assert [(i.device_id, i.samples[0].ts) for i in items] == [("A", NOW), ("B", None)]


def test_status_payloads() -> None:
    a = get_adapter("hazmon_json")
    (lwt,) = a.decode(b"offline", ctx(kind="status"))
    assert isinstance(lwt, StatusReport) and (lwt.state, lwt.reason) == ("offline", "lwt")
    (hb,) = a.decode(b'{"heartbeat":true,"battery_pct":55,"mains_power":false}', ctx(kind="status"))
    assert (hb.state, hb.reason, hb.battery_pct, hb.mains_power) == ("online", "heartbeat", 55.0, False)
    with pytest.raises(AdapterError) as e:
        a.decode(b'{"state":"sleeping"}', ctx(kind="status"))
    assert e.value.reason == "schema"


def test_event_payloads() -> None:
    items = get_adapter("hazmon_json").decode(b'{"code":"trapped","component":"car","ts":1714550400}', ctx(kind="event"))
    assert alarms(items) == [("trapped", True, "car")]


# --- senml --------------------------------------------------------------------------------------

def test_senml_pack_with_base_fields() -> None:
    pack = (
        b'[{"bn":"urn:dev:ow:GAS-7:","bt":1714550400,"bu":"%LEL","n":"gas_lel","v":2.5},'
        b'{"n":"gas_lel","t":10,"v":3.5},{"n":"temperature_c","u":"Cel","v":21.5,"t":10}]'
    )
    (s,) = get_adapter("senml").decode(pack, ctx())
    assert s.device_id == "GAS-7"
    assert [(x.metric, x.value, x.unit, x.ts) for x in s.samples] == [
        ("gas_lel", 2.5, "%LEL", NOW),
        ("gas_lel", 3.5, "%LEL", NOW + 10),
        ("temperature_c", 21.5, "°C", NOW + 10),
    ]


def test_senml_relative_and_missing_time() -> None:
    (s,) = get_adapter("senml").decode(b'[{"n":"gas_lel","v":1,"t":-5},{"n":"battery_pct","v":80}]', ctx())
    assert [(x.metric, x.ts) for x in s.samples] == [("gas_lel", NOW - 5), ("battery_pct", None)]


def test_senml_rejects_string_values() -> None:
    with pytest.raises(AdapterError) as e:
        get_adapter("senml").decode(b'[{"n":"x","vs":"hello"}]', ctx())
    assert e.value.reason == "schema"


# --- gasjson ------------------------------------------------------------------------------------

def test_gasjson_ppm_normalised_with_lel() -> None:
    payload = (
        b'{"sn":"GAS-0001","time":"2024-05-01 16:00:00","seq":12,"gas":"CH4","conc":5000,"unit":"ppm",'
        b'"alarm":"high","fault":[1],"valve":"closed","power":"battery","battery":87}'
    )
    items = get_adapter("gasjson").decode(payload, ctx("GAS-0001"))
    s = samples(items)
    # 5 000 ppm methane, LEL 5 % vol = 50 000 ppm → 10 %LEL
    assert s["gas_lel"] == (10.0, "%LEL", NOW)
    assert items[0].samples[0].converted is True
    assert s["valve_closed"][0] == 1.0 and s["mains_power"][0] == 0.0 and s["battery_pct"][0] == 87.0
    assert sorted(alarms(items)) == [("gas_high", True, ""), ("sensor_fault", True, "")]


def test_gasjson_unknown_gas_in_ppm_is_rejected() -> None:
    with pytest.raises(AdapterError) as e:
        get_adapter("gasjson").decode(b'{"conc":100,"unit":"ppm","gas":"XYZ"}', ctx())
    assert e.value.reason == "schema" and "known gas" in e.value.detail


# --- elevator_json ----------------------------------------------------------------------------

def test_elevator_gbt24476_items() -> None:
    payload = (
        b'{"liftId":"EL-0001","time":"2024-05-01T16:00:00+08:00","running":false,"direction":"stop","floor":7,'
        b'"door":"closed","speed":0,"person":true,"mode":"maintenance","doorZone":false,"doorLock":"fault",'
        b'"overTravel":"top","faults":[1,99]}'
    )
    items = get_adapter("elevator_json").decode(payload, ctx("EL-0001"))
    s = samples(items)
    assert s["floor"][0] == 7 and s["person_in_car"][0] == 1 and s["service_mode"][0] == 2 and s["direction"][0] == 0
    assert s["floor"][2] == NOW
    assert sorted(a[0] for a in alarms(items)) == ["door_lock_fault", "fault", "overtravel_top", "trapped"]


def test_elevator_bad_direction_is_schema() -> None:
    with pytest.raises(AdapterError) as e:
        get_adapter("elevator_json").decode(b'{"direction":["up"]}', ctx())
    assert e.value.reason == "schema"


# --- firejson -----------------------------------------------------------------------------------

def test_firejson_events_and_analog() -> None:
    payload = (
        '{"panel":"FP-0001","time":"2024-05-01 16:00:00","events":[{"type":"fire_alarm","loop":1,"addr":23,'
        '"zone":"3F 东侧走廊"}],"analog":[{"loop":1,"addr":5,"metric":"smoke_obscuration","value":2.1,"unit":"%/m"}]}'
    ).encode()
    items = get_adapter("firejson").decode(payload, ctx("FP-0001"))
    assert samples(items) == {"smoke_obscuration": (2.1, "%/m", NOW)}
    (ev,) = [i for i in items if isinstance(i, AlarmReport)]
    assert (ev.code, ev.component, ev.zone, ev.ts) == ("fire_alarm", "1-023", "3F 东侧走廊", NOW)


# --- gbt26875 -----------------------------------------------------------------------------------

#: A component-status frame: serial 7, v1.0, 2024-05-01 12:00:00 CST, fire alarm on loop 2
#: point 23 ("3F 东侧走廊" in GB18030), written out byte by byte (checksum 0xa1).
SAMPLE_FRAME = bytes.fromhex(
    "4040" "0700" "0100" "00000c010518"
    + "000000000000" "000000000000" "3000" "02"
    + "0201" "01" "01" "28" "17000200" "0300"
    + "334620b6abb2e0d7dfc0c8".ljust(62, "0")
    + "00000c010518"
    + "a1" "2323"
)


def test_gbt26875_sample_frame_byte_exact() -> None:
    t = datetime(2024, 5, 1, 4, 0, 0, tzinfo=UTC)
    assert encode_frame([ComponentState(1, 1, 40, 2, 23, NORMAL | FIRE_ALARM, "3F 东侧走廊", t)], serial=7, sent_at=t) == SAMPLE_FRAME
    assert SAMPLE_FRAME[-3] == checksum(SAMPLE_FRAME[2:-3])
    (ev,) = get_adapter("gbt26875").decode(SAMPLE_FRAME, ctx("FP-1"))
    assert (ev.code, ev.active, ev.component, ev.zone, ev.ts) == ("fire_alarm", True, "1-1/40/2-023", "3F 东侧走廊", NOW - 4 * 3600)


def test_gbt26875_system_analog_uitd_heartbeat() -> None:
    t = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
    a = get_adapter("gbt26875")
    assert alarms(a.decode(encode_frame([SystemState(1, 1, NORMAL | FAULT, t)], serial=1, sent_at=t), ctx())) == [("fault", True, "1-1")]
    assert samples(a.decode(encode_frame([AnalogValue(1, 1, 40, 1, 5, 3, 253, t)], serial=2, sent_at=t), ctx())) == {
        "temperature_c": (pytest.approx(25.3), "°C", NOW)
    }
    st_, power = a.decode(encode_frame([UitdState(NORMAL | 8, t)], serial=3, sent_at=t), ctx())
    assert (st_.state, st_.reason, st_.mains_power) == ("online", "heartbeat", False)
    assert (power.code, power.active, power.component) == ("fault", True, "主电")  # 主电故障: the panel's event
    (hb,) = a.decode(encode_frame([], serial=4, sent_at=t), ctx())
    assert hb.reason == "heartbeat"
    restore = a.decode(encode_frame([ComponentState(1, 1, 40, 1, 1, NORMAL, "", t)], serial=5, sent_at=t), ctx())
    assert {(c, act) for c, act, _ in alarms(restore)} == {
        ("fire_alarm", False), ("fault", False), ("supervisory", False), ("shielded", False)}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f[:-5], "truncated"),
        (lambda f: f[:20], "truncated"),
        (lambda f: f[:40] + bytes([f[40] ^ 0x01]) + f[41:], "checksum"),
        (lambda f: b"##" + f[2:], "malformed"),
        (lambda f: f[:-2] + b"$$", "malformed"),
        (lambda f: f + b"\x00", "malformed"),
        (lambda f: f[:24] + b"\xff\xff" + f[26:], "schema"),  # ADU length beyond 1024
    ],
)
def test_gbt26875_corrupt_frames(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AdapterError) as e:
        get_adapter("gbt26875").decode(mutate(SAMPLE_FRAME), ctx())
    assert e.value.reason == reason


def test_gbt26875_bad_time_tag_is_bad_timestamp() -> None:
    body = bytearray(SAMPLE_FRAME)
    body[10] = 13  # month 13 in the header time tag
    body[-3] = checksum(bytes(body[2:-3]))
    with pytest.raises(AdapterError) as e:
        get_adapter("gbt26875").decode(bytes(body), ctx())
    assert e.value.reason == "bad_timestamp"


@given(
    st.lists(
        st.builds(
            ComponentState,
            sys_type=st.integers(0, 255), sys_addr=st.integers(0, 255), comp_type=st.integers(0, 255),
            loop=st.integers(0, 0xFFFF), point=st.integers(0, 0xFFFF), status=st.integers(0, 0xFFFF),
            description=st.text(alphabet="ABC 东西楼层", max_size=10),
            time=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31),
                              timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
        ),
        min_size=1, max_size=20,
    ),
    st.integers(0, 0xFFFF),
)
def test_gbt26875_roundtrip(objs, serial) -> None:  # type: ignore[no-untyped-def]
    frame = encode_frame(objs, serial=serial, sent_at=objs[0].time)
    items = get_adapter("gbt26875").decode(frame, ctx())
    comps = {a.component for a in items if isinstance(a, AlarmReport)}
    comp = lambda o: f"{o.sys_type}-{o.sys_addr}/{o.comp_type}/{o.loop}-{o.point:03d}"  # noqa: E731
    assert comps <= {comp(o) for o in objs}
    fired = {(comp(o), o.time.timestamp()) for o in objs if o.status & FIRE_ALARM}
    assert fired == {(a.component, a.ts) for a in items if isinstance(a, AlarmReport) and a.code == "fire_alarm" and a.active}


# --- fuzzing: every adapter, every kind -----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["gas\x00lel", "3F\x00", "\x07", "a\ud800"]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["ts", "time", "seq", "values", "readings", "metric", "value", "unit", "n", "v", "t", "bn", "bt", "bu",
                         "bv", "vb", "records", "sn", "conc", "gas", "alarm", "fault", "valve", "power", "battery", "liftId",
                         "floor", "direction", "faults", "mode", "door", "panel", "events", "analog", "type", "loop", "addr",
                         "code", "active", "state", "heartbeat", "device_id", "gas_lel", "detail", "doorLock", "overTravel"]),
        children, max_size=6),
    max_leaves=20,
)


@pytest.mark.parametrize("name", adapter_names())
@pytest.mark.parametrize("kind", ["telemetry", "status", "event"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_never_raises_but_adapter_error(name: str, kind: str, data: bytes) -> None:
    try:
        items = get_adapter(name).decode(data, ctx(kind=kind))
    except AdapterError as exc:
        assert exc.reason and exc.detail
        return
    for it in items:
        assert isinstance(it, SampleSet | StatusReport | AlarmReport)
        for s in getattr(it, "samples", []):
            assert isinstance(s.value, float) and (s.ts is None or math.isfinite(s.ts))
        _fits_the_contracts(it)


def _fits_the_contracts(it: SampleSet | StatusReport | AlarmReport) -> None:
    """What an adapter hands the bridge builds its wire contract: nothing PostgreSQL refuses."""
    now = datetime.now(UTC)
    if isinstance(it, SampleSet):
        for s in it.samples:
            Sample(metric=s.metric, value=s.value, unit=s.unit, ts=now, seq=s.seq)
    elif isinstance(it, AlarmReport):
        DeviceEvent(device_id="D-1", site_id="S-1", domain="fire", vendor="v", code=it.code, active=it.active,
                    component=it.component, zone=it.zone, detail=it.detail, ts=now, received_at=now)


# --- poison (issue 17): refused at the edge, whatever the adapter ------------------------------

@pytest.mark.parametrize("name, kind, payload, where", [
    ("hazmon_json", "telemetry", '{"ts": 1714550400, "values": {"gas\\u0000lel": 1.0}}', "metric"),
    ("hazmon_json", "telemetry", '{"ts": 1714550400, "seq": 18446744073709551615, "values": {"gas_lel": 1.0}}', "seq"),
    ("hazmon_json", "telemetry", '{"readings": [{"metric": "gas_lel", "unit": "%\\u0001", "value": 1, "ts": 1714550400}]}',
     "unit"),
    ("hazmon_json", "event", '{"code": "trapped", "zone": "3F\\u0000东侧", "ts": 1714550400}', "zone"),
    ("hazmon_json", "event", '{"code": "fault", "detail": {"note": "a\\u0000b"}, "ts": 1714550400}', "detail.note"),
    ("hazmon_json", "event", '{"code": "fault", "detail": {"n": 1e400}, "ts": 1714550400}', "out of range"),
    ("hazmon_json", "event", '{"code": "fault", "detail": {"n": 123456789012345678901234567890}, "ts": 1714550400}',
     "64-bit range"),
    ("hazmon_json", "event", '{"code": "fault", "detail": ' + "[" * 20 + "]" * 20 + "}", "detail"),
    ("senml", "telemetry", '[{"n": "gas\\u0000lel", "v": 1}]', "metric"),
    ("firejson", "telemetry", '{"panel": "FP-1", "events": [{"type": "fire_alarm", "loop": 1, "addr": 2, '
     '"zone": "\\u0000"}]}', "zone"),
    ("firejson", "telemetry", '{"panel": "FP-1", "seq": 18446744073709551615, "analog": [{"loop": 1, "addr": 5, '
     '"metric": "smoke_obscuration", "value": 2.1}]}', "seq"),
    ("gasjson", "telemetry", '{"sn": "G-1", "seq": 18446744073709551615, "conc": 5, "unit": "%LEL"}', "seq"),
    ("elevator_json", "telemetry", '{"liftId": "E-1", "seq": 18446744073709551615, "floor": 3}', "seq"),
])
def test_poison_is_refused_by_every_adapter(name: str, kind: str, payload: str, where: str) -> None:
    with pytest.raises(AdapterError) as e:
        get_adapter(name).decode(payload.encode(), ctx(kind=kind))
    assert e.value.reason in ("schema", "malformed") and where in e.value.detail, e.value.detail


def test_gbt26875_garbled_description_keeps_the_fire_alarm() -> None:
    t = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    frame = encode_frame([ComponentState(1, 1, 40, 2, 23, NORMAL | FIRE_ALARM, "3F\x01东侧\x1f", t)], serial=9, sent_at=t)
    (ev,) = [i for i in get_adapter("gbt26875").decode(frame, ctx()) if isinstance(i, AlarmReport)]
    assert ev.code == "fire_alarm" and ev.zone == "3F\ufffd东侧\ufffd"


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_fuzz_gbt26875_mutated_frames(noise: bytes) -> None:
    frame = SAMPLE_FRAME[: len(SAMPLE_FRAME) // 2] + noise + SAMPLE_FRAME[-3:]
    try:
        get_adapter("gbt26875").decode(frame, ctx())
    except AdapterError as exc:
        assert exc.reason in {"truncated", "checksum", "malformed", "schema", "bad_timestamp"}
