"""Edge validation of samples: units normalised, timestamps checked, values flagged.

A questionable reading is *kept and flagged* (:class:`~hazmon.contracts.ReadingFlag`) rather
than dropped — an operator would rather see a gas value with a wrong clock than no value.
Only a unit that cannot be converted to the catalogue's unit rejects the sample (dead letter
``schema``): storing 12 "mg/m³" as %LEL would be worse than nothing.

This is the hot path, so it returns plain dicts shaped exactly like
:class:`~hazmon.contracts.Sample` (checked by tests against the pydantic model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hazmon.catalog import METRICS
from hazmon.contracts import ReadingFlag
from hazmon.errors import HazmonError
from hazmon.settings import CLOCK_SKEW_S
from ingest.adapters.base import RawSample

__all__ = ["Limits", "UNIT_CONVERSIONS", "iso", "validate_sample", "SampleRejected"]

_F_MISSING = ReadingFlag.TS_MISSING.value
_F_FUTURE = ReadingFlag.TS_FUTURE.value
_F_PAST = ReadingFlag.TS_PAST.value
_F_RANGE = ReadingFlag.OUT_OF_RANGE.value
_F_FINITE = ReadingFlag.NOT_FINITE.value
_F_CONV = ReadingFlag.UNIT_CONVERTED.value
_F_UNKNOWN = ReadingFlag.UNKNOWN_METRIC.value

#: (from unit, catalogue unit) → conversion
UNIT_CONVERSIONS: dict[tuple[str, str], Callable[[float], float]] = {
    ("°F", "°C"): lambda f: (f - 32.0) * 5.0 / 9.0,
    ("K", "°C"): lambda k: k - 273.15,
    ("Cel", "°C"): lambda c: c,
    ("km/h", "m/s"): lambda v: v / 3.6,
    ("m/min", "m/s"): lambda v: v / 60.0,
    ("%", "%LEL"): lambda v: v,  # vendors often write "%" for %LEL
    ("LEL%", "%LEL"): lambda v: v,
    ("mV", "V"): lambda v: v / 1000.0,
}
#: units that mean "no unit" for 0/1 state metrics
_UNITLESS = frozenset({"", "1", "/", "bool"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Clock checks: a device ahead of the bridge by more than ``skew_s`` is clamped and
    flagged; a reading older than ``max_age_s`` is flagged ``ts_past`` (kept: backfill after an
    outage is legitimate, but worth seeing)."""

    skew_s: float = CLOCK_SKEW_S  # the setting mqtt.clock_skew_s; the detectors use the same
    max_age_s: float = 30 * 24 * 3600.0


class SampleRejected(HazmonError):
    """A sample that cannot be stored (unit not convertible); the message names it."""


_iso_cache: dict[float, str] = {}


def iso(ts: float) -> str:
    """UTC ISO-8601 of an epoch; cached because a batch repeats its timestamps."""
    s = _iso_cache.get(ts)
    if s is None:
        if len(_iso_cache) > 4096:
            _iso_cache.clear()
        s = datetime.fromtimestamp(ts, UTC).isoformat()
        _iso_cache[ts] = s
    return s


def validate_sample(raw: RawSample, received: float, limits: Limits) -> dict[str, Any]:
    """The wire dict of one sample, flags set; raises :class:`SampleRejected` on a bad unit."""
    if not 0 < len(raw.metric) <= 64 or len(raw.unit) > 16:
        raise SampleRejected(f"{raw.metric[:64]!r}: metric name (1..64) or unit (≤16) too long")
    flags: list[str] = []
    value = raw.value
    unit = raw.unit
    spec = METRICS.get(raw.metric)
    if raw.converted:
        flags.append(_F_CONV)
    if spec is None:
        flags.append(_F_UNKNOWN)
    elif unit != spec.unit:
        if spec.unit == "" and unit in _UNITLESS:
            unit = ""
        elif unit == "":
            unit = spec.unit  # the catalogue unit is implied
        else:
            conv = UNIT_CONVERSIONS.get((unit, spec.unit))
            if conv is None:
                raise SampleRejected(f"{raw.metric}: unit {unit!r} cannot be converted to {spec.unit!r}")
            value = conv(value)
            unit = spec.unit
            if _F_CONV not in flags:
                flags.append(_F_CONV)
    if not math.isfinite(value):
        flags.append(_F_FINITE)
        out_value: float | None = None
    else:
        out_value = value
        if spec is not None and not spec.low <= value <= spec.high:
            flags.append(_F_RANGE)
    ts = raw.ts
    if ts is None:
        ts = received
        flags.append(_F_MISSING)
    elif ts > received + limits.skew_s:
        ts = received
        flags.append(_F_FUTURE)
    elif ts < received - limits.max_age_s:
        flags.append(_F_PAST)
    d: dict[str, Any] = {"metric": raw.metric, "value": out_value, "unit": unit, "ts": iso(ts)}
    if raw.seq is not None:
        d["seq"] = raw.seq
    if flags:
        d["flags"] = flags
    return d


def validate_samples(raws: list[RawSample], received: float, limits: Limits) -> tuple[list[dict[str, Any]], list[str]]:
    """:func:`validate_sample` over a batch, with an inlined fast path for the common case (a
    catalogue metric in its unit, finite, in range, with a plausible time). Returns the wire
    dicts and the rejection messages."""
    out: list[dict[str, Any]] = []
    rejected: list[str] = []
    get_spec = METRICS.get
    cache = _iso_cache
    newest = received + limits.skew_s
    oldest = received - limits.max_age_s
    for raw in raws:
        spec = get_spec(raw.metric)
        ts = raw.ts
        value = raw.value
        if (
            spec is not None
            and not raw.converted
            and (raw.unit == spec.unit or raw.unit == "")
            and ts is not None
            and oldest <= ts <= newest
            and spec.low <= value <= spec.high  # False for NaN, so the value is finite
        ):
            iso_ts = cache.get(ts)
            if iso_ts is None:
                iso_ts = iso(ts)
            d: dict[str, Any] = {"metric": raw.metric, "value": value, "unit": spec.unit, "ts": iso_ts}
            if raw.seq is not None:
                d["seq"] = raw.seq
            out.append(d)
            continue
        try:
            out.append(validate_sample(raw, received, limits))
        except SampleRejected as exc:
            rejected.append(str(exc))
    return out, rejected


__all__ += ["validate_samples"]
