"""``elevator_json``: elevator IoT terminals, referenced to GB/T 24476-2023 (电梯、自动扶梯和自动人行道
物联网 企业应用平台技术要求, issued 2023-05-23, in force 2023-12-01, replacing GB/T 24476-2017
电梯、自动扶梯和自动人行道物联网的技术规范).

What the 2023 edition changed, as far as it could be verified (the published title page and
catalogue entries; the text itself is not freely available): its title and scope moved from
the IoT system as a whole to the **enterprise application platform** (企业应用平台) that receives
the monitoring terminals' data. The clauses of the 2017 edition this adapter's data items come
from — real-time running status (its clause 9) and fault, event and alarm data (clause 11) —
could NOT be compared with the 2023 text: no renamed, added or removed data item and no changed
fault code is known, so none is assumed here and the payload below is unchanged. A vendor
citing the 2023 edition sends the same items; a field this adapter does not know is ignored,
a known field with a bad value is dead-lettered ``schema`` naming the field, as before.

One record (or ``{"liftId": …, "records": [ … ]}`` for a batch)::

    {"liftId": "EL-0001", "time": "2024-05-01T12:00:00+08:00", "seq": 5,
     "running": true, "direction": "up" | "down" | "stop", "floor": 7,
     "door": "open" | "closed", "speed": 1.6, "ratedSpeed": 1.75, "person": true,
     "mode": "normal" | "inspection" | "maintenance" | "fire" | "out_of_service",
     "doorZone": true, "doorLock": "closed" | "open" | "fault",
     "overTravel": "none" | "top" | "bottom",
     "faults": [1, 7] | ["trapped", "door_lock_fault"]}

Running data become readings (``car_running``, ``direction`` −1/0/1, ``floor``, ``door_open``,
``speed_mps``, ``person_in_car``, ``service_mode`` 0 normal 1 检修 2 维保 3 消防 4 停用,
``door_zone``). Faults become device-reported alarms: numeric codes follow hazmon's numbering of
the standard's fault categories (1 困人 trapped, 2 超速 overspeed, 3 冲顶 over-travel top,
4 蹲底 over-travel bottom, 5 开门走车 door open while moving, 6 非平层停梯 stopped out of door
zone, 7 门锁回路 door-lock circuit; any other number → ``fault`` with the code in detail).
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
    fail,
    parse_json,
    parse_ts,
)
from ingest.adapters.common import decode_events, decode_status, device_of

__all__ = ["ElevatorJson", "ADAPTER", "FAULT_CODES", "SERVICE_MODES"]

FAULT_CODES = {
    1: "trapped",
    2: "overspeed",
    3: "overtravel_top",
    4: "overtravel_bottom",
    5: "door_open_moving",
    6: "stopped_out_of_zone",
    7: "door_lock_fault",
}
SERVICE_MODES = {"normal": 0, "inspection": 1, "maintenance": 2, "fire": 3, "out_of_service": 4}
_DIRECTIONS = {"up": 1.0, "down": -1.0, "stop": 0.0}
_BOOLS = {"running": "car_running", "person": "person_in_car", "doorZone": "door_zone"}
_CODES = DEVICE_EVENT_CODES["elevator"]
_MAX_RECORDS = 10_000


def _bool(rec: dict[str, Any], key: str, where: str) -> float:
    value = rec[key]
    if isinstance(value, bool) or value in (0, 1):
        return 1.0 if value else 0.0
    raise fail(DeadLetterReason.SCHEMA, f"{where}{key}: expected true/false")


class ElevatorJson:
    name = "elevator_json"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        if ctx.kind == "status":
            return decode_status(payload, ctx)
        if ctx.kind == "event":
            return decode_events(payload, ctx)
        doc = as_dict(parse_json(payload), "payload")
        dev = device_of(doc, ctx, "liftId", "device_id")
        if "records" in doc:
            records = as_list(doc["records"], "records")
            if not records or len(records) > _MAX_RECORDS:
                raise fail(DeadLetterReason.SCHEMA, "records: expected 1..10000 entries")
            prefix = "records[{}]."
        else:
            records, prefix = [doc], ""
        samples: list[RawSample] = []
        alarms: list[Item] = []
        for i, raw in enumerate(records):
            self._record(as_dict(raw, f"records[{i}]"), dev, prefix.format(i), samples, alarms)
        out: list[Item] = [SampleSet(dev, samples)] if samples else []
        out.extend(alarms)
        if not out:
            raise fail(DeadLetterReason.SCHEMA, "no GB/T 24476-2023 data items in payload")
        return out

    @staticmethod
    def _record(rec: dict[str, Any], dev: str, where: str, samples: list[RawSample], alarms: list[Item]) -> None:
        ts = parse_ts(rec.get("time", rec.get("ts")), f"{where}time")
        seq = None if rec.get("seq") is None else as_int(rec["seq"], f"{where}seq")

        def add(metric: str, value: float, unit: str = "") -> None:
            samples.append(RawSample(metric, value, unit, ts, seq))

        for key, metric in _BOOLS.items():
            if key in rec:
                add(metric, _bool(rec, key, where))
        if "direction" in rec:
            d = rec["direction"]
            if not isinstance(d, str) or d not in _DIRECTIONS:
                raise fail(DeadLetterReason.SCHEMA, f"{where}direction: expected up, down or stop")
            add("direction", _DIRECTIONS[d])
        if "floor" in rec:
            add("floor", float(as_int(rec["floor"], f"{where}floor")))
        if "door" in rec:
            if rec["door"] not in ("open", "closed"):
                raise fail(DeadLetterReason.SCHEMA, f"{where}door: expected open or closed")
            add("door_open", 1.0 if rec["door"] == "open" else 0.0)
        if "speed" in rec:
            add("speed_mps", as_float(rec["speed"], f"{where}speed"), "m/s")
        if "ratedSpeed" in rec:
            add("rated_speed_mps", as_float(rec["ratedSpeed"], f"{where}ratedSpeed"), "m/s")
        if "mode" in rec:
            mode = rec["mode"]
            if not isinstance(mode, str) or mode not in SERVICE_MODES:
                raise fail(DeadLetterReason.SCHEMA, f"{where}mode: expected one of {', '.join(SERVICE_MODES)}")
            add("service_mode", float(SERVICE_MODES[mode]))
        if "doorLock" in rec:
            lock = rec["doorLock"]
            if lock not in ("closed", "open", "fault"):
                raise fail(DeadLetterReason.SCHEMA, f"{where}doorLock: expected closed, open or fault")
            if lock == "fault":
                alarms.append(AlarmReport(dev, "door_lock_fault", True, component="door_lock", ts=ts))
        if "overTravel" in rec:
            ot = rec["overTravel"]
            if ot not in ("none", "top", "bottom"):
                raise fail(DeadLetterReason.SCHEMA, f"{where}overTravel: expected none, top or bottom")
            if ot != "none":
                alarms.append(AlarmReport(dev, f"overtravel_{ot}", True, ts=ts))
        for j, f in enumerate(as_list(rec.get("faults", []), f"{where}faults")):
            if isinstance(f, str):
                if f not in _CODES:
                    raise fail(DeadLetterReason.SCHEMA, f"{where}faults[{j}]: unknown fault {f[:40]!r}")
                alarms.append(AlarmReport(dev, f, True, ts=ts))
            else:
                n = as_int(f, f"{where}faults[{j}]")
                alarms.append(AlarmReport(dev, FAULT_CODES.get(n, "fault"), True, detail={"fault_code": n}, ts=ts))


ADAPTER = ElevatorJson()
