"""``senml``: SenML JSON (RFC 8428), the IETF format many gateways already speak.

A pack is an array of records; base fields (``bn``, ``bt``, ``bu``, ``bv``) apply to the
records after them. The resolved name ``bn + n`` is ``<device>:<metric>`` or
``<device>/<metric>`` (a ``urn:dev:<type>:`` prefix is stripped: ``urn:dev:ow:GAS-1:gas_lel``
→ device ``GAS-1``, metric ``gas_lel``); a name without a separator is a metric of the topic's
device. Times below 2**28 are relative to now (RFC 8428 §4.5.3); a record without time gets
the received time and the ``ts_missing`` flag. ``vs``/``vd`` (string/data values) are refused:
hazmon's metrics are numeric.
"""

from __future__ import annotations

import math

from hazmon.contracts import DeadLetterReason
from ingest.adapters.base import (
    Item,
    MessageContext,
    RawSample,
    SampleSet,
    as_dict,
    as_float,
    as_list,
    fail,
    parse_json,
)
from ingest.adapters.common import decode_events, decode_status

__all__ = ["SenML", "ADAPTER", "SENML_UNITS"]

#: SenML registered units → hazmon catalogue units
SENML_UNITS = {"Cel": "°C", "%": "%", "m/s": "m/s", "%LEL": "%LEL", "%EL": "%", "/": "", "1": "", "ppm": "ppm"}
_RELATIVE_LIMIT = 2.0**28
_MAX_RECORDS = 10_000


def _split_name(name: str, default_device: str) -> tuple[str, str]:
    if name.startswith("urn:dev:"):
        rest = name[len("urn:dev:") :]
        _, _, rest = rest.partition(":")  # drop the URN type (mac, ow, …)
        name = rest
    cut = max(name.rfind(":"), name.rfind("/"))
    if cut < 0:
        return default_device, name
    return name[:cut], name[cut + 1 :]


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
        bn, bt, bu, bv = "", 0.0, "", 0.0
        by_device: dict[str, SampleSet] = {}
        for i, raw in enumerate(pack):
            rec = as_dict(raw, f"[{i}]")
            if "bver" in rec and not (isinstance(rec["bver"], int) and 0 < rec["bver"] <= 10):
                raise fail(DeadLetterReason.UNSUPPORTED_VERSION, f"[{i}].bver: unsupported SenML version")
            if "bn" in rec:
                if not isinstance(rec["bn"], str):
                    raise fail(DeadLetterReason.SCHEMA, f"[{i}].bn: expected a string")
                bn = rec["bn"]
            if "bt" in rec:
                bt = as_float(rec["bt"], f"[{i}].bt")
            if "bu" in rec:
                if not isinstance(rec["bu"], str):
                    raise fail(DeadLetterReason.SCHEMA, f"[{i}].bu: expected a string")
                bu = rec["bu"]
            if "bv" in rec:
                bv = as_float(rec["bv"], f"[{i}].bv")
            n = rec.get("n", "")
            if not isinstance(n, str):
                raise fail(DeadLetterReason.SCHEMA, f"[{i}].n: expected a string")
            if "vs" in rec or "vd" in rec:
                raise fail(DeadLetterReason.SCHEMA, f"[{i}]: string/data values are not supported")
            if "v" in rec:
                value = bv + as_float(rec["v"], f"[{i}].v")
            elif "vb" in rec:
                if not isinstance(rec["vb"], bool):
                    raise fail(DeadLetterReason.SCHEMA, f"[{i}].vb: expected true/false")
                value = 1.0 if rec["vb"] else 0.0
            elif "s" in rec:
                value = as_float(rec["s"], f"[{i}].s")
            elif not n and not ("bn" in rec or "bt" in rec or "bu" in rec or "bv" in rec):
                raise fail(DeadLetterReason.SCHEMA, f"[{i}]: record has no value")
            else:
                continue  # a base-only record
            full = bn + n
            if not full:
                raise fail(DeadLetterReason.SCHEMA, f"[{i}]: record has no name")
            device, metric = _split_name(full, ctx.device_id)
            if not device or not metric or len(metric) > 64 or len(device) > 64:
                raise fail(DeadLetterReason.SCHEMA, f"[{i}]: cannot split {full[:80]!r} into device and metric")
            t_rel = as_float(rec["t"], f"[{i}].t") if "t" in rec else None
            if t_rel is None and "bt" not in rec and bt == 0.0:
                ts: float | None = None
            else:
                t = bt + (t_rel or 0.0)
                if not math.isfinite(t):
                    raise fail(DeadLetterReason.BAD_TIMESTAMP, f"[{i}]: time is not finite")
                ts = ctx.received + t if abs(t) < _RELATIVE_LIMIT else t
                if ts < 0 or ts > 4102444800.0:
                    raise fail(DeadLetterReason.BAD_TIMESTAMP, f"[{i}]: time {t} out of range")
            unit_raw = rec.get("u", bu)
            if not isinstance(unit_raw, str):
                raise fail(DeadLetterReason.SCHEMA, f"[{i}].u: expected a string")
            unit = SENML_UNITS.get(unit_raw, unit_raw)
            if len(unit) > 16:
                raise fail(DeadLetterReason.SCHEMA, f"[{i}].u: unit too long")
            sample = RawSample(metric, value, unit, ts)
            if device in by_device:
                by_device[device].samples.append(sample)
            else:
                by_device[device] = SampleSet(device, [sample])
        if not by_device:
            raise fail(DeadLetterReason.SCHEMA, "SenML pack has no values")
        return list(by_device.values())


ADAPTER = SenML()
