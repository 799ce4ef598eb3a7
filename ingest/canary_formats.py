"""One canary reading in each adapter family's own vendor format (issue 20): what ``hazmon
canary`` (ingest/canary.py) publishes, so the canary goes through the very adapter a vendor's
data does. Each carries its sequence number and its publish time — in the format's ``seq``
field where it has one, and as the reading's time (the sequence number is that time's second,
so a format without ``seq`` carries it too: detectors/canary.py).

A quiet value per domain: 0 %LEL, floor 1, 20 °C — never near a threshold, and never stored
or detected anyway (the detectors announce a canary, they do not judge it).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from ingest.adapters.base import BEIJING
from ingest.adapters.gbt26875 import AnalogValue, encode_frame

__all__ = ["FAMILIES", "encode"]

#: the adapter families a canary can be published in
FAMILIES = ("hazmon_json", "senml", "gasjson", "elevator_json", "firejson", "gbt26875")

#: domain → (metric, value, unit) of its canary reading
_QUIET = {"gas": ("gas_lel", 0.0, "%LEL"), "elevator": ("floor", 1.0, ""), "fire": ("temperature_c", 20.0, "Cel")}


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts, BEIJING).isoformat(timespec="milliseconds")


def encode(adapter: str, device_id: str, domain: str, t: float) -> tuple[bytes, int]:
    """The payload of the canary of ``device_id`` published at ``t`` (epoch seconds, whole:
    its sequence number), and that sequence number. ValueError for a family without an encoder."""
    t = float(math.floor(t))
    seq = int(t)
    metric, value, unit = _QUIET.get(domain, _QUIET["gas"])
    if adapter == "hazmon_json":
        return _dumps({"readings": [{"metric": metric, "value": value, "ts": t, "seq": seq}]}), seq
    if adapter == "senml":
        return _dumps([{"bn": f"{device_id}:", "bt": t, "n": metric, "u": unit, "v": value}]), seq
    if adapter == "gasjson":
        return _dumps({"time": _local(t), "seq": seq, "gas": "CH4", "conc": 0.0, "unit": "%LEL",
                       "alarm": "normal", "fault": [], "valve": "open", "power": "mains", "battery": 100}), seq
    if adapter == "elevator_json":
        return _dumps({"liftId": device_id, "time": _local(t), "seq": seq, "running": False, "direction": "stop",
                       "floor": 1, "door": "closed", "speed": 0.0, "person": False, "mode": "normal",
                       "doorZone": True, "faults": []}), seq
    if adapter == "firejson":
        return _dumps({"panel": device_id, "time": _local(t), "seq": seq,
                       "analog": [{"loop": 1, "addr": 1, "metric": "temperature_c", "value": 20.0, "unit": "°C",
                                   "time": _local(t)}], "events": []}), seq
    if adapter == "gbt26875":
        sent = datetime.fromtimestamp(t, UTC)
        return encode_frame([AnalogValue(1, 1, 40, 1, 1, 3, 200, sent)], serial=seq & 0xFFFF, sent_at=sent), seq
    raise ValueError(f"no canary encoder for adapter family {adapter!r} (known: {', '.join(FAMILIES)})")
