"""Per-device detector state: a device index, growable numpy columns, ring buffers, and the
book of active episodes (the single place that says what is firing).

Why numpy columns: 10,000+ devices × a dozen numbers each stay a few MB and can be checked
in bulk; a device is a row number (``DeviceCtx.idx``) resolved once per message.

Why one episode book: every detector asks the book whether an episode is active instead of
keeping its own flag, so the restart path (:meth:`EpisodeBook.restore`) only has to load the
firing events from the database to make "is it already announced?" right again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hazmon.contracts import Event, EventState, Evidence, Severity, event_id

from .config import DetectorConfig, DomainParams

__all__ = ["DeviceMeta", "DeviceCtx", "DeviceTable", "Columns", "Ring", "Episode", "EpisodeBook", "ts_of"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts_of(seconds: float) -> datetime:
    """Epoch seconds → aware UTC datetime (inverse of ``datetime.timestamp()``)."""
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class DeviceMeta:
    """What the registry says about a device (site class, parent panel, township)."""

    site_id: str = ""
    domain: str = ""
    model: str = ""
    site_class: str = ""
    township: str = ""
    parent_id: str | None = None
    expected_interval_s: int | None = None
    #: a canary (issue 20, detectors/canary.py): announced, never stored, detected or counted
    is_canary: bool = False


@dataclass(slots=True)
class DeviceCtx:
    """A device as the detectors see it: its row number, resolved thresholds and labels."""

    idx: int
    device_id: str
    site_id: str
    domain: str
    model: str
    params: DomainParams
    labels: dict[str, str]
    #: the registry's expected reporting interval (presence: silence > k × this ⇒ offline)
    expected_interval_s: float | None = None


class Columns:
    """Growable per-device numpy columns (float64 NaN-initialised, or int32 zeros)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._cols: dict[str, np.ndarray] = {}
        self._fill: dict[str, Any] = {}

    def add(self, name: str, dtype: Any = np.float64, fill: Any = math.nan, width: int = 0) -> np.ndarray:
        shape = (self.capacity, width) if width else (self.capacity,)
        arr = np.full(shape, fill, dtype=dtype)
        self._cols[name] = arr
        self._fill[name] = fill
        return arr

    def __getitem__(self, name: str) -> np.ndarray:
        return self._cols[name]

    def ensure(self, n: int) -> bool:
        """Grow (doubling) so row ``n - 1`` exists; True when arrays were replaced."""
        if n <= self.capacity:
            return False
        new_cap = self.capacity
        while new_cap < n:
            new_cap *= 2
        for name, arr in self._cols.items():
            grown = np.full((new_cap, *arr.shape[1:]), self._fill[name], dtype=arr.dtype)
            grown[: self.capacity] = arr
            self._cols[name] = grown
        self.capacity = new_cap
        return True

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._cols.values())


class Ring:
    """Fixed-size per-device ring buffers of (ts, value) for windowed rules (rate of rise)."""

    def __init__(self, cols: Columns, name: str, size: int = 16) -> None:
        self.cols, self.name, self.size = cols, name, size
        cols.add(f"{name}_ts", np.float64, -math.inf, size)
        cols.add(f"{name}_v", np.float64, math.nan, size)
        cols.add(f"{name}_head", np.int32, 0)

    def push(self, idx: int, ts: float, value: float) -> None:
        head = self.cols[f"{self.name}_head"]
        h = int(head[idx])
        self.cols[f"{self.name}_ts"][idx, h] = ts
        self.cols[f"{self.name}_v"][idx, h] = value
        head[idx] = (h + 1) % self.size

    def push_many(self, idx: int, ts: np.ndarray, values: np.ndarray) -> None:
        """Append a run of readings (oldest first) in one step."""
        n = ts.shape[0]
        size = self.size
        if n > size:
            ts, values, n = ts[-size:], values[-size:], size
        head = self.cols[f"{self.name}_head"]
        h = int(head[idx])
        pos = (h + np.arange(n)) % size
        self.cols[f"{self.name}_ts"][idx, pos] = ts
        self.cols[f"{self.name}_v"][idx, pos] = values
        head[idx] = (h + n) % size

    def window(self, idx: int, since: float) -> tuple[np.ndarray, np.ndarray]:
        ts = self.cols[f"{self.name}_ts"][idx]
        mask = ts >= since
        return ts[mask], self.cols[f"{self.name}_v"][idx][mask]

    def window_min(self, idx: int, since: float) -> tuple[float, float]:
        """(min value, its ts) over entries with ts ≥ since; (nan, nan) when empty."""
        ts, vals = self.window(idx, since)
        if vals.size == 0:
            return math.nan, math.nan
        low = float(vals.min())
        # ties: the latest time the value sat at its minimum is when the rise began
        return low, float(ts[vals == low].max())


class DeviceTable:
    """Device id → row number, plus the resolved context of each device."""

    def __init__(self, config: DetectorConfig, meta: Callable[[str], DeviceMeta | None]) -> None:
        self.config = config
        self._meta = meta
        self._idx: dict[str, DeviceCtx] = {}
        self.cols = Columns()
        self._grow_hooks: list[Callable[[int], None]] = []

    def __len__(self) -> int:
        return len(self._idx)

    def __iter__(self) -> Iterator[DeviceCtx]:
        return iter(self._idx.values())

    def on_grow(self, hook: Callable[[int], None]) -> None:
        self._grow_hooks.append(hook)

    def get(self, device_id: str) -> DeviceCtx | None:
        return self._idx.get(device_id)

    def is_canary(self, device_id: str) -> bool:
        """A canary device of the registry (detectors/canary.py)."""
        meta = self._meta(device_id)
        return meta is not None and meta.is_canary

    def ctx(self, device_id: str, site_id: str = "", domain: str = "", model: str = "") -> DeviceCtx:
        found = self._idx.get(device_id)
        if found is not None:
            if not found.site_id and site_id:  # first seen without it (warm-up of an unregistered device)
                found.site_id = site_id
            if not found.domain and domain:
                found.domain = domain
            return found
        meta = self._meta(device_id) or DeviceMeta()
        site = meta.site_id or site_id
        dom = meta.domain or domain
        mdl = meta.model or model
        params = self.config.params(meta.site_class, mdl)
        labels = {"model": mdl, "site_class": meta.site_class}
        if meta.township:
            labels["township"] = meta.township
        if meta.parent_id:
            labels["panel" if dom == "fire" else "parent"] = meta.parent_id
        elif dom == "fire":
            labels["panel"] = device_id
        ctx = DeviceCtx(len(self._idx), device_id, site, dom, mdl, params, labels,
                        float(meta.expected_interval_s) if meta.expected_interval_s else None)
        self._idx[device_id] = ctx
        n = len(self._idx)
        if self.cols.ensure(n):
            for hook in self._grow_hooks:
                hook(self.cols.capacity)
        return ctx

    def refresh(self, meta: Callable[[str], DeviceMeta | None] | None = None) -> None:
        """Re-resolve thresholds and labels after a registry or config reload; ``meta`` is the
        re-read registry's lookup (default: keep the current one)."""
        if meta is not None:
            self._meta = meta
        old = self._idx
        self._idx = {}
        for device_id, ctx in sorted(old.items(), key=lambda kv: kv[1].idx):
            new = self.ctx(device_id, ctx.site_id, ctx.domain, ctx.model)
            assert new.idx == ctx.idx


@dataclass(slots=True)
class Episode:
    id: str
    kind: str
    domain: str
    device_id: str
    site_id: str
    component: str
    zone: str
    severity: Severity
    starts_at: datetime
    sources: set[str]
    summary: str
    evidence: tuple[Evidence, ...]
    labels: dict[str, str] = field(default_factory=dict)
    #: when hazmon received the record that opened it (the stream clock then): alerting counts a
    #: late alarm's escalation from here, not from the device's ``starts_at`` (issue 18)
    received_at: datetime | None = None


Key = tuple[str, str, str]  # device id, kind, component


class EpisodeBook:
    """Active episodes and the events they produce.

    An episode may be asserted by several sources (the device's own alarm code, our reading
    rule): it fires once, when the first source asserts it, and resolves when the last
    source retracts. ``emitting = False`` (state warm-up after a restart) updates the book
    without producing events.
    """

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.active: dict[Key, Episode] = {}
        self.outbox: list[Event] = []
        self.emitting = True
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: the receipt time of the record being processed (the engine's stream clock)
        self.received: Callable[[], datetime | None] = lambda: None

    def is_active(self, device_id: str, kind: str, component: str = "") -> bool:
        return (device_id, kind, component) in self.active

    def assert_(
        self,
        ctx: DeviceCtx,
        kind: str,
        starts_at: datetime,
        source: str,
        *,
        component: str = "",
        zone: str = "",
        summary: str = "",
        evidence: Iterable[Evidence] = (),
        id_part: str = "",
        labels: dict[str, str] | None = None,
    ) -> bool:
        """Start (or join) an episode; True when this call started it (an event was made).

        ``id_part`` joins the event id when parts of one device can start the same kind at the
        same instant (two fire systems' components in one GB/T 26875.3 frame); ``labels`` are
        added to the device's."""
        key = (ctx.device_id, kind, component)
        ep = self.active.get(key)
        if ep is not None:
            ep.sources.add(source)
            return False
        ep = Episode(
            id=event_id(ctx.device_id, f"{kind}|{id_part}" if id_part else kind, starts_at),
            kind=kind,
            domain=kind.split(".", 1)[0] if kind.split(".", 1)[0] != "device" else ctx.domain or "device",
            device_id=ctx.device_id,
            site_id=ctx.site_id or "unknown",  # an unregistered device first seen without its site
            component=component,
            zone=zone,
            severity=self.config.severity(ctx.params, kind),
            starts_at=starts_at,
            sources={source},
            summary=summary[:500],
            evidence=tuple(evidence)[:10],
            labels={**ctx.labels, **labels} if labels else dict(ctx.labels),
            received_at=self.received(),
        )
        self.active[key] = ep
        self._emit(ep, EventState.FIRING, None)
        return True

    def retract(
        self,
        ctx: DeviceCtx | str,
        kind: str,
        source: str | None,
        ends_at: datetime,
        *,
        component: str = "",
        evidence: Iterable[Evidence] = (),
    ) -> bool:
        """Withdraw one source (None = all); True when the episode resolved."""
        device_id = ctx if isinstance(ctx, str) else ctx.device_id
        key = (device_id, kind, component)
        ep = self.active.get(key)
        if ep is None:
            return False
        if source is None:
            ep.sources.clear()
        else:
            ep.sources.discard(source)
            ep.sources.discard("restored")
        if ep.sources:
            return False
        del self.active[key]
        if ends_at < ep.starts_at:
            ends_at = ep.starts_at
        extra = tuple(evidence)
        if extra:
            ep.evidence = (ep.evidence + extra)[-10:]
        self._emit(ep, EventState.RESOLVED, ends_at)
        return True

    def episodes_of(self, device_id: str, kinds: Iterable[str] | None = None) -> list[Episode]:
        wanted = set(kinds) if kinds is not None else None
        return [
            ep for (dev, kind, _), ep in self.active.items() if dev == device_id and (wanted is None or kind in wanted)
        ]

    def restore(self, events: Iterable[Event]) -> int:
        """Seed active episodes from firing events stored before a restart; nothing is emitted."""
        n = 0
        for ev in events:
            key = (ev.device_id, ev.kind, ev.component)
            if key in self.active and self.active[key].id == ev.id:
                self.active[key].sources.add("restored")
                continue
            self.active[key] = Episode(
                id=ev.id,
                kind=ev.kind,
                domain=ev.domain,
                device_id=ev.device_id,
                site_id=ev.site_id,
                component=ev.component,
                zone=ev.zone,
                severity=ev.severity,
                starts_at=ev.starts_at,
                sources={"restored"},
                summary=ev.summary,
                evidence=ev.evidence,
                labels=dict(ev.labels),
                received_at=ev.received_at,
            )
            n += 1
        return n

    def reconcile(self, firing: Iterable[Event]) -> None:
        """After warm-up: the stored firing set is authoritative for what was announced;
        episodes are taken from the stored events (ids, sites, labels as announced)."""
        stored = list(firing)
        self.active = {}
        self.restore(stored)

    def drain(self) -> list[Event]:
        out, self.outbox = self.outbox, []
        return out

    def _emit(self, ep: Episode, state: EventState, ends_at: datetime | None) -> None:
        if not self.emitting:
            return
        self.outbox.append(
            Event(
                id=ep.id,
                kind=ep.kind,
                domain=ep.domain,
                severity=ep.severity,
                state=state,
                device_id=ep.device_id,
                site_id=ep.site_id,
                component=ep.component,
                zone=ep.zone,
                starts_at=ep.starts_at,
                ends_at=ends_at,
                detected_at=self.now(),
                received_at=ep.received_at,
                summary=ep.summary,
                evidence=ep.evidence,
                labels=ep.labels,
            )
        )
