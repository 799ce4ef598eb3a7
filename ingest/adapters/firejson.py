"""``firejson``: a simple fire-panel JSON shape for panels/gateways without GB/T 26875.3::

    {"panel": "FP-0001", "time": "2024-05-01 12:00:00", "seq": 3,
     "events": [{"type": "fire_alarm" | "fault" | "supervisory" | "shielded" | "feedback" | "reset",
                 "loop": 1, "addr": 23, "zone": "3F 东侧走廊", "active": true}],
     "analog": [{"loop": 1, "addr": 5, "metric": "smoke_obscuration", "value": 2.1, "unit": "%/m"}]}

Events become device-reported alarms with component ``loop-addr`` (回路-地址); analog values of
detectors become readings of the panel device.
"""

from __future__ import annotations

from typing import Any

from hazmon.catalog import DEVICE_EVENT_CODES
from hazmon.contracts import DeadLetterReason
from ingest.adapters.base import (
    AlarmReport,
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

__all__ = ["FireJson", "ADAPTER"]

_CODES = DEVICE_EVENT_CODES["fire"]
_MAX = 10_000


def _component(entry: dict[str, Any], where: str) -> str:
    if "loop" not in entry and "addr" not in entry:
        return ""
    return f"{as_int(entry.get('loop', 0), where + '.loop')}-{as_int(entry.get('addr', 0), where + '.addr'):03d}"


class FireJson:
    name = "firejson"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        if ctx.kind == "status":
            return decode_status(payload, ctx)
        doc = parse_json(payload)
        if ctx.kind == "event" and not (isinstance(doc, dict) and ("panel" in doc or "analog" in doc)):
            return decode_events(payload, ctx)
        obj = as_dict(doc, "payload")
        dev = device_of(obj, ctx, "panel", "device_id")
        ts = parse_ts(obj.get("time", obj.get("ts")), "time")
        seq = None if obj.get("seq") is None else as_int(obj["seq"], "seq")
        items: list[Item] = []
        events = as_list(obj.get("events", []), "events")
        analog = as_list(obj.get("analog", []), "analog")
        if len(events) + len(analog) > _MAX:
            raise fail(DeadLetterReason.SCHEMA, f"more than {_MAX} entries")
        samples: list[RawSample] = []
        for i, raw in enumerate(analog):
            a = as_dict(raw, f"analog[{i}]")
            unit = a.get("unit", "")
            if not isinstance(unit, str) or len(unit) > 16:
                raise fail(DeadLetterReason.SCHEMA, f"analog[{i}].unit: expected a short string")
            a_ts = parse_ts(a["time"], f"analog[{i}].time") if a.get("time") is not None else ts
            samples.append(RawSample(as_str(a.get("metric"), f"analog[{i}].metric"),
                                     as_float(a.get("value"), f"analog[{i}].value"), unit, a_ts, seq))
        if samples:
            items.append(SampleSet(dev, samples))
        for i, raw in enumerate(events):
            e = as_dict(raw, f"events[{i}]")
            code = e.get("type")
            if not isinstance(code, str) or code not in _CODES:
                raise fail(DeadLetterReason.SCHEMA, f"events[{i}].type: expected one of {', '.join(sorted(_CODES))}")
            active = e.get("active", True)
            if not isinstance(active, bool):
                raise fail(DeadLetterReason.SCHEMA, f"events[{i}].active: expected true/false")
            zone = e.get("zone", "")
            if not isinstance(zone, str):
                raise fail(DeadLetterReason.SCHEMA, f"events[{i}].zone: expected a string")
            e_ts = parse_ts(e["time"], f"events[{i}].time") if e.get("time") is not None else ts
            items.append(AlarmReport(dev, code, active, _component(e, f"events[{i}]"), zone[:64], {}, e_ts))
        if not items:
            raise fail(DeadLetterReason.SCHEMA, "no events nor analog values in payload")
        return items


ADAPTER = FireJson()
