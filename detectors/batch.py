"""What moves between the detector loop's steps: a consumed record, one micro-batch's output
(rows to store, events and dead letters to produce), a refused record's dead letter, and the
run's counters. No I/O."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from hazmon.contracts import DeadLetter, DeadLetterReason, Event

__all__ = ["Message", "BatchOutput", "RunStats", "dead_letter", "validation_reason", "validation_detail"]


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed Kafka record: its value and where it came from (``topic:partition:offset``)."""

    value: bytes
    source: str


@dataclass(slots=True)
class BatchOutput:
    #: clean readings (no flags): (device_id, metric, ts, value, unit, seq, received_at) —
    #: COPY skips the empty flags column (its array encoding is ~20 % of the COPY cost)
    readings: list[tuple] = field(default_factory=list)
    #: flagged readings: (device_id, metric, ts, value, unit, seq, flags, received_at)
    flagged_readings: list[tuple] = field(default_factory=list)
    #: (device_id, metric) → (device_id, metric, ts, value, unit, flags): newest per key
    latest: dict[tuple[str, str], tuple] = field(default_factory=dict)
    #: (device_id, ts, reason, state, battery_pct, signal_dbm, mains_power, received_at)
    statuses: list[tuple] = field(default_factory=list)
    #: device_id → newest received_at heard (readings, device events, status)
    seen: dict[str, datetime] = field(default_factory=dict)
    #: device_id → (state, since): presence transitions (detectors/offline.py)
    presence: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    #: (device_id, ts, code, component, active, zone, detail_json, received_at)
    device_events: list[tuple] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: the canaries' announcements (detectors/canary.py): produced after the store, never stored
    canaries: list[Event] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    #: per applied message, in order: (message, end of its rows in readings, flagged_readings,
    #: device_events, statuses) — message i's rows are the slices between marks i−1 and i
    marks: list[tuple[Message, int, int, int, int]] = field(default_factory=list)
    late: int = 0
    flagged: int = 0


@dataclass
class RunStats:
    readings: int = 0
    consumed: int = 0
    batches: int = 0
    events: int = 0
    deadletters: int = 0
    detect_s: float = 0.0
    write_s: float = 0.0
    started: float = 0.0
    first_record: float = 0.0
    last_record: float = 0.0


_DEVICE_HINT = re.compile(rb'"device_id"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._:-]{0,63})"')


def dead_letter(msg: Message, reason: DeadLetterReason, detail: str, at: datetime | None, device_id: str = "",
                vendor: str = "") -> DeadLetter:
    """The detectors' dead letter of a record (its id is stable: a replay makes the same one)."""
    if not device_id:  # a record refused before decoding: its device as far as it can be read
        m = _DEVICE_HINT.search(msg.value[:4096])
        device_id = m.group(1).decode() if m else ""
    return DeadLetter(
        id=hashlib.sha256(f"detectors|{msg.source}|{reason.value}".encode()).hexdigest()[:32],
        stage="detectors", source=msg.source, vendor=vendor, device_id=device_id, reason=reason,
        detail=detail[:2000], raw=msg.value, received_at=at or datetime.now(UTC),
    )


def validation_reason(exc: ValidationError) -> DeadLetterReason:
    errs = exc.errors()
    if errs and errs[0].get("type") == "json_invalid":
        return DeadLetterReason.MALFORMED
    if errs and errs[0].get("loc", ("",))[0] == "v":
        return DeadLetterReason.UNSUPPORTED_VERSION
    return DeadLetterReason.SCHEMA


def validation_detail(exc: ValidationError) -> str:
    errs = exc.errors()
    first: dict = dict(errs[0]) if errs else {}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return f"{loc}: {first.get('msg', '')} ({len(errs)} error(s))"
