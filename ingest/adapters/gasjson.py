"""``gasjson``: combustible-gas detectors (可燃气体报警装置 / 燃气泄漏安全保护装置).

One record (or ``{"sn": …, "records": [ … ]}`` for a batch)::

    {"sn": "GAS-0001", "time": "2024-05-01 12:00:00", "seq": 12,
     "gas": "CH4", "conc": 12.5, "unit": "%LEL",        # or "ppm" for a known gas
     "alarm": "normal" | "low" | "high",
     "fault": [] | [1, 3],                               # 1 sensor, 2 valve, 3 power (others: sensor)
     "valve": "open" | "closed", "power": "mains" | "battery", "battery": 87}

ppm of a known gas is normalised to %LEL with the gas's lower explosive limit (LEL, volume
fraction): %LEL = ppm / (LEL% × 10 000) × 100. ``alarm`` low/high and fault codes become
device-reported alarms (``gas_low``/``gas_high``, ``sensor_fault``/``valve_fault``/``power_loss``);
``alarm`` is the device's level, so ``normal`` also restores (恢复) ``gas_low`` and ``gas_high``,
and ``low`` restores ``gas_high``;
the concentration stays a reading so detectors can judge it themselves.
"""

from __future__ import annotations

from typing import Any

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

__all__ = ["GasJson", "ADAPTER", "LEL_VOL_PCT", "ppm_to_lel"]

#: Lower explosive limits in volume % (commonly used values, e.g. NIOSH; CH4 5.0 %, so
#: 5 000 ppm methane = 10 %LEL). Natural gas (NG/天然气) is taken as methane.
LEL_VOL_PCT: dict[str, float] = {
    "CH4": 5.0,
    "NG": 5.0,
    "C3H8": 2.1,
    "LPG": 1.9,  # 液化石油气, propane/butane mix
    "C4H10": 1.8,
    "H2": 4.0,
    "C2H2": 2.5,
    "CO": 12.5,
}
_FAULT_CODES = {1: "sensor_fault", 2: "valve_fault", 3: "power_loss"}
_MAX_RECORDS = 10_000


def ppm_to_lel(ppm: float, gas: str) -> float:
    return ppm / (LEL_VOL_PCT[gas] * 100.0)


class GasJson:
    name = "gasjson"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        if ctx.kind == "status":
            return decode_status(payload, ctx)
        if ctx.kind == "event":
            return decode_events(payload, ctx)
        doc = as_dict(parse_json(payload), "payload")
        if "records" in doc:
            dev = device_of(doc, ctx, "sn", "device_id")
            records = as_list(doc["records"], "records")
            if not records or len(records) > _MAX_RECORDS:
                raise fail(DeadLetterReason.SCHEMA, "records: expected 1..10000 entries")
            defaults = {k: v for k, v in doc.items() if k != "records"}
        else:
            dev = device_of(doc, ctx, "sn", "device_id")
            records, defaults = [doc], {}
        samples: list[RawSample] = []
        alarms: list[Item] = []
        for i, raw in enumerate(records):
            rec = {**defaults, **as_dict(raw, f"records[{i}]")}
            self._record(rec, dev, f"records[{i}]." if "records" in doc else "", samples, alarms)
        out: list[Item] = []
        if samples:
            out.append(SampleSet(dev, samples))
        out.extend(alarms)
        if not out:
            raise fail(DeadLetterReason.SCHEMA, "no concentration, valve, power or alarm in payload")
        return out

    @staticmethod
    def _record(rec: dict[str, Any], dev: str, where: str, samples: list[RawSample], alarms: list[Item]) -> None:
        ts = parse_ts(rec.get("time", rec.get("ts")), f"{where}time")
        seq = None if rec.get("seq") is None else as_int(rec["seq"], f"{where}seq")
        if "conc" in rec:
            conc = as_float(rec["conc"], f"{where}conc")
            unit = rec.get("unit", "%LEL")
            if unit == "%LEL":
                samples.append(RawSample("gas_lel", conc, "%LEL", ts, seq))
            elif unit == "ppm":
                gas = rec.get("gas")
                if not isinstance(gas, str) or gas.upper() not in LEL_VOL_PCT:
                    raise fail(DeadLetterReason.SCHEMA, f"{where}gas: ppm needs a known gas ({', '.join(LEL_VOL_PCT)})")
                samples.append(RawSample("gas_lel", ppm_to_lel(conc, gas.upper()), "%LEL", ts, seq, converted=True))
            else:
                raise fail(DeadLetterReason.SCHEMA, f"{where}unit: expected %LEL or ppm, got {str(unit)[:20]!r}")
        if "valve" in rec:
            valve = rec["valve"]
            if valve not in ("open", "closed"):
                raise fail(DeadLetterReason.SCHEMA, f"{where}valve: expected open or closed")
            samples.append(RawSample("valve_closed", 1.0 if valve == "closed" else 0.0, "", ts, seq))
        if "power" in rec:
            power = rec["power"]
            if power not in ("mains", "battery"):
                raise fail(DeadLetterReason.SCHEMA, f"{where}power: expected mains or battery")
            samples.append(RawSample("mains_power", 1.0 if power == "mains" else 0.0, "", ts, seq))
        if rec.get("battery") is not None:
            samples.append(RawSample("battery_pct", as_float(rec["battery"], f"{where}battery"), "%", ts, seq))
        alarm = rec.get("alarm")
        if alarm is not None:
            if alarm not in ("normal", "low", "high"):
                raise fail(DeadLetterReason.SCHEMA, f"{where}alarm: expected normal, low or high")
            # the device's alarm is a level: a record also ends what it no longer reports (恢复),
            # else a device-reported gas_low would stay firing after the device is back to normal
            for level in ("low", "high"):
                if alarm == level:
                    alarms.append(AlarmReport(dev, f"gas_{level}", True, detail={"source": "device"}, ts=ts))
                elif alarm == "normal" or level == "high":
                    alarms.append(AlarmReport(dev, f"gas_{level}", False, detail={"source": "device"}, ts=ts))
        for j, code in enumerate(as_list(rec.get("fault", []), f"{where}fault")):
            n = as_int(code, f"{where}fault[{j}]")
            if n == 0:
                continue
            alarms.append(AlarmReport(dev, _FAULT_CODES.get(n, "sensor_fault"), True, detail={"fault_code": n}, ts=ts))


ADAPTER = GasJson()
