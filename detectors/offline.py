"""All domains: device presence (在线全时段) and the ``device.offline`` episode.

Why the detector judges presence: the ingest bridges sit behind an MQTT shared subscription
(``$share/hazmon-ingest/…``, round-robin), so with N bridges each one sees only part of a
device's messages and cannot tell silence from "my neighbour got it". The readings, status and
device-events topics are keyed by device id, and the detectors consumer group reads them with
the range assignor, so exactly one detector instance sees *all* of a device's traffic: that
instance is the one judge of its presence. The bridge only translates what only it can see
(Last Will, explicit status reports, every heartbeat) into status records.

The rules (pure; every decision takes its clock as an argument):

* **heard** — a reading batch, a device event, or a status record saying ``online`` (heartbeat,
  explicit report): ``last_seen`` moves to the record's ``received_at`` (the platform's clock;
  device clocks drift, and a buffered upload after a reconnect carries old device times but
  proves the device is back *now*). A device that is offline and is heard *after* the time it
  went offline comes back online; its episode resolves at that time.
* **offline at once** — a Last Will (``lwt``) or an explicit ``offline`` report, unless the
  device was heard after it (a reconnection already superseded it). Bridge-side ``silence``
  transitions are ignored unless ``device.offline_source: ingest`` (then the bridge is the
  judge and :meth:`Presence.check` is off): two judges would open two episodes for one outage.
* **silence** — :meth:`Presence.check` against a clock per device (the service gives the
  wall clock bounded by how far this instance has consumed the device's partitions; ``None``
  for devices whose partitions another instance owns): silent longer than
  ``device.offline_k`` × the registry's expected interval → offline. The episode starts at
  ``last_seen + k × interval`` — when the device became overdue, not when it was noticed — so
  its id is the same whichever instance notices it, and after a restart or a replay.
* **never heard** — a registered device this detector never heard from gets no event and no
  ``device_presence`` row: the console shows it as 未上线 (``never_seen``), and the online-rate
  KPI counts it as not online. An alarm for every device registered ahead of installation
  would be noise; the health page lists them instead.

Exactly one episode per outage: the state machine only opens an episode on an online →
offline change and only resolves it on offline → online, and the episode book is keyed by
(device, ``device.offline``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from hazmon.contracts import DeviceStatus, Evidence, PresenceState

from .state import DeviceCtx, DeviceTable, EpisodeBook, ts_of

__all__ = ["KIND", "Presence", "PresenceRow", "OfflineDetector", "IngestWatermarks", "Clock"]

KIND = "device.offline"

#: a stored ``device_presence`` row: (device_id, state, since, last_seen)
PresenceRow = tuple[str, str, datetime, datetime]
#: a device's clock for the silence check: (now, quiet_from) — silence is counted from
#: max(last_seen, quiet_from) up to now; quiet_from ends a period the ingest path was blind
Clock = tuple[float, float]

_WHY = {"lwt": "MQTT 遗嘱消息 (连接断开)", "reported": "设备上报离线", "silence": "超过预期上报周期无数据"}


@dataclass(slots=True)
class _Dev:
    state: str  # "online" | "offline"
    since: float  # epoch seconds of the last change
    last_seen: float  # epoch seconds, newest received_at heard (-inf: only an offline report)


class Presence:
    """Per-device online/offline state; transitions go to the episode book and to
    :attr:`changes` (device → (state, since)) for the ``device_presence`` table."""

    def __init__(self, devices: DeviceTable, book: EpisodeBook) -> None:
        self.devices = devices
        self.book = book
        self._devs: dict[str, _Dev] = {}
        #: transitions since the last :meth:`take_changes`: device → (state, since)
        self.changes: dict[str, tuple[str, datetime]] = {}

    # ------------------------------------------------------------------------------ queries
    def state(self, device_id: str) -> str | None:
        d = self._devs.get(device_id)
        return d.state if d else None

    def last_seen(self, device_id: str) -> float | None:
        d = self._devs.get(device_id)
        return d.last_seen if d and d.last_seen > -math.inf else None

    def __len__(self) -> int:
        return len(self._devs)

    # ------------------------------------------------------------------------------- input
    def heard(self, ctx: DeviceCtx, t: float, reason: str = "data") -> None:
        """The device spoke at ``t`` (received_at, epoch seconds)."""
        d = self._devs.get(ctx.device_id)
        if d is None:
            self._devs[ctx.device_id] = _Dev("online", t, t)
            return
        if t > d.last_seen:
            d.last_seen = t
        if d.state == "offline" and t > d.since:
            d.state, d.since = "online", t
            self.changes[ctx.device_id] = ("online", ts_of(t))
            note = (Evidence(ts=ts_of(t), metric="presence", value=1.0, note=reason),)
            self.book.retract(ctx, KIND, None, ts_of(t), evidence=note)

    def reported_offline(self, ctx: DeviceCtx, t: float, reason: str) -> None:
        """A Last Will or an explicit offline report received at ``t``."""
        d = self._devs.get(ctx.device_id)
        if d is not None and (d.state == "offline" or t < d.last_seen):
            return  # already offline, or the device was heard after it: superseded
        self._go_offline(ctx, t, reason, d)

    def check(self, clock_of: Callable[[str], Clock | None], upper: float = math.inf) -> int:
        """Silence: devices quiet for longer than k × expected interval go offline (once).

        ``clock_of(device_id)`` is (the time up to which this device's traffic is known to have
        been consumed, the end of the last ingest blind period) or None (not judged here);
        ``upper`` bounds every clock (a cheap filter: the clock is only asked for devices
        already overdue at ``upper``). Returns how many went offline."""
        n = 0
        devices = self.devices
        for device_id, d in self._devs.items():
            if d.state != "online":
                continue
            ctx = devices.get(device_id)
            if ctx is None or not ctx.expected_interval_s:
                continue
            dp = ctx.params.device
            k = dp.offline_k
            if k <= 0 or dp.offline_source == "ingest":
                continue
            deadline = d.last_seen + k * ctx.expected_interval_s
            if deadline >= upper:
                continue
            clock = clock_of(device_id)
            if clock is None:
                continue
            if clock[1] > d.last_seen:  # the ingest path was blind until then: count from there
                deadline = clock[1] + k * ctx.expected_interval_s
            if deadline >= clock[0]:
                continue
            self._go_offline(ctx, deadline, "silence", d, k=k)
            n += 1
        return n

    def take_changes(self) -> dict[str, tuple[str, datetime]]:
        out, self.changes = self.changes, {}
        return out

    # ----------------------------------------------------------------------------- restart
    def restore(self, rows: Iterable[PresenceRow], last_times: Iterable[tuple[str, datetime]] = ()) -> int:
        """Merge stored presence (after a restart, or when partitions move here): the newer
        ``since`` wins the state, ``last_seen`` only moves forward. Episodes are not touched
        here: the book is restored from the firing events (:meth:`EpisodeBook.restore`), and
        :meth:`reconcile_with_book` forgets an episode another instance resolved meanwhile.
        ``last_times`` (newest stored reading per device) fill in devices without a row."""
        n = 0
        for device_id, state, since_dt, seen_dt in rows:
            since, seen = since_dt.timestamp(), seen_dt.timestamp()
            d = self._devs.get(device_id)
            if d is None:
                self._devs[device_id] = _Dev(state, since, seen)
                n += 1
                continue
            if seen > d.last_seen:
                d.last_seen = seen
            if since > d.since:
                d.state, d.since = state, since
        for device_id, ts in last_times:
            if device_id not in self._devs:
                t = ts.timestamp()
                self._devs[device_id] = _Dev("online", t, t)
                n += 1
        return n

    def reconcile_with_book(self) -> int:
        """Make presence and the active ``device.offline`` episodes agree after a restore:
        an episode newer than the stored "online" puts the device offline (since its start);
        an "online" newer than the episode means another instance resolved it meanwhile
        (partitions moved): the episode is forgotten without an event. Returns how many
        episodes were forgotten."""
        dropped = 0
        for key, ep in list(self.book.active.items()):
            if key[1] != KIND:
                continue
            start = ep.starts_at.timestamp()
            d = self._devs.get(key[0])
            if d is None:
                self._devs[key[0]] = _Dev("offline", start, -math.inf)
            elif d.state == "online":
                if d.since > start:
                    del self.book.active[key]
                    dropped += 1
                else:
                    d.state, d.since = "offline", start
        return dropped

    # ---------------------------------------------------------------------------- internal
    def _go_offline(self, ctx: DeviceCtx, t: float, reason: str, d: _Dev | None, k: float = 0.0) -> None:
        if d is None:
            d = self._devs[ctx.device_id] = _Dev("offline", t, -math.inf)
        else:
            d.state, d.since = "offline", t
        self.changes[ctx.device_id] = ("offline", ts_of(t))
        why = _WHY.get(reason, reason)
        if reason == "silence" and ctx.expected_interval_s:
            why = f"{why} ({k:g} × {ctx.expected_interval_s:g} s)"
        seen = ts_of(d.last_seen) if d.last_seen > -math.inf else ts_of(t)
        note = (Evidence(ts=seen, metric="presence", value=0.0, note=f"{reason}; last seen"),)
        self.book.assert_(ctx, KIND, ts_of(t), "presence", summary=f"设备离线: {why}", evidence=note)


class OfflineDetector:
    """Status records → :class:`Presence` (the engine feeds readings and device events to
    :meth:`Presence.heard` directly)."""

    def __init__(self, presence: Presence) -> None:
        self.presence = presence

    def on_status(self, ctx: DeviceCtx, st: DeviceStatus) -> None:
        t = st.received_at.timestamp()
        if st.state is None or st.state is PresenceState.ONLINE:  # a battery/signal report is the device speaking too
            self.presence.heard(ctx, t, st.reason)
            return
        if st.reason == "silence" and ctx.params.device.offline_source != "ingest":
            return  # a bridge judging silence on a partial view: stored only (one judge)
        self.presence.reported_offline(ctx, t, st.reason)


class IngestWatermarks:
    """The bridges' watermarks (:class:`~hazmon.contracts.IngestBeat`) per status partition.

    A partition's watermark is the smallest ``at`` among its *live* bridges (a beat within
    ``ttl_s`` of the newest one there): every bridge has put on Kafka all it received before
    it. A bridge that stops beating holds the watermark for ``ttl_s`` (a restart), then is left
    out (scaled down or dead; see the limits in docs/detectors.md). When the watermark jumps
    by more than ``gap_s`` the ingest path was blind in between (bridges down, broker queueing,
    a bridge restarting): ``quiet_from`` moves to the new watermark and silence is counted from
    there, so devices whose queued messages are still arriving are not declared offline.
    Pure: fed in consumption order, it makes the same decisions on a replay."""

    def __init__(self, ttl_s: float = 60.0, gap_s: float = 10.0) -> None:
        self.ttl_s, self.gap_s = ttl_s, gap_s
        self._at: dict[int, dict[str, float]] = {}
        self._mark: dict[int, float] = {}
        self._quiet_from: dict[int, float] = {}

    def beat(self, partition: int, bridge: str, at: float) -> None:
        bridges = self._at.setdefault(partition, {})
        if at <= bridges.get(bridge, -math.inf):
            return  # redelivered or out of order
        bridges[bridge] = at
        newest = max(bridges.values())
        for gone in [b for b, t in bridges.items() if t < newest - 10 * self.ttl_s]:
            del bridges[gone]
        mark = min(t for t in bridges.values() if t >= newest - self.ttl_s)
        prev = self._mark.get(partition)
        if prev is None or mark > prev:
            # The first beat seen here is also a gap's end: what happened before it is unknown
            # to this detector (fresh topics after a whole-system outage, while presence was
            # restored from the database). A detector resuming from its committed offsets reads
            # old beats first, so for it this costs nothing.
            if prev is None or mark - prev > self.gap_s:
                self._quiet_from[partition] = mark
            self._mark[partition] = mark

    def get(self, partition: int) -> Clock | None:
        """(watermark, quiet_from) of a partition; None before its first beat."""
        mark = self._mark.get(partition)
        return None if mark is None else (mark, self._quiet_from.get(partition, -math.inf))

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget partitions no longer assigned here (their beats are read again if they return)."""
        keep = set(partitions)
        for d in (self._at, self._mark, self._quiet_from):
            for p in [p for p in d if p not in keep]:
                del d[p]
