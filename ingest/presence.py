"""Bridge-side presence tracker — off by default (``mqtt.presence_k`` = 0).

Presence (在线全时段) is judged by the detector (detectors/offline.py): behind an MQTT shared
subscription each of N bridges sees only part of a device's messages, so no bridge can tell
silence from "another bridge got it"; the device-keyed Kafka topics put all of a device's
traffic on one detector instance. The bridge forwards what only it sees (Last Will, explicit
status, every heartbeat) and judges nothing by default.

This tracker stays for a deployment with exactly one bridge that wants the bridge to judge
(``presence_k`` > 0, detectors with ``device.offline_source: ingest``): three signals feed it —
the Last Will or an explicit status (``reported``/``lwt``), a heartbeat, and data — and a device
is declared offline by ``silence`` when nothing arrived for ``k × expected interval``. It is a
pure state machine over a clock (every method takes ``now``); the bridge runs
:meth:`PresenceTracker.sweep` on a timer and publishes the transitions as
:class:`~hazmon.contracts.DeviceStatus`. See docs/ingest.md ("Presence").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["PresenceChange", "PresenceTracker"]


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A device went online or offline in the bridge's own silence judge (``mqtt.presence_k``)."""

    device_id: str
    state: str  # "online" | "offline"
    reason: str  # data | heartbeat | reported | lwt | silence
    at: float


@dataclass
class _Seen:
    state: str | None  # None = not known yet
    last_seen: float
    since: float


@dataclass
class PresenceTracker:
    """``k`` = 0 turns the silence sweep off (heartbeats and LWT still count)."""

    k: float = 3.0
    started_at: float = 0.0
    _devices: dict[str, _Seen] = field(default_factory=dict)

    def state(self, device_id: str) -> str | None:
        s = self._devices.get(device_id)
        return s.state if s else None

    def seen(self, device_id: str, now: float, reason: str = "data") -> PresenceChange | None:
        """Data or a heartbeat from the device: it is online."""
        s = self._devices.get(device_id)
        if s is None:
            self._devices[device_id] = _Seen("online", now, now)
            return PresenceChange(device_id, "online", reason, now)
        if now > s.last_seen:
            s.last_seen = now
        if s.state != "online":
            s.state, s.since = "online", now
            return PresenceChange(device_id, "online", reason, now)
        return None

    def reported(self, device_id: str, state: str, now: float, reason: str) -> PresenceChange | None:
        """The device (or the broker, for a Last Will) says online/offline."""
        if state == "online":
            return self.seen(device_id, now, reason)
        s = self._devices.get(device_id)
        if s is None:
            self._devices[device_id] = _Seen("offline", self.started_at or now, now)
            return PresenceChange(device_id, "offline", reason, now)
        if s.state != "offline":
            s.state, s.since = "offline", now
            return PresenceChange(device_id, "offline", reason, now)
        return None

    def sweep(self, now: float, expected_interval_s: Mapping[str, float]) -> list[PresenceChange]:
        """Devices silent for longer than ``k × expected interval`` go offline (once).

        A registered device never heard from counts from ``started_at``."""
        if self.k <= 0:
            return []
        out: list[PresenceChange] = []
        for device_id, interval in expected_interval_s.items():
            limit = self.k * interval
            s = self._devices.get(device_id)
            if s is None:
                if now - self.started_at > limit:
                    self._devices[device_id] = _Seen("offline", self.started_at, now)
                    out.append(PresenceChange(device_id, "offline", "silence", now))
            elif s.state != "offline" and now - s.last_seen > limit:
                s.state, s.since = "offline", now
                out.append(PresenceChange(device_id, "offline", "silence", now))
        return out
