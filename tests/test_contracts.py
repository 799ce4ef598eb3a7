"""Contract round-trips: every wire model survives JSON and back unchanged (hypothesis)."""

from __future__ import annotations

import json
import math
import re
import typing
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import hazmon.contracts as contracts
from hazmon.contracts import (
    DeadLetter,
    DeadLetterReason,
    DeviceEvent,
    DeviceStatus,
    Event,
    EventState,
    Evidence,
    NoticeLevel,
    NotificationRequest,
    Reading,
    ReadingBatch,
    ReadingFlag,
    Recipient,
    RecipientRole,
    Sample,
    Severity,
    event_id,
)
from hazmon.topics import Topics

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)
domains = st.from_regex(r"[a-z][a-z0-9_]{1,10}", fullmatch=True)
#: what a label may hold: anything but control characters and lone surrogates (hazmon.contracts.Label)
clean = st.characters(blacklist_categories=("Cc", "Cs"))
text = st.text(clean, max_size=40)
# any offset: the contract normalises to UTC
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)

samples = st.builds(
    Sample,
    metric=st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
    value=st.one_of(st.none(), finite),
    unit=st.text(clean, max_size=8),
    ts=times,
    seq=st.one_of(st.none(), st.integers(min_value=0, max_value=2**53)),
    flags=st.lists(st.sampled_from(list(ReadingFlag)), max_size=3, unique=True).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        ReadingBatch,
        device_id=ids,
        site_id=ids,
        domain=domains,
        vendor=ids,
        model=text,
        received_at=times,
        source=text,
        samples=st.lists(samples, min_size=1, max_size=5).map(tuple),
    )
)
def test_reading_batch_round_trip(batch: ReadingBatch) -> None:
    back = ReadingBatch.model_validate_json(batch.model_dump_json())
    assert back == batch
    assert back.received_at.tzinfo == UTC
    flat = back.readings()
    assert len(flat) == len(batch.samples)
    assert all(isinstance(r, Reading) and r.device_id == batch.device_id for r in flat)


def test_non_finite_value_travels_as_null() -> None:
    now = datetime.now(UTC)
    batch = ReadingBatch(
        device_id="g1", site_id="s1", domain="gas", vendor="v", received_at=now,
        samples=(Sample(metric="gas_lel", value=math.inf, ts=now, flags=(ReadingFlag.NOT_FINITE,)),),
    )
    back = ReadingBatch.model_validate_json(batch.model_dump_json())
    assert back.samples[0].value is None
    assert back.samples[0].flags == (ReadingFlag.NOT_FINITE,)


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Sample(metric="gas_lel", value=1.0, ts=datetime(2026, 1, 1))


def test_future_schema_version_is_refused() -> None:
    now = datetime.now(UTC).isoformat()
    raw = json.dumps({"v": 2, "device_id": "d", "site_id": "s", "vendor": "v", "ts": now, "received_at": now})
    with pytest.raises(ValidationError):
        DeviceStatus.model_validate_json(raw)


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        DeviceStatus,
        device_id=ids, site_id=ids, vendor=ids,
        battery_pct=st.one_of(st.none(), st.floats(0, 100)),
        signal_dbm=st.one_of(st.none(), st.floats(-150, 0)),
        ts=times, received_at=times,
    ),
    st.builds(
        DeviceEvent,
        device_id=ids, site_id=ids, domain=domains, vendor=ids,
        code=st.from_regex(r"[a-z_]{1,20}", fullmatch=True), component=text, zone=text,
        detail=st.dictionaries(st.text(clean, max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
        ts=times, received_at=times,
    ),
)
def test_status_and_device_event_round_trip(status: DeviceStatus, dev_event: DeviceEvent) -> None:
    assert DeviceStatus.model_validate_json(status.model_dump_json()) == status
    assert DeviceEvent.model_validate_json(dev_event.model_dump_json()) == dev_event


@settings(max_examples=100, deadline=None)
@given(
    device=ids,
    kind=st.sampled_from(["gas.high", "elevator.trapped", "fire.alarm", "device.offline"]),
    start=times,
    severity=st.sampled_from(list(Severity)),
    state=st.sampled_from(list(EventState)),
    evidence=st.lists(st.builds(Evidence, ts=times, metric=text, value=st.one_of(st.none(), finite)), max_size=3),
)
def test_event_round_trip_and_deterministic_id(device, kind, start, severity, state, evidence) -> None:
    eid = event_id(device, kind, start)
    assert eid == event_id(device, kind, start.astimezone(UTC))  # same instant, any offset
    event = Event(
        id=eid, kind=kind, domain=kind.split(".")[0], severity=severity, state=state,
        device_id=device, site_id="s1", starts_at=start, detected_at=start, evidence=tuple(evidence),
    )
    assert Event.model_validate_json(event.model_dump_json()) == event


@given(raw=st.binary(max_size=200), reason=st.sampled_from(list(DeadLetterReason)))
def test_dead_letter_keeps_raw_bytes(raw: bytes, reason: DeadLetterReason) -> None:
    dl = DeadLetter(id="x1", stage="ingest", source="hazmon/v1/a/b/telemetry", reason=reason,
                    raw=raw, received_at=datetime.now(UTC))
    back = DeadLetter.model_validate_json(dl.model_dump_json())
    assert back.raw == raw and back == dl


def test_notification_request_round_trip() -> None:
    req = NotificationRequest(
        id="n1", alert_id="a1", channel="sms",
        recipient=Recipient(role=RecipientRole.GRID_MEMBER, name="王网格", phone="13900000001", rule="territory:v01"),
        notice_level=NoticeLevel.WARNING, template="alarm_grid", body="【区应急指挥中心】…",
        created_at=datetime.now(UTC),
    )
    assert NotificationRequest.model_validate_json(req.model_dump_json()) == req
    assert NoticeLevel.WARNING.zh == "风险警示单" and NoticeLevel.ACCOUNTABILITY.step == 4


def test_severity_order_and_labels() -> None:
    ordered = sorted(Severity, key=lambda s: s.rank, reverse=True)
    assert [s.zh for s in ordered] == ["红", "橙", "黄", "蓝"]


def test_bad_ids_and_kinds_are_refused() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError):
        Event(id="abcdefgh", kind="NoDot", domain="gas", severity="red", state="firing",
              device_id="d", site_id="s", starts_at=now, detected_at=now)
    with pytest.raises(ValidationError):
        Reading(device_id="bad id with spaces", site_id="s", domain="gas", vendor="v", metric="m",
                value=1.0, ts=now, received_at=now)
    with pytest.raises(ValidationError):
        Sample(metric="gas_lel", value=1.0, ts=now, flags=("made_up",))


# --- storage rules (issue 17): what PostgreSQL cannot take is refused at the contract ------------

from hazmon.contracts import INT64_MAX, json_problem, safe_text, text_problem  # noqa: E402

#: a string holding at least one control character or lone surrogate
poisoned = st.tuples(text, st.characters(categories=("Cc", "Cs")), text).map(lambda t: t[0] + t[1] + t[2])


@settings(max_examples=150, deadline=None)
@given(bad=poisoned)
def test_control_characters_and_surrogates_are_refused_in_every_label(bad: str) -> None:
    now = datetime.now(UTC)
    assert text_problem(bad)
    for field in ("zone", "component", "code"):
        with pytest.raises(ValidationError):
            DeviceEvent(**{"device_id": "d1", "site_id": "s1", "domain": "elevator", "vendor": "v", "code": "trapped",
                           "ts": now, "received_at": now, field: bad[:64]})
    with pytest.raises(ValidationError):
        Sample(metric=bad[:64], value=1.0, ts=now)
    with pytest.raises(ValidationError):
        Event(id="abcdefgh", kind="gas.high", domain="gas", severity="red", state="firing", device_id="d",
              site_id="s", starts_at=now, detected_at=now, zone=bad[:128])


def test_free_text_takes_newlines_not_nul() -> None:
    assert text_problem("第一行\n第二行\t", free_text=True) is None
    assert text_problem("a\x00b", free_text=True) == "holds control character U+0000 at position 1"
    assert text_problem("a\ud800", free_text=True)


@pytest.mark.parametrize("detail, problem", [
    ({"n": 2**63}, "detail.n: integer out of 64-bit range"),
    ({"n": [1, -(2**63) - 1]}, "detail.n[1]: integer out of 64-bit range"),
    ({"x": math.nan}, "detail.x: nan is not a finite number"),
    ({"x": {"y": math.inf}}, "detail.x.y: inf is not a finite number"),
    ({"s": "a\x00"}, "detail.s: holds control character U+0000 at position 1"),
    ({"k\x00": 1}, "detail: key 'k\\x00': holds control character U+0000 at position 1"),
    ({"s": "x" * 2001}, "detail.s: string longer than 2000"),
    ({"d": [[[[[[[[[1]]]]]]]]]}, "nested deeper than 8 levels"),
    ({"l": list(range(2001))}, "more than 2000 values"),
])
def test_device_event_detail_must_fit_jsonb(detail: dict, problem: str) -> None:
    now = datetime.now(UTC)
    assert problem in (json_problem(detail) or "")
    with pytest.raises(ValidationError, match="detail"):
        DeviceEvent(device_id="d1", site_id="s1", domain="fire", vendor="v", code="fault", detail=detail, ts=now,
                    received_at=now)


def test_seq_must_fit_bigint() -> None:
    now = datetime.now(UTC)
    assert Sample(metric="gas_lel", value=1.0, ts=now, seq=INT64_MAX).seq == INT64_MAX
    for seq in (INT64_MAX + 1, 2**64 - 1, -(2**63) - 1):
        with pytest.raises(ValidationError, match="seq"):
            Sample(metric="gas_lel", value=1.0, ts=now, seq=seq)


def test_timestamp_beyond_utc_range_is_a_validation_error() -> None:
    # 9999-12-31T23:00-05:00 has no UTC time: a ValidationError (was an OverflowError that
    # escaped every `except ValidationError`)
    with pytest.raises(ValidationError, match="out of range"):
        Sample.model_validate_json('{"metric": "gas_lel", "value": 1, "ts": "9999-12-31T23:00:00-05:00"}')


@settings(max_examples=150, deadline=None)
@given(detail=st.text(max_size=300), vendor=st.text(max_size=70), raw=st.binary(max_size=50))
def test_dead_letter_takes_anything_and_stays_storable(detail: str, vendor: str, raw: bytes) -> None:
    dl = DeadLetter(id="x1", stage="ingest", source="t\x00" + vendor, vendor=vendor, device_id=vendor,
                    reason=DeadLetterReason.SCHEMA, detail=detail * 10, raw=raw, received_at=datetime.now(UTC))
    for value in (dl.source, dl.vendor, dl.device_id, dl.detail):
        assert "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        value.encode("utf-8")  # PostgreSQL and Kafka take it
    assert len(dl.detail) <= 2000
    assert safe_text("a\x00b") == "a\\u0000b"
    assert DeadLetter.model_validate_json(dl.model_dump_json()) == dl


@pytest.mark.parametrize("sample, why", [
    ({"metric": "gas\u0000lel", "value": 1, "ts": "2026-01-01T00:00:00Z"}, "metric"),
    ({"metric": "gas_lel", "unit": "%\u0007", "value": 1, "ts": "2026-01-01T00:00:00Z"}, "unit"),
    ({"metric": "gas_lel", "value": 1, "ts": "2026-01-01T00:00:00Z", "seq": 2**64 - 1}, "seq"),
])
def test_detector_wire_decoder_is_as_strict_as_the_contract(sample: dict, why: str) -> None:
    from detectors.decode import DecodeError, decode_batch

    raw = json.dumps({"v": 1, "device_id": "g1", "site_id": "s1", "domain": "gas", "vendor": "v",
                      "received_at": "2026-01-01T00:00:00Z", "samples": [sample]}).encode()
    with pytest.raises(ValidationError):
        ReadingBatch.model_validate_json(raw)
    with pytest.raises(DecodeError, match=why) as err:
        decode_batch(raw)
    assert err.value.reason == DeadLetterReason.SCHEMA


# --- docstrings name real fields ---------------------------------------------------------------

#: DeviceStatus and DeviceEvent docstrings list values (``lwt``, ``trapped``), not field names
_DOC_FIELD_MODELS = ["Sample", "Reading", "ReadingBatch", "IngestBeat", "Event", "DeadLetter", "NotificationRequest"]


@pytest.mark.parametrize("name", _DOC_FIELD_MODELS)
def test_docstring_names_only_real_fields(name: str) -> None:
    """Every ````name```` in a contract's docstring is one of its fields, a field of a model it
    holds, or a topic (issue 16: ReadingBatch documented a ``source_index`` that never existed)."""
    model = getattr(contracts, name)
    known = set(model.model_fields) | {p for p in vars(Topics) if not p.startswith("_")}
    for field in model.model_fields.values():
        for arg in typing.get_args(field.annotation) or (field.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                known |= set(arg.model_fields)
    named = set(re.findall(r"``([a-z][a-z0-9_]*)``", model.__doc__ or ""))
    assert named <= known, f"{name} docstring names {sorted(named - known)}, not fields"
