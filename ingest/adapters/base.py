"""What an adapter returns, and the small parsing helpers every adapter shares.

An adapter turns the raw bytes of one MQTT message into *device-level* items — sample sets,
status reports, device-reported alarms — without knowing the registry. The bridge then joins
them with the registry (unknown device → dead letter ``unknown_device``), validates them
(:mod:`ingest.validation`) and builds the wire contracts. Items are plain slotted dataclasses,
not pydantic models: this is the hot path (a gateway packs ~20 readings in one message).

The one rule for adapters: whatever the bytes, ``decode`` returns items or raises
:class:`~hazmon.errors.AdapterError` carrying a dead-letter reason. Any other exception is a bug
(the bridge still catches it and dead-letters the message with reason ``internal``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

import msgspec

from hazmon.catalog import METRICS
from hazmon.contracts import INT64_MAX, INT64_MIN, DeadLetterReason, json_problem, text_problem
from hazmon.errors import AdapterError

__all__ = [
    "BEIJING",
    "MessageContext",
    "RawSample",
    "SampleSet",
    "StatusReport",
    "AlarmReport",
    "Refusal",
    "Item",
    "Adapter",
    "fail",
    "parse_json",
    "parse_ts",
    "as_float",
    "as_int",
    "as_str",
    "check_items",
    "Checked",
]

#: Devices that send a wall-clock time without an offset send Beijing time (UTC+8): the
#: GB/T 26875.3 time tag is local time, and so are most vendor JSON "time" strings.
BEIJING = timezone(timedelta(hours=8), "CST")
_json_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What the bridge knows about a message before decoding it (from the MQTT topic)."""

    topic: str
    vendor: str
    device_id: str  # "" when the topic does not name a device (payload must)
    kind: str  # telemetry | status | event
    received: float  # epoch seconds, bridge clock


@dataclass(slots=True)
class RawSample:
    metric: str
    value: float  # may be NaN/inf: validation flags it
    unit: str = ""
    ts: float | None = None  # device time, epoch seconds; None = device sent none
    seq: int | None = None
    converted: bool = False  # adapter already normalised the unit (ppm → %LEL)


@dataclass(slots=True)
class SampleSet:
    device_id: str
    samples: list[RawSample]


@dataclass(slots=True)
class StatusReport:
    device_id: str
    state: str | None = None  # "online" | "offline" | None (health only)
    reason: str = "reported"  # reported | lwt | heartbeat
    battery_pct: float | None = None
    signal_dbm: float | None = None
    mains_power: bool | None = None
    ts: float | None = None


@dataclass(slots=True)
class AlarmReport:
    device_id: str
    code: str
    active: bool = True
    component: str = ""
    zone: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    ts: float | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A part of a message the adapter cannot use while the rest is usable (a SenML record with a
    string value beside numeric ones): the bridge makes it a dead letter with ``reason`` next to
    the message's readings, so nothing leaves a message without a trace."""

    device_id: str
    reason: DeadLetterReason
    detail: str


Item = SampleSet | StatusReport | AlarmReport | Refusal


class Adapter(Protocol):
    """A payload format, registered by ``name`` (the ``vendors.adapter`` column)."""

    name: str

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        """Items found in ``payload``; raises only :class:`AdapterError`."""
        ...


def fail(reason: DeadLetterReason, detail: str) -> AdapterError:
    return AdapterError(reason.value, detail[:500])


def parse_json(payload: bytes) -> Any:
    """JSON (msgspec: strict UTF-8, ~3× the stdlib's speed on the hot path)."""
    try:
        return _json_decode(payload)
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        raise fail(DeadLetterReason.MALFORMED, f"not JSON: {str(exc)[:200]}") from None


_MAX_EPOCH = 4102444800.0  # 2100-01-01: beyond this a number is not a plausible time
_MS_THRESHOLD = 1e11  # numbers above this are epoch milliseconds (1e11 s is year 5138)


def parse_ts(value: Any, where: str = "ts") -> float | None:
    """Epoch seconds from epoch s/ms numbers or ISO-8601 strings (no offset = Beijing time).

    ``None`` means the device sent no time; a value that is present but unusable raises
    ``bad_timestamp`` rather than being silently replaced.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: boolean is not a time")
    if isinstance(value, int | float):
        t = float(value)
        if not math.isfinite(t) or t < 0:
            raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: {value!r} is not a time")
        if t > _MS_THRESHOLD:
            t /= 1000.0
        if t > _MAX_EPOCH:
            raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: {value!r} is beyond year 2100")
        return t
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: string too long for a time")
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: {text!r} is not ISO-8601") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=BEIJING)
        try:
            t = dt.astimezone(UTC).timestamp()
        except (OverflowError, ValueError):
            raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: {text!r} out of range") from None
        if t < 0 or t > _MAX_EPOCH:
            raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: {text!r} out of range")
        return t
    raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: {type(value).__name__} is not a time")


def as_float(value: Any, where: str) -> float:
    """A number (bools count as 0/1: vendors send switch states as true/false)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if isinstance(value, str):
        # a few vendors quote numbers; "NaN"/"inf" pass through and get flagged not_finite
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise fail(DeadLetterReason.SCHEMA, f"{where}: expected a number, got {type(value).__name__}")


def as_int(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if -(2**63) <= value < 2**63:  # storage keeps seq as bigint
            return value
        raise fail(DeadLetterReason.SCHEMA, f"{where}: integer out of 64-bit range")
    raise fail(DeadLetterReason.SCHEMA, f"{where}: expected an integer, got {type(value).__name__}")


def as_str(value: Any, where: str, max_len: int = 64) -> str:
    if isinstance(value, str) and 0 < len(value) <= max_len:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise fail(DeadLetterReason.SCHEMA, f"{where}: expected a non-empty string")


def as_dict(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise fail(DeadLetterReason.SCHEMA, f"{where}: expected an object, got {type(value).__name__}")


def as_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, list):
        return value
    raise fail(DeadLetterReason.SCHEMA, f"{where}: expected an array, got {type(value).__name__}")


__all__ += ["as_dict", "as_list"]


#: names checked clean before (the catalogue's metrics and units, then what vendors sent): the
#: hot path is a set lookup, not a regex per sample
_CLEAN: set[str] = {""} | set(METRICS) | {m.unit for m in METRICS.values()}


def _label(value: object, where: str, max_len: int, *, empty: bool = True) -> None:
    if type(value) is str and value in _CLEAN and (value or empty):
        return
    if not isinstance(value, str):
        raise fail(DeadLetterReason.SCHEMA, f"{where}: expected a string, got {type(value).__name__}")
    if len(value) > max_len or (not empty and not value):
        raise fail(DeadLetterReason.SCHEMA, f"{where}: length {len(value)} outside {0 if empty else 1}..{max_len}")
    problem = text_problem(value)
    if problem:
        raise fail(DeadLetterReason.SCHEMA, f"{where}: {problem}")
    if len(value) <= 16 and len(_CLEAN) < 10_000:  # bounded: invented names cannot grow it forever
        _CLEAN.add(value)


def _finite_or_none(value: float | None, where: str) -> None:
    if value is not None and not math.isfinite(value):
        raise fail(DeadLetterReason.SCHEMA, f"{where}: {value} is not a finite number")


def check_items(items: list[Item]) -> list[Item]:
    """The contracts' storage rules (:mod:`hazmon.contracts`: no control characters, 64-bit
    integers, finite numbers where no flag says otherwise, bounded lengths and JSON) over what
    an adapter found, so a message no stage can store is a dead letter ``schema`` here, at the
    edge, whatever adapter decoded it. A sample's NaN/±inf value stays (stored flagged
    ``not_finite``)."""
    for n, item in enumerate(items):
        if isinstance(item, Refusal):
            continue  # a dead letter: its detail is cut to size where the dead letter is built
        at = f"item[{n}]"
        _label(item.device_id, f"{at}.device_id", 64, empty=False)
        if isinstance(item, SampleSet):
            clean = _CLEAN
            for s in item.samples:
                seq, value, ts = s.seq, s.value, s.ts
                if (s.metric in clean and s.metric and s.unit in clean
                        and (seq is None or INT64_MIN <= seq <= INT64_MAX)
                        and type(value) is float and (ts is None or ts - ts == 0.0)):
                    continue  # the hot path: known names, in range (ts - ts is 0.0 only when finite)
                _check_sample(item.samples.index(s), s)
        elif isinstance(item, AlarmReport):
            _label(item.code, f"{at}.code", 64, empty=False)
            _label(item.component, f"{at}.component", 64)
            _label(item.zone, f"{at}.zone", 128)
            problem = json_problem(item.detail, f"{at}.detail")
            if problem:
                raise fail(DeadLetterReason.SCHEMA, problem)
            _finite_or_none(item.ts, f"{at}.ts")
        elif isinstance(item, StatusReport):
            _finite_or_none(item.battery_pct, f"{at}.battery_pct")
            _finite_or_none(item.signal_dbm, f"{at}.signal_dbm")
            _finite_or_none(item.ts, f"{at}.ts")
    return items


def _check_sample(i: int, s: RawSample) -> None:
    here = f"samples[{i}]"
    _label(s.metric, f"{here}.metric", 64, empty=False)
    _label(s.unit, f"{here}.unit", 16)
    if s.seq is not None and not INT64_MIN <= s.seq <= INT64_MAX:
        raise fail(DeadLetterReason.SCHEMA, f"{here}.seq: {s.seq} out of 64-bit range (PostgreSQL bigint)")
    if not isinstance(s.value, float | int) or isinstance(s.value, bool):
        raise fail(DeadLetterReason.SCHEMA, f"{here}.value: expected a number")
    _finite_or_none(s.ts, f"{here}.ts")


class Checked:
    """An adapter whose items pass :func:`check_items` (what :func:`ingest.adapters.get_adapter`
    hands out, so a new adapter cannot forget the rules)."""

    def __init__(self, inner: Adapter) -> None:
        self.inner = inner
        self.name = inner.name

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        return check_items(self.inner.decode(payload, ctx))
