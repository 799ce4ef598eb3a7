"""``hazmon_json``: hazmon's own documented JSON (docs/ingest.md has the full schema).

Telemetry on ``hazmon/v1/{vendor}/{device_id}/telemetry``::

    {"ts": 1714550400.0, "seq": 17, "values": {"gas_lel": 3.2, "battery_pct": 88}}
    {"readings": [{"metric": "gas_lel", "value": 3.2, "unit": "%LEL", "ts": 1714550400, "seq": 17}, …]}
    [ {"device_id": "GW-1-A", "ts": …, "values": {…}}, … ]        # a gateway batch

``ts`` is epoch seconds or milliseconds or ISO-8601 (no offset = Beijing time); a reading
without ``ts`` takes the object's, and one with neither gets the received time plus a flag.
Status and event topics use the shared shapes of :mod:`ingest.adapters.common`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hazmon.contracts import DeadLetterReason
from ingest.adapters.base import (
    Item,
    MessageContext,
    RawSample,
    SampleSet,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    fail,
    parse_json,
    parse_ts,
)
from ingest.adapters.common import decode_events, decode_status, device_of

__all__ = ["HazmonJson", "ADAPTER"]

_MAX_ENTRIES = 10_000
_MAX_EPOCH = 4102444800.0


class _Reading(msgspec.Struct):
    metric: str
    value: float
    unit: str = ""
    ts: float | str | None = None
    seq: int | None = None


class _Doc(msgspec.Struct):
    readings: list[_Reading] | None = None
    values: dict[str, float] | None = None
    units: dict[str, str] | None = None
    ts: float | str | None = None
    seq: int | None = None
    device_id: str | None = None


#: typed decoding in C for well-formed payloads (the hot path); anything it refuses is decoded
#: again by the generic path, which says precisely what is wrong
_typed = msgspec.json.Decoder(_Doc | list[_Doc]).decode


def _fast_ts(value: float | str | None) -> float | None:
    if value is None or type(value) is str:
        return parse_ts(value)
    t = float(value)
    if t > 1e11:
        t /= 1000.0
    if not 0.0 <= t <= _MAX_EPOCH:  # also false for NaN
        return parse_ts(value)  # raises with the precise reason
    return t


class HazmonJson:
    name = "hazmon_json"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        if ctx.kind == "status":
            return decode_status(payload, ctx)
        if ctx.kind == "event":
            return decode_events(payload, ctx)
        try:
            typed = _typed(payload)
        except (msgspec.DecodeError, ValueError, RecursionError):
            pass
        else:
            fast = self._fast(typed, ctx)
            if fast is not None:
                return fast
        doc = parse_json(payload)
        objs = doc if isinstance(doc, list) else [doc]
        if not objs:
            raise fail(DeadLetterReason.SCHEMA, "empty array")
        if len(objs) > _MAX_ENTRIES:
            raise fail(DeadLetterReason.SCHEMA, f"more than {_MAX_ENTRIES} entries")
        by_device: dict[str, SampleSet] = {}
        for i, raw in enumerate(objs):
            obj = as_dict(raw, f"[{i}]")
            dev = device_of(obj, ctx, "device_id")
            samples = self._samples(obj, f"[{i}]" if isinstance(doc, list) else "")
            if dev in by_device:
                by_device[dev].samples.extend(samples)
            else:
                by_device[dev] = SampleSet(dev, samples)
        return list(by_device.values())

    @staticmethod
    def _fast(typed: _Doc | list[_Doc], ctx: MessageContext) -> list[Item] | None:
        docs = typed if isinstance(typed, list) else [typed]
        if not docs or len(docs) > _MAX_ENTRIES:
            return None
        by_device: dict[str, SampleSet] = {}
        for doc in docs:
            dev = doc.device_id or ctx.device_id
            if not dev or (doc.readings is None and doc.values is None):
                return None
            ts = _fast_ts(doc.ts)
            seq = doc.seq
            out: list[RawSample] = []
            if doc.values is not None:
                units = doc.units or {}
                for metric, value in doc.values.items():
                    out.append(RawSample(metric, value, units.get(metric, ""), ts, seq))
            if doc.readings is not None:
                for r in doc.readings:
                    out.append(RawSample(r.metric, r.value, r.unit, ts if r.ts is None else _fast_ts(r.ts),
                                         seq if r.seq is None else r.seq))
            if not out:
                return None
            if dev in by_device:
                by_device[dev].samples.extend(out)
            else:
                by_device[dev] = SampleSet(dev, out)
        return list(by_device.values())

    @staticmethod
    def _samples(obj: dict[str, Any], where: str) -> list[RawSample]:
        ts = parse_ts(obj.get("ts"), f"{where}ts")
        seq_raw = obj.get("seq")
        seq = None if seq_raw is None else as_int(seq_raw, f"{where}seq")
        out: list[RawSample] = []
        if "values" in obj:
            values = as_dict(obj["values"], f"{where}values")
            units = obj.get("units", {})
            if not isinstance(units, dict):
                raise fail(DeadLetterReason.SCHEMA, f"{where}units: expected an object")
            for metric, value in values.items():
                if not metric or len(metric) > 64:
                    raise fail(DeadLetterReason.SCHEMA, f"{where}values: bad metric name")
                unit = units.get(metric, "")
                out.append(RawSample(metric, as_float(value, f"{where}values.{metric}"), unit if isinstance(unit, str) else "", ts, seq))
        if "readings" in obj:
            for j, r in enumerate(as_list(obj["readings"], f"{where}readings")):
                rd = as_dict(r, f"{where}readings[{j}]")
                here = f"{where}readings[{j}]"
                unit = rd.get("unit", "")
                if not isinstance(unit, str) or len(unit) > 16:
                    raise fail(DeadLetterReason.SCHEMA, f"{here}.unit: expected a short string")
                rseq = rd.get("seq")
                r_ts = parse_ts(rd["ts"], f"{here}.ts") if rd.get("ts") is not None else ts
                out.append(
                    RawSample(
                        as_str(rd.get("metric"), f"{here}.metric"),
                        as_float(rd.get("value"), f"{here}.value"),
                        unit,
                        r_ts,
                        seq if rseq is None else as_int(rseq, f"{here}.seq"),
                    )
                )
        if not out:
            raise fail(DeadLetterReason.SCHEMA, f"{where or 'payload'}: no values nor readings")
        return out


ADAPTER = HazmonJson()
