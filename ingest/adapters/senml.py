"""``senml``: SenML JSON (RFC 8428, with the feature versions of RFC 9100), the IETF format many
gateways already speak.

A pack is an array of records; each is resolved as RFC 8428 §4.6 says before hazmon reads it:

* **base fields** (``bn``, ``bt``, ``bu``, ``bv``, ``bs``, ``bver``) apply to the record they
  stand in and every later one, until a later record gives the field again (§4.1);
* **name** = ``bn + n``, non-empty, only ``A–Z a–z 0–9 - : . / _``, starting with a letter or
  digit (§4.5.1). hazmon reads it as ``<device>:<metric>`` or ``<device>/<metric>`` (a
  ``urn:dev:<type>:`` prefix is dropped); a name without a separator is a metric of the topic's
  device; a name ending in the separator (RFC 8428 §5.1.3's style: one sensor, several
  measurements told apart by unit) takes its metric from the unit (``%LEL`` → ``gas_lel``,
  ``Cel`` → ``temperature_c`` …);
* **time** = ``bt + t`` (§4.5.3): below 2**28 it is relative to now (negative = in the past),
  from 2**28 up absolute (seconds since 1970); a record with neither is "roughly now" and is
  stored with the ``ts_missing`` flag;
* **value**: at most one of ``v`` (number, plus ``bv``), ``vb`` (boolean → 1/0), ``vs``
  (string), ``vd`` (data); a record without a value needs a sum ``s`` (plus ``bs``), stored
  as the value; with both, the sum is the sample ``<metric>_sum`` (the registry's catalogue
  decides whether hazmon keeps it). ``ut`` (update time) must be a number ≥ 0; hazmon's
  offline detection uses the registry's heartbeat, not ``ut``;
* **version** ``bver``: 10 (RFC 8428) or 26 (10 + RFC 9100 feature 4, secondary units of
  RFC 8798); a pack has one version (§4.4): another number, or a pack mixing two, is refused
  whole (``unsupported_version``) — RFC 8428 §4.4 forbids using it;
* **must-understand** fields (a label ending in ``_``, §4.4/§12.3.1): hazmon understands none, so
  a record with one is refused, and a base one (``b…_``) refuses every later record it applies
  to; unknown labels without ``_`` are ignored, as the RFC requires.

One unusable record does not take its pack down: it becomes a :class:`Refusal` (a dead letter
with its index and reason, next to the pack's usable readings). A pack with nothing usable is
refused whole, with the first record's reason. A record repeating an earlier one's resolved name
and time is refused (the reading's key is device, metric and time: one would silently replace
the other).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hazmon.contracts import DeadLetterReason
from hazmon.errors import HazmonError
from ingest.adapters.base import (
    Item,
    MessageContext,
    RawSample,
    Refusal,
    SampleSet,
    as_list,
    fail,
    parse_json,
)
from ingest.adapters.common import decode_events, decode_status

__all__ = ["SenML", "ADAPTER", "SENML_UNITS", "UNIT_METRICS", "SUPPORTED_VERSIONS"]

#: SenML units (RFC 8428 §12.1, RFC 8798 secondary units) → hazmon catalogue units
SENML_UNITS = {"Cel": "°C", "%": "%", "m/s": "m/s", "%LEL": "%LEL", "%EL": "%", "/": "", "1": "", "ppm": "ppm"}
#: the metric of a record whose name names only the sensor (RFC 8428 §5.1.3): by its unit
UNIT_METRICS = {"%LEL": "gas_lel", "Cel": "temperature_c", "m/s": "speed_mps", "%EL": "battery_pct"}
#: bver values understood: RFC 8428's 10, and 10 + 2**4 (RFC 9100 §4: secondary units)
SUPPORTED_VERSIONS = frozenset({10, 26})
_DEFAULT_VERSION = 10
_RELATIVE_LIMIT = 2.0**28
_LATEST = 4102444800.0  # 2100-01-01: later absolute times are refused
_MAX_RECORDS = 10_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*")
_BASE = frozenset({"bn", "bt", "bu", "bv", "bs", "bver"})
_VALUES = ("v", "vs", "vb", "vd")


class _Refused(HazmonError):
    """One record cannot be used (internal: becomes a :class:`Refusal`)."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _number(rec: dict[str, Any], key: str, i: int) -> float:
    value = rec[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}].{key}: expected a number (RFC 8428 §4.2)")
    value = float(value)
    if not math.isfinite(value):
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}].{key}: {value} is not a finite number")
    return value


def _text(rec: dict[str, Any], key: str, i: int) -> str:
    value = rec[key]
    if not isinstance(value, str):
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}].{key}: expected a string (RFC 8428 §4.2)")
    return value


def _split_name(name: str, default_device: str) -> tuple[str, str]:
    if name.startswith("urn:dev:"):
        rest = name[len("urn:dev:") :]
        _, _, rest = rest.partition(":")  # drop the URN type (mac, ow, …)
        name = rest
    cut = max(name.rfind(":"), name.rfind("/"))
    if cut < 0:
        return default_device, name
    return name[:cut], name[cut + 1 :]


class _Pairs(dict[str, Any]):
    """A JSON object as parsed by :func:`_repeated_labels`, with the keys it gave twice."""

    twice: list[str] = []


def _pairs(items: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs(items)
    keys = [k for k, _ in items]
    if len(keys) != len(out):
        out.twice = sorted({k for k in keys if keys.count(k) > 1})
    return out


def _repeated_labels(payload: bytes) -> dict[int, list[str]]:
    """Labels a record gives twice, by record index (the slow parse, only when a pack carries a
    must-understand label: a repeated one is named in the refusal). Each object knows its own
    repeated keys, so a record holding objects, or a pack holding non-objects, maps right."""
    try:
        pack = json.loads(payload, object_pairs_hook=_pairs)
    except ValueError:
        return {}
    if not isinstance(pack, list):
        return {}
    return {i: rec.twice for i, rec in enumerate(pack) if isinstance(rec, _Pairs) and rec.twice}


class _Base:
    """The base fields in force (RFC 8428 §4.1)."""

    __slots__ = ("bn", "bt", "bu", "bv", "bs", "has_bt", "version", "version_at", "must")

    def __init__(self) -> None:
        self.bn, self.bt, self.bu, self.bv, self.bs = "", 0.0, "", 0.0, 0.0
        self.has_bt = False
        self.version, self.version_at = _DEFAULT_VERSION, -1
        self.must = ""  # a base must-understand label in force: every later record is refused

    def take(self, rec: dict[str, Any], i: int) -> None:
        if "bn" in rec:
            self.bn = _text(rec, "bn", i)
        if "bt" in rec:
            self.bt, self.has_bt = _number(rec, "bt", i), True
        if "bu" in rec:
            self.bu = _text(rec, "bu", i)
        if "bv" in rec:
            self.bv = _number(rec, "bv", i)
        if "bs" in rec:
            self.bs = _number(rec, "bs", i)


def _version(rec: dict[str, Any], i: int, base: _Base) -> None:
    """``bver`` of this record (a pack-level refusal: §4.4 forbids using a pack of another version)."""
    if "bver" not in rec:
        version = base.version
    else:
        version = rec["bver"]
        if isinstance(version, bool) or not isinstance(version, int) or version <= 0:
            raise fail(DeadLetterReason.UNSUPPORTED_VERSION, f"[{i}].bver: {version!r} is not a positive integer (RFC 8428 §4.4)")
        if version not in SUPPORTED_VERSIONS:
            unknown = [bit for bit in range(4, 53) if version >> bit & 1 and bit != 4]
            why = (f"feature bit(s) {', '.join(map(str, unknown))} not understood (RFC 9100 §2)" if unknown and version & 15 == 10
                   else "not an RFC 8428 version (10; RFC 9100 §3)")
            raise fail(DeadLetterReason.UNSUPPORTED_VERSION, f"[{i}].bver: {version}: {why}; hazmon reads 10 and 26")
    if base.version_at >= 0 and version != base.version:
        raise fail(DeadLetterReason.UNSUPPORTED_VERSION,
                   f"[{i}].bver: {version} mixes versions with [{base.version_at}]'s {base.version}: "
                   "a pack has one version (RFC 8428 §4.4)")
    if "bver" in rec and base.version_at < 0:
        base.version_at = i
    base.version = version


def _must_understand(rec: dict[str, Any], i: int, base: _Base, repeated: dict[int, list[str]]) -> None:
    labels = [k for k in rec if k.endswith("_")]
    for label in labels:
        if label.startswith("b"):
            base.must = base.must or f"[{i}].{label}"
    if labels:
        twice = [k for k in repeated.get(i, ()) if k.endswith("_")]
        again = f" (given twice: {', '.join(twice)})" if twice else ""
        raise _Refused(DeadLetterReason.SCHEMA,
                       f"[{i}]: must-understand field(s) {', '.join(sorted(labels))} not understood by hazmon{again} "
                       "(RFC 8428 §4.4, §12.3.1)")
    if base.must:
        raise _Refused(DeadLetterReason.SCHEMA,
                       f"[{i}]: base must-understand field {base.must} applies to it and is not understood (RFC 8428 §4.4)")


def _value(rec: dict[str, Any], i: int, base: _Base) -> tuple[float | None, float | None]:
    """(value, sum) of one record; (None, None) for a record that only sets base fields."""
    given = [k for k in _VALUES if k in rec]
    if len(given) > 1:
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}]: more than one value field ({', '.join(given)}; RFC 8428 §4.2)")
    total = base.bs + _number(rec, "s", i) if "s" in rec else None
    if not given:
        if total is None and "n" not in rec and not rec.keys() - _BASE - {"u", "t", "ut"}:
            return None, None  # a record that sets base fields only
        if total is None:
            raise _Refused(DeadLetterReason.SCHEMA, f"[{i}]: record has no value (v, vb, vs, vd) and no sum s (RFC 8428 §4.2)")
        return total, None
    kind = given[0]
    if kind == "v":
        return base.bv + _number(rec, "v", i), total
    if kind == "vb":
        if not isinstance(rec["vb"], bool):
            raise _Refused(DeadLetterReason.SCHEMA, f"[{i}].vb: expected true/false (RFC 8428 §4.2)")
        return (1.0 if rec["vb"] else 0.0), total
    what = "string" if kind == "vs" else "data"
    raise _Refused(DeadLetterReason.SCHEMA, f"[{i}].{kind}: {what} values cannot be stored: hazmon's readings are numbers")


def _time(rec: dict[str, Any], i: int, base: _Base, received: float) -> float | None:
    t_rel = _number(rec, "t", i) if "t" in rec else None
    if "ut" in rec and _number(rec, "ut", i) < 0:
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}].ut: update time must not be negative (RFC 8428 §4.5.4)")
    if t_rel is None and not base.has_bt:
        return None  # roughly now, and the device did not say (ts_missing)
    t = base.bt + (t_rel or 0.0)
    ts = received + t if t < _RELATIVE_LIMIT else t
    if ts < 0 or ts > _LATEST:
        raise _Refused(DeadLetterReason.BAD_TIMESTAMP, f"[{i}]: time {t} resolves to {ts:.0f}, out of range")
    return ts


def _sample(rec: dict[str, Any], i: int, base: _Base, ctx: MessageContext) -> tuple[str, list[RawSample]] | None:
    value, total = _value(rec, i, base)
    n = _text(rec, "n", i) if "n" in rec else ""
    if value is None:
        return None
    full = base.bn + n
    if not full:
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}]: record has no name (bn + n is empty; RFC 8428 §4.5.1)")
    if _NAME.fullmatch(full) is None:
        raise _Refused(DeadLetterReason.SCHEMA,
                       f"[{i}]: name (device and metric) {full[:80]!r} is not A–Z a–z 0–9 - : . / _ starting with a letter "
                       "or digit (RFC 8428 §4.5.1)")
    unit_raw = _text(rec, "u", i) if "u" in rec else base.bu
    device, metric = _split_name(full, ctx.device_id)
    if not metric and device:
        metric = UNIT_METRICS.get(unit_raw, "")
        if not metric:
            raise _Refused(DeadLetterReason.UNKNOWN_METRIC,
                           f"[{i}]: {full[:80]!r} names no measurement and its unit {unit_raw!r} names none hazmon reads "
                           f"(RFC 8428 §5.1.3; units {', '.join(sorted(UNIT_METRICS))})")
    if not device or not metric or len(metric) > 64 or len(device) > 64:
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}]: cannot split {full[:80]!r} into device and metric")
    unit = SENML_UNITS.get(unit_raw, unit_raw)
    if len(unit) > 16:
        raise _Refused(DeadLetterReason.SCHEMA, f"[{i}].u: unit too long")
    ts = _time(rec, i, base, ctx.received)
    out = [RawSample(metric, value, unit, ts)]
    if total is not None:
        out.append(RawSample(f"{metric}_sum"[:64], total, unit, ts))
    return device, out


class SenML:
    name = "senml"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        if ctx.kind == "status":
            return decode_status(payload, ctx)
        if ctx.kind == "event":
            return decode_events(payload, ctx)
        pack = as_list(parse_json(payload), "pack")
        if not pack:
            raise fail(DeadLetterReason.SCHEMA, "empty SenML pack")
        if len(pack) > _MAX_RECORDS:
            raise fail(DeadLetterReason.SCHEMA, f"more than {_MAX_RECORDS} records")
        repeated = _repeated_labels(payload) if b'_"' in payload else {}
        base = _Base()
        by_device: dict[str, SampleSet] = {}
        refused: list[Refusal] = []
        seen: dict[tuple[str, str, float | None], int] = {}
        for i, rec in enumerate(pack):
            if not isinstance(rec, dict):
                refused.append(Refusal(ctx.device_id, DeadLetterReason.SCHEMA, f"[{i}]: a record is a JSON object (RFC 8428 §4)"))
                continue
            _version(rec, i, base)
            try:
                base.take(rec, i)
            except _Refused as exc:  # later records resolve against it: the pack cannot be read
                raise fail(exc.reason, f"{exc.detail}: a base field, every later record depends on it") from None
            try:
                _must_understand(rec, i, base, repeated)
                found = _sample(rec, i, base, ctx)
            except _Refused as exc:
                refused.append(Refusal(ctx.device_id, exc.reason, exc.detail))
                continue
            if found is None:
                continue
            device, samples = found
            key = (device, samples[0].metric, samples[0].ts)
            if key in seen:
                refused.append(Refusal(ctx.device_id, DeadLetterReason.SCHEMA,
                                       f"[{i}]: repeats [{seen[key]}]'s name and time: one reading per device, metric and time"))
                continue
            seen.setdefault(key, i)
            if device in by_device:
                by_device[device].samples.extend(samples)
            else:
                by_device[device] = SampleSet(device, samples)
        if not by_device:
            if refused:
                first = refused[0]
                more = f" (+{len(refused) - 1} more)" if len(refused) > 1 else ""
                raise fail(first.reason, first.detail + more)
            raise fail(DeadLetterReason.SCHEMA, "SenML pack has no values")
        items: list[Item] = list(by_device.values())
        items.extend(refused)
        return items


ADAPTER = SenML()
