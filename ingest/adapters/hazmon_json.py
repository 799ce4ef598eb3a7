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


class HazmonJson:
    name = "hazmon_json"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        if ctx.kind == "status":
            return decode_status(payload, ctx)
        if ctx.kind == "event":
            return decode_events(payload, ctx)
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
