"""The status and event payloads every JSON vendor may use on ``…/status`` and ``…/event``.

Presence is the same for every vendor, so it has one shape (documented in docs/ingest.md):
``{"state": "online"|"offline", "heartbeat": bool, "lwt": bool, "battery_pct", "signal_dbm",
"mains_power", "ts"}``; a bare ``online``/``offline`` payload (the usual MQTT Last Will) works too.
"""

from __future__ import annotations

from typing import Any

from hazmon.contracts import DeadLetterReason
from ingest.adapters.base import (
    AlarmReport,
    Item,
    MessageContext,
    StatusReport,
    as_dict,
    as_float,
    as_list,
    as_str,
    fail,
    parse_json,
    parse_ts,
)

__all__ = ["decode_status", "decode_events", "device_of"]

_PLAIN = {b"online": "online", b"offline": "offline", b"": "offline"}


def device_of(obj: dict[str, Any], ctx: MessageContext, *keys: str) -> str:
    """The device a JSON object speaks for: its own id field, else the topic's device."""
    for key in keys:
        if key in obj and obj[key] is not None:
            return as_str(obj[key], key)
    if not ctx.device_id:
        raise fail(DeadLetterReason.SCHEMA, f"no device id in topic nor payload (expected one of {', '.join(keys)})")
    return ctx.device_id


def _opt_float(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    return None if value is None else as_float(value, key)


def decode_status(payload: bytes, ctx: MessageContext) -> list[Item]:
    stripped = payload.strip().lower()
    if stripped in _PLAIN:
        # a bare string is what a Last Will usually carries
        plain = _PLAIN[stripped]
        return [StatusReport(device_of({}, ctx), state=plain, reason="lwt" if plain == "offline" else "reported")]
    obj = as_dict(parse_json(payload), "status")
    state = obj.get("state")
    if state is not None and state not in ("online", "offline"):
        raise fail(DeadLetterReason.SCHEMA, f"state: expected online or offline, got {str(state)[:40]!r}")
    heartbeat = obj.get("heartbeat") is True
    lwt = obj.get("lwt") is True
    if heartbeat and state is None:
        state = "online"
    reason = "lwt" if lwt else "heartbeat" if heartbeat else "reported"
    mains = obj.get("mains_power")
    if mains is not None and not isinstance(mains, bool):
        raise fail(DeadLetterReason.SCHEMA, "mains_power: expected true/false")
    battery = _opt_float(obj, "battery_pct")
    signal = _opt_float(obj, "signal_dbm")
    if battery is not None and not 0 <= battery <= 100:
        raise fail(DeadLetterReason.OUT_OF_RANGE, f"battery_pct {battery} outside 0..100")
    if signal is not None and not -150 <= signal <= 0:
        raise fail(DeadLetterReason.OUT_OF_RANGE, f"signal_dbm {signal} outside -150..0")
    return [
        StatusReport(
            device_of(obj, ctx, "device_id"),
            state=state,
            reason=reason,
            battery_pct=battery,
            signal_dbm=signal,
            mains_power=mains,
            ts=parse_ts(obj.get("ts")),
        )
    ]


def decode_events(payload: bytes, ctx: MessageContext) -> list[Item]:
    """``{"code": "trapped", "active": true, "component": "", "zone": "", "detail": {}, "ts": …}``
    or ``{"events": [ … ]}`` or an array of such objects."""
    doc = parse_json(payload)
    if isinstance(doc, dict) and "events" in doc:
        base_ts = doc.get("ts")
        entries = as_list(doc["events"], "events")
        default_dev = device_of(doc, ctx, "device_id")
    else:
        base_ts = None
        entries = doc if isinstance(doc, list) else [doc]
        default_dev = ctx.device_id
    if not entries:
        raise fail(DeadLetterReason.SCHEMA, "no events in payload")
    items: list[Item] = []
    for i, raw in enumerate(entries):
        ev = as_dict(raw, f"events[{i}]")
        active = ev.get("active", True)
        if not isinstance(active, bool):
            raise fail(DeadLetterReason.SCHEMA, f"events[{i}].active: expected true/false")
        detail = ev.get("detail", {})
        if not isinstance(detail, dict):
            raise fail(DeadLetterReason.SCHEMA, f"events[{i}].detail: expected an object")
        dev = as_str(ev["device_id"], f"events[{i}].device_id") if ev.get("device_id") is not None else default_dev
        if not dev:
            raise fail(DeadLetterReason.SCHEMA, f"events[{i}]: no device id in topic nor payload")
        items.append(
            AlarmReport(
                dev,
                code=as_str(ev.get("code"), f"events[{i}].code"),
                active=active,
                component=str(ev.get("component", ""))[:64],
                zone=str(ev.get("zone", ""))[:64],
                detail=detail,
                ts=parse_ts(ev.get("ts", base_ts), f"events[{i}].ts"),
            )
        )
    return items
