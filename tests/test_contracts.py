"""Contract round-trips: every wire model survives JSON and back unchanged (hypothesis)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

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

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)
domains = st.from_regex(r"[a-z][a-z0-9_]{1,10}", fullmatch=True)
text = st.text(max_size=40)
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
    unit=st.text(max_size=8),
    ts=times,
    seq=st.one_of(st.none(), st.integers(min_value=0, max_value=2**53)),
    flags=st.lists(st.sampled_from(list(ReadingFlag)), max_size=3, unique=True).map(tuple),
)


@settings(max_examples=200)
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


@settings(max_examples=100)
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
        detail=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        ts=times, received_at=times,
    ),
)
def test_status_and_device_event_round_trip(status: DeviceStatus, dev_event: DeviceEvent) -> None:
    assert DeviceStatus.model_validate_json(status.model_dump_json()) == status
    assert DeviceEvent.model_validate_json(dev_event.model_dump_json()) == dev_event


@settings(max_examples=100)
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
