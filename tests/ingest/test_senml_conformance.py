"""SenML conformance (RFC 8428, RFC 9100): vectors written from the RFCs' text, each citing its
clause, through the real adapter; the bridge's handling of a partly usable pack is in
test_senml_pack_keeps_its_usable_records (a real Pipeline, no broker needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hazmon.errors import AdapterError
from ingest.adapters import MessageContext, Refusal, SampleSet, get_adapter

NOW = 1_714_550_400.0
SENML = get_adapter("senml")


def decode(pack: Any) -> list[Any]:
    raw = pack if isinstance(pack, bytes) else json.dumps(pack).encode()
    return SENML.decode(raw, MessageContext("hazmon/v1/senmlco/GAS-1/telemetry", "senmlco", "GAS-1", "telemetry", NOW))


def samples(items: list[Any]) -> list[tuple[str, str, float, str, float | None]]:
    return [(s.device_id, x.metric, x.value, x.unit, x.ts) for s in items if isinstance(s, SampleSet) for x in s.samples]


def refusals(items: list[Any]) -> list[tuple[str, str]]:
    return [(r.reason.value, r.detail) for r in items if isinstance(r, Refusal)]


def refused_whole(pack: Any) -> AdapterError:
    with pytest.raises(AdapterError) as e:
        decode(pack)
    return e.value


# --- §4.1, §4.6: base fields apply until changed; resolution -----------------------------------

def test_base_fields_apply_to_later_records_until_changed() -> None:  # RFC 8428 §4.1, §4.6
    items = decode([
        {"bn": "urn:dev:ow:GAS-7:", "bt": NOW, "bu": "%LEL", "bv": 1.0, "n": "gas_lel", "v": 1.5},
        {"n": "gas_lel", "t": 10, "v": 2.5},
        {"bn": "GAS-8/", "n": "gas_lel", "v": 0.5},
    ])
    assert samples(items) == [
        ("GAS-7", "gas_lel", 2.5, "%LEL", NOW),
        ("GAS-7", "gas_lel", 3.5, "%LEL", NOW + 10),
        ("GAS-8", "gas_lel", 1.5, "%LEL", NOW),
    ]


def test_base_sum_is_added_to_the_sum() -> None:  # RFC 8428 §4.2 (bs), §4.6
    items = decode([{"bn": "GAS-1/", "bs": 100.0, "bt": NOW, "n": "gas_lel", "s": 5}])
    assert samples(items) == [("GAS-1", "gas_lel", 105.0, "", NOW)]


def test_value_and_sum_both_kept() -> None:  # RFC 8428 §4.2: a record may have a value and a sum
    items = decode([{"n": "gas_lel", "v": 3, "s": 40, "t": NOW}])
    assert samples(items) == [("GAS-1", "gas_lel", 3.0, "", NOW), ("GAS-1", "gas_lel_sum", 40.0, "", NOW)]


def test_base_value_applies_to_v_only() -> None:  # RFC 8428 §4.6: bv is added to the Value field
    items = decode([{"bv": 10, "n": "valve_closed", "vb": True, "t": NOW}, {"n": "gas_lel", "v": 1, "t": NOW}])
    assert samples(items) == [("GAS-1", "valve_closed", 1.0, "", NOW), ("GAS-1", "gas_lel", 11.0, "", NOW)]


def test_a_record_setting_only_base_fields_is_not_a_reading() -> None:
    items = decode([{"bn": "GAS-3:", "bt": NOW}, {"n": "gas_lel", "v": 2}])
    assert samples(items) == [("GAS-3", "gas_lel", 2.0, "", NOW)]


# --- §4.5.3: time -------------------------------------------------------------------------------

@pytest.mark.parametrize("t, expected", [
    (0, NOW),  # zero: roughly now
    (-5, NOW - 5),  # negative: seconds in the past
    (-(2.0**29), NOW - 2.0**29),  # negative values are relative however large
    (2.0**28 - 1, NOW + 2.0**28 - 1),  # below 2**28: relative
    (2.0**28, 2.0**28),  # from 2**28 up: absolute
    (NOW, NOW),
])
def test_times_relative_below_2_28_absolute_from_it(t: float, expected: float) -> None:  # RFC 8428 §4.5.3
    if expected < 0:
        pytest.skip("before 1970")
    assert samples(decode([{"n": "gas_lel", "v": 1, "t": t}]))[0][4] == expected


def test_no_time_is_roughly_now_and_flagged_missing() -> None:  # §4.5.3: absent = "now"; hazmon flags it
    assert samples(decode([{"n": "gas_lel", "v": 1}]))[0][4] is None


def test_update_time_must_be_a_non_negative_number() -> None:  # RFC 8428 §4.5.4
    items = decode([{"n": "gas_lel", "v": 1, "t": NOW, "ut": 60}, {"n": "battery_pct", "v": 5, "t": NOW, "ut": -1}])
    assert samples(items) == [("GAS-1", "gas_lel", 1.0, "", NOW)]
    assert refusals(items) == [("schema", "[1].ut: update time must not be negative (RFC 8428 §4.5.4)")]


# --- §4.2: values -------------------------------------------------------------------------------

def test_string_and_data_values_are_refused_alone_not_with_the_pack() -> None:  # §4.2 vs, vd
    items = decode([
        {"n": "gas_lel", "v": 1, "t": NOW},
        {"n": "note", "vs": "hello", "t": NOW},
        {"n": "blob", "vd": "aGVsbG8", "t": NOW},
        {"n": "valve_closed", "vb": False, "t": NOW},
    ])
    assert samples(items) == [("GAS-1", "gas_lel", 1.0, "", NOW), ("GAS-1", "valve_closed", 0.0, "", NOW)]
    assert [r[0] for r in refusals(items)] == ["schema", "schema"]
    assert "[1].vs: string values" in refusals(items)[0][1] and "[2].vd: data values" in refusals(items)[1][1]


def test_two_value_fields_in_one_record_are_refused() -> None:  # §4.2: one value field
    items = decode([{"n": "gas_lel", "v": 1, "vb": True, "t": NOW}, {"n": "battery_pct", "v": 50, "t": NOW}])
    assert refusals(items) == [("schema", "[0]: more than one value field (v, vb; RFC 8428 §4.2)")]


def test_a_named_record_without_value_or_sum_is_refused() -> None:  # §4.2: Value required unless a Sum
    items = decode([{"n": "gas_lel", "t": NOW}, {"n": "battery_pct", "v": 50, "t": NOW}])
    assert refusals(items)[0] == ("schema", "[0]: record has no value (v, vb, vs, vd) and no sum s (RFC 8428 §4.2)")


def test_a_pack_with_nothing_usable_is_refused_whole_with_the_first_reason() -> None:
    err = refused_whole([{"n": "x", "vs": "hello"}, {"n": "y", "vd": "AA"}])
    assert err.reason == "schema" and err.detail.startswith("[0].vs:") and err.detail.endswith("(+1 more)")


# --- §4.5.1: names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["-GAS-1/gas_lel", "GAS 1/gas_lel", "GAS-1/燃气", "_x"])
def test_names_outside_the_character_set_are_refused(name: str) -> None:  # RFC 8428 §4.5.1
    items = decode([{"n": name, "v": 1, "t": NOW}, {"n": "gas_lel", "v": 2, "t": NOW}])
    (reason, detail), = refusals(items)
    assert reason == "schema" and "§4.5.1" in detail and samples(items) == [("GAS-1", "gas_lel", 2.0, "", NOW)]


def test_an_empty_resolved_name_is_refused() -> None:  # §4.5.1: the name must not be empty
    items = decode([{"v": 1, "t": NOW}, {"n": "gas_lel", "v": 2, "t": NOW}])
    assert refusals(items) == [("schema", "[0]: record has no name (bn + n is empty; RFC 8428 §4.5.1)")]


def test_one_sensor_several_measurements_told_apart_by_unit() -> None:  # RFC 8428 §5.1.3's style
    items = decode([
        {"bn": "urn:dev:ow:GAS-9:", "bt": NOW, "u": "%LEL", "v": 4.0},
        {"u": "Cel", "v": 21.5},
        {"u": "lon", "v": 24.30621},
    ])
    assert samples(items) == [("GAS-9", "gas_lel", 4.0, "%LEL", NOW), ("GAS-9", "temperature_c", 21.5, "°C", NOW)]
    (reason, detail), = refusals(items)
    assert reason == "unknown_metric" and "'lon'" in detail and "§5.1.3" in detail


def test_a_repeated_name_and_time_is_refused_not_overwritten() -> None:
    items = decode([{"n": "gas_lel", "v": 1, "t": NOW}, {"n": "gas_lel", "v": 9, "t": NOW}])
    assert samples(items) == [("GAS-1", "gas_lel", 1.0, "", NOW)]
    assert refusals(items) == [("schema", "[1]: repeats [0]'s name and time: one reading per device, metric and time")]


# --- §4.4, RFC 9100: versions -------------------------------------------------------------------

@pytest.mark.parametrize("bver", [10, 26])
def test_supported_versions(bver: int) -> None:  # RFC 8428 §4.4 (10), RFC 9100 §4 (26 = 10 + 2**4)
    assert samples(decode([{"bver": bver, "n": "gas_lel", "v": 1, "t": NOW}])) == [("GAS-1", "gas_lel", 1.0, "", NOW)]


@pytest.mark.parametrize("bver, why", [
    (11, "not an RFC 8428 version"),
    (5, "not an RFC 8428 version"),
    (10 + 2**5, "feature bit(s) 5 not understood (RFC 9100 §2)"),
    (0, "not a positive integer"),
    (True, "not a positive integer"),
    ("10", "not a positive integer"),
])
def test_unsupported_versions_refuse_the_pack(bver: Any, why: str) -> None:  # §4.4: MUST NOT use it
    err = refused_whole([{"n": "gas_lel", "v": 1, "t": NOW}, {"bver": bver, "n": "battery_pct", "v": 2}])
    assert err.reason == "unsupported_version" and why in err.detail and err.detail.startswith("[1].bver")


def test_a_pack_mixing_versions_is_refused() -> None:  # §4.4: one version per pack
    err = refused_whole([{"bver": 10, "n": "gas_lel", "v": 1}, {"bver": 26, "n": "battery_pct", "v": 2}])
    assert err.reason == "unsupported_version" and "mixes versions with [0]'s 10" in err.detail


# --- §4.4, §12.3.1: must-understand -------------------------------------------------------------

def test_a_must_understand_field_refuses_its_record() -> None:
    items = decode([{"n": "gas_lel", "v": 1, "t": NOW, "cal_": 2}, {"n": "battery_pct", "v": 80, "t": NOW, "note": "x"}])
    assert samples(items) == [("GAS-1", "battery_pct", 80.0, "", NOW)]  # "note": unknown, ignored
    (reason, detail), = refusals(items)
    assert reason == "schema" and "cal_" in detail and "§12.3.1" in detail


def test_a_repeated_must_understand_field_is_named() -> None:
    raw = b'[{"n":"gas_lel","v":1,"t":1714550400,"cal_":1,"cal_":2},{"n":"battery_pct","v":80,"t":1714550400}]'
    (reason, detail), = refusals(decode(raw))
    assert reason == "schema" and "given twice: cal_" in detail


def test_a_repeated_field_is_named_on_its_own_record_past_nested_objects_and_non_objects() -> None:
    twice = b'{"n":"battery_pct","v":80,"t":1714550400,"cal_":1,"cal_":2}'
    # a record holding an object of its own, then a non-object: neither may shift the mapping
    for raw, at in ((b'[{"n":"gas_lel","v":1,"t":1714550400,"x":{"a":1,"a":2}},' + twice + b"]", "[1]:"),
                    (b'[7,{"n":"gas_lel","v":1,"t":1714550400},' + twice + b"]", "[2]:")):
        named = [d for _reason, d in refusals(decode(raw)) if d.startswith(at)]
        assert len(named) == 1 and "given twice: cal_" in named[0], (raw, named)


def test_a_base_must_understand_field_refuses_every_later_record() -> None:
    items = decode([{"n": "battery_pct", "v": 80, "t": NOW}, {"bx_": 1, "n": "gas_lel", "v": 1, "t": NOW},
                    {"n": "valve_closed", "v": 0, "t": NOW}])
    assert samples(items) == [("GAS-1", "battery_pct", 80.0, "", NOW)]
    assert [d for _, d in refusals(items)] == [
        "[1]: must-understand field(s) bx_ not understood by hazmon (RFC 8428 §4.4, §12.3.1)",
        "[2]: base must-understand field [1].bx_ applies to it and is not understood (RFC 8428 §4.4)",
    ]


def test_a_bad_base_field_refuses_the_pack() -> None:  # later records would resolve against it
    err = refused_whole([{"bn": 7, "n": "gas_lel", "v": 1}, {"n": "battery_pct", "v": 2}])
    assert err.reason == "schema" and "[0].bn: expected a string" in err.detail and "every later record" in err.detail


# --- round trip (hypothesis): a pack hazmon can read resolves to what was meant ---------------

_names = st.sampled_from(["gas_lel", "battery_pct", "valve_closed", "mains_power"])


@given(st.lists(st.tuples(_names, st.floats(-1e6, 1e6, allow_nan=False), st.integers(0, 3600)),
                min_size=1, max_size=20, unique_by=lambda r: (r[0], r[2])),
       st.floats(-100, 100, allow_nan=False), st.integers(1_600_000_000, 1_900_000_000))
def test_resolution_matches_the_resolved_form(records: list[tuple[str, float, int]], bv: float, bt: int) -> None:
    """The same readings sent with base fields (§4.1) and in resolved form (§4.6) decode alike."""
    packed = [{"bn": "urn:dev:ow:GAS-5:", "bt": bt, "bv": bv}] + [{"n": n, "v": v - bv, "t": t} for n, v, t in records]
    resolved = [{"n": f"urn:dev:ow:GAS-5:{n}", "v": v - bv + bv, "t": bt + t} for n, v, t in records]
    a, b = samples(decode(packed)), samples(decode(resolved))
    assert [(d, m, t) for d, m, _, _, t in a] == [(d, m, t) for d, m, _, _, t in b]
    assert all(abs(x[2] - y[2]) <= 1e-6 * max(1.0, abs(y[2])) for x, y in zip(a, b, strict=True))


def test_senml_pack_keeps_its_usable_records() -> None:
    """Through the bridge's per-message work: the usable readings are published, the refused
    records become dead letters with their reasons and the raw pack, nothing vanishes."""
    from hazmon.contracts import DeadLetter, ReadingBatch
    from hazmon.topics import Topics
    from ingest.directory import DeviceInfo, Directory, VendorInfo
    from ingest.pipeline import Pipeline

    topics = Topics("t")
    directory = Directory.build([VendorInfo("senmlco", "senml")], [DeviceInfo("GAS-1", "senmlco", "S1", "gas", expected_interval_s=60)])
    pack = json.dumps([
        {"bn": "GAS-1/", "bt": NOW, "n": "gas_lel", "v": 2.0},
        {"n": "note", "vs": "阀门已检修"},
        {"n": "battery_pct", "v": 80, "cal_": 1},
        {"n": "valve_closed", "vb": True},
    ]).encode()
    out = Pipeline(directory, topics).process("hazmon/v1/senmlco/GAS-1/telemetry", pack, NOW)
    readings = [ReadingBatch.model_validate_json(r.value) for r in out if r.topic == topics.readings]
    dead = [DeadLetter.model_validate_json(r.value) for r in out if r.topic == topics.deadletter]
    assert sorted(x.metric for b in readings for x in b.samples) == ["gas_lel", "valve_closed"]
    (dl,) = dead
    assert dl.reason.value == "schema" and dl.raw == pack and dl.vendor == "senmlco"
    assert "[1].vs: string values" in dl.detail and "cal_" in dl.detail
