"""The restart path (kill -9 safe): before the detector consumes, its state is rebuilt from the
database — the firing events (they stay the active episodes under their ids), the recent window
of readings and device events (ring buffers, timers, shields), the newest stored time per device
and metric (re-consumed readings count as already applied) and the presence rows — and the
device facts come from the registry snapshot (also re-read while running)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import asyncpg

from hazmon.catalog import DEVICE_EVENT_CODES, METRICS
from hazmon.contracts import DeviceEvent, Event
from hazmon.logs import kv
from hazmon.settings import DetectorSettings

from .base import Sample
from .config import DetectorConfig
from .engine import _METRIC_CODE, _NO_DETECT, Engine
from .offline import PresenceRow
from .state import DeviceMeta

__all__ = ["registry_meta", "reload_registry", "rebuild", "warm_up", "load_firing", "load_recent_readings",
           "load_recent_device_events", "load_latest_times", "load_presence"]

log = logging.getLogger(__name__)


async def registry_meta(conn: asyncpg.Connection, *, strict: bool = False,
                        config: DetectorConfig | None = None) -> Callable[[str], DeviceMeta | None]:
    """Device facts from the registry snapshot (hazmon.registry). Unreadable registry: no facts
    (defaults) at start, or — ``strict``, for a reload — the error, so the caller keeps the
    facts it has. Given the thresholds ``config``, a ``site_classes`` override no site of the
    registry uses is logged as a warning (file:line, key path), once."""
    try:
        from hazmon.registry import load_registry

        reg = await load_registry(conn)
    except (asyncpg.PostgresError, ImportError) as exc:
        if strict:
            raise
        log.warning("registry not loaded, thresholds from defaults %s", kv(error=str(exc)))
        return lambda _d: None
    metas: dict[str, DeviceMeta] = {}
    for dev in reg.devices.values():
        site = reg.sites.get(dev.site_id)
        metas[dev.id] = DeviceMeta(
            site_id=dev.site_id, domain=dev.domain, model=dev.model,
            site_class=site.site_class if site else "", township=site.township_id if site else "",
            parent_id=dev.parent_id, expected_interval_s=dev.expected_interval_s,
            is_canary=bool(getattr(dev, "is_canary", False)),
        )
    if config is not None:
        config.warn_unused_site_classes((s.site_class for s in reg.sites.values()), log)
    log.info("registry loaded %s", kv(devices=len(metas)))
    return metas.get


async def reload_registry(engine: Engine, conn: asyncpg.Connection) -> None:
    """Re-read the registry and re-resolve every known device's context (thresholds, labels,
    expected interval). A device registered after start was otherwise never judged for silence
    until a restart. On a database error the previous facts stay."""
    t0 = time.perf_counter()
    try:
        meta = await registry_meta(conn, strict=True, config=engine.config)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("registry reload failed; keeping the previous one %s", kv(error=str(exc)[:200]))
        return
    engine.devices.refresh(meta)
    log.info("registry reloaded %s", kv(known_devices=len(engine.devices),
                                         seconds=round(time.perf_counter() - t0, 3)))


async def rebuild(engine: Engine, conn: asyncpg.Connection, opts: DetectorSettings) -> None:
    """Read the stored state and warm ``engine`` up with it (nothing is announced)."""
    t0 = time.perf_counter()
    firing = await load_firing(conn)
    readings = await load_recent_readings(conn, opts.warmup_readings_s)
    dev_events = await load_recent_device_events(conn, opts.warmup_device_events_s)
    latest = await load_latest_times(conn)
    presence = await load_presence(conn)
    engine.warm_up(firing, readings, dev_events, latest, presence)
    log.info("state rebuilt %s", kv(firing=len(firing), readings=len(readings), device_events=len(dev_events),
                                    presence=len(presence), devices=len(engine.devices),
                                    seconds=round(time.perf_counter() - t0, 3)))


def warm_up(
    engine: Engine,
    firing: Iterable[Event],
    readings: Iterable[tuple[str, str, str, str, datetime, float | None, Sequence[str], datetime]],
    device_events: Iterable[DeviceEvent] = (),
    latest_times: Iterable[tuple[str, str, datetime]] = (),
    presence: Iterable[PresenceRow] = (),
) -> None:
    """Rebuild ``engine``'s state after a restart without announcing anything.

    ``readings`` are stored rows (device_id, site_id, domain, metric, ts, value, flags,
    received_at) of the recent window in time order; they refill the ring buffers, timers
    and last-applied times. ``firing`` are the stored firing events: afterwards they are
    exactly the active episodes, with their original ids, so an ongoing alarm is not
    announced again and one that ends is resolved under its id. ``latest_times`` (the
    newest stored reading per device and metric) mark everything already stored as
    applied, so re-consumed messages after the committed offset detect nothing twice.
    ``presence`` (the ``device_presence`` rows) restores last-seen and online/offline, so
    a restarted detector neither declares every device silent (its memory is not empty)
    nor announces an ongoing outage again (the firing ``device.offline`` is the episode).
    """
    firing = list(firing)
    latest_times = list(latest_times)
    engine.book.emitting = False
    try:
        engine.book.restore(firing)
        by_device: dict[str, list[tuple]] = {}
        for row in readings:
            by_device.setdefault(row[0], []).append(row)
        for device_id, rows in by_device.items():
            domain = rows[0][2] or next(
                (METRICS[r[3]].domain for r in rows if r[3] in METRICS and METRICS[r[3]].domain != "*"), ""
            )
            ctx = engine.devices.ctx(device_id, rows[0][1], domain)
            feed: list[Sample] = []
            last = engine._last_row(ctx.idx)
            for _d, _s, _dom, metric, ts, value, flags, received in rows:
                code = _METRIC_CODE.get(metric)
                spec = METRICS.get(metric)
                if code is None or spec is None or value is None or _NO_DETECT.intersection(flags or ()):
                    continue
                if not (spec.low <= value <= spec.high) or not math.isfinite(value):
                    continue
                t = ts.timestamp()
                if t <= last[code]:
                    continue
                last[code] = t
                feed.append((metric, value, t, ts))
                engine._advance(received)
            if feed:
                engine._power(ctx, feed)
                det = engine.detectors.get(ctx.domain)
                if det is not None:
                    det.on_samples(ctx, feed)
        for ev in sorted(device_events, key=lambda e: e.ts):
            ctx = engine.devices.ctx(ev.device_id, ev.site_id, ev.domain)
            key = (ev.device_id, ev.code, ev.component)
            engine._dev_event_last[key] = max(engine._dev_event_last.get(key, -math.inf), ev.ts.timestamp())
            det = engine.detectors.get(ctx.domain or ev.domain)
            if det is not None and ev.code in DEVICE_EVENT_CODES.get(ctx.domain or ev.domain, frozenset()):
                det.on_device_event(ctx, ev)
        for device_id, metric, ts in latest_times:
            code = _METRIC_CODE.get(metric)
            if code is None:
                continue
            ctx = engine.devices.get(device_id) or engine.devices.ctx(device_id)
            last = engine._last_row(ctx.idx)
            last[code] = max(last[code], ts.timestamp())
        engine.book.reconcile(firing)
        newest: dict[str, datetime] = {}
        for device_id, _metric, ts in latest_times:
            if device_id not in newest or ts > newest[device_id]:
                newest[device_id] = ts
        engine.restore_presence(presence, newest.items())
        gas_busy = engine.devices.cols["gas_busy"]
        for ep in engine.book.active.values():
            ctx = engine.devices.ctx(ep.device_id, ep.site_id, ep.domain)
            if ep.kind.startswith("gas."):
                gas_busy[ctx.idx] = 1
    finally:
        engine.book.emitting = True
        engine.book.drain()


async def load_firing(conn: asyncpg.Connection) -> list[Event]:
    rows = await conn.fetch(
        "SELECT id, kind, domain, severity, state, device_id, site_id, component, zone, starts_at, ends_at,"
        " detected_at, summary, evidence::text AS evidence, labels::text AS labels"
        " FROM events WHERE state = 'firing' ORDER BY starts_at"
    )
    out = []
    for r in rows:
        d = dict(r)
        d["evidence"] = json.loads(d["evidence"])
        d["labels"] = json.loads(d["labels"])
        out.append(Event.model_validate(d))
    return out


async def load_recent_readings(conn: asyncpg.Connection, window_s: float) -> list[tuple]:
    """Readings of the last ``window_s`` before the newest stored one, in time order, as
    (device_id, site_id, domain, metric, ts, value, flags, received_at)."""
    newest = await conn.fetchval("SELECT max(ts) FROM readings")
    if newest is None:
        return []
    rows = await conn.fetch(
        "SELECT r.device_id, coalesce(d.site_id, ''), coalesce(d.domain, ''), r.metric, r.ts, r.value,"
        " r.flags, r.received_at"
        " FROM readings r LEFT JOIN devices d ON d.id = r.device_id"
        " WHERE r.ts >= $1 AND r.ts <= $2 ORDER BY r.ts",
        newest - timedelta(seconds=window_s), newest,
    )
    return [tuple(r) for r in rows]


async def load_recent_device_events(conn: asyncpg.Connection, window_s: float) -> list[DeviceEvent]:
    newest = await conn.fetchval("SELECT max(ts) FROM device_events")
    if newest is None:
        return []
    rows = await conn.fetch(
        "SELECT e.device_id, coalesce(d.site_id, 'unknown') AS site_id, coalesce(d.domain, '') AS domain,"
        " e.code, e.active, e.component, e.zone, e.detail::text AS detail, e.ts, e.received_at"
        " FROM device_events e LEFT JOIN devices d ON d.id = e.device_id"
        " WHERE e.ts >= $1 ORDER BY e.ts",
        newest - timedelta(seconds=window_s),
    )
    out = []
    for r in rows:
        domain = r["domain"] or _domain_for_code(r["code"])
        out.append(DeviceEvent(device_id=r["device_id"], site_id=r["site_id"], domain=domain, vendor="stored",
                               code=r["code"], active=r["active"], component=r["component"], zone=r["zone"],
                               detail=json.loads(r["detail"]), ts=r["ts"], received_at=r["received_at"]))
    return out


def _domain_for_code(code: str) -> str:
    for domain, codes in DEVICE_EVENT_CODES.items():
        if code in codes:
            return domain
    return "unknown"


async def load_latest_times(conn: asyncpg.Connection) -> list[tuple[str, str, datetime]]:
    rows = await conn.fetch("SELECT device_id, metric, ts FROM latest_readings")
    return [(r[0], r[1], r[2]) for r in rows]


async def load_presence(conn: asyncpg.Connection) -> list[tuple[str, str, datetime, datetime]]:
    """``device_presence`` rows (device_id, state, since, last_seen): the presence judge's
    memory after a restart or a rebalance (detectors/offline.py)."""
    rows = await conn.fetch("SELECT device_id, state, since, last_seen FROM device_presence")
    return [(r[0], r[1], r[2], r[3]) for r in rows]
