"""What a what-if replay (回放) reads: the stored readings, device events and status reports of a
period, rebuilt as the records the detectors consumed, and the live alerts of the period with
their 研判 verdicts. Read only: every query runs in one ``READ ONLY`` transaction, so a replay can
change nothing (alerting/replay.py).

The readings come back in the order they were received (``received_at``), a stored message's
samples together again (one device, one receipt time), through a cursor: a month of a district
is never held in memory at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from detectors.batch import Message
from hazmon.catalog import METRICS
from hazmon.contracts import DeviceEvent, DeviceStatus, PresenceState, ReadingFlag

__all__ = [
    "ReplayScope",
    "Record",
    "LiveAlert",
    "count_records",
    "device_records",
    "readings",
    "live_alerts",
    "scope_names",
    "scope_options",
    "Handling",
    "handling",
]

_FLAGS = frozenset(f.value for f in ReadingFlag)


@dataclass(frozen=True, slots=True)
class ReplayScope:
    """Which devices a replay covers: all, or one vendor's (id or name) and/or one model's."""

    model: str = ""
    vendor: str = ""


#: (received_at, topic 0 readings / 1 device events / 2 status, the record as consumed)
Record = tuple[datetime, int, Message]

_DEVICES = """
SELECT d.id FROM devices d JOIN vendors v ON v.id = d.vendor_id
WHERE ($1 = '' OR d.model = $1) AND ($2 = '' OR d.vendor_id = $2 OR v.name = $2)
"""


def _in_scope(alias: str) -> str:
    return (
        f"({alias}.device_id IN (SELECT d.id FROM devices d JOIN vendors v ON v.id = d.vendor_id"
        f" WHERE ($3 = '' OR d.model = $3) AND ($4 = '' OR d.vendor_id = $4 OR v.name = $4))"
        f" OR ($3 = '' AND $4 = ''))"
    )


async def count_records(conn: asyncpg.Connection, start: datetime, end: datetime, scope: ReplayScope) -> int:
    """The stored readings, device events and status reports of ``[start, end)`` in the scope
    (a fire panel or a lift reports device events, not readings)."""
    total = 0
    for table, alias in (("readings", "r"), ("device_events", "e"), ("device_status", "s")):
        total += int(
            await conn.fetchval(
                f"SELECT count(*) FROM {table} {alias} WHERE {alias}.ts >= $1 AND {alias}.ts < $2"
                f" AND {_in_scope(alias)}",
                start,
                end,
                scope.model,
                scope.vendor,
            )
        )
    return total


async def scope_names(conn: asyncpg.Connection, scope: ReplayScope) -> int:
    """How many registered devices the scope names (0: an unknown model or vendor)."""
    return len(await conn.fetch(_DEVICES, scope.model, scope.vendor))


_READINGS = """
SELECT r.device_id, coalesce(d.site_id, 'unknown') AS site_id, coalesce(d.domain, '') AS domain,
       coalesce(d.vendor_id, 'stored') AS vendor, coalesce(d.model, '') AS model,
       r.metric, r.ts, r.value, r.unit, r.seq, r.flags, r.received_at
FROM readings r LEFT JOIN devices d ON d.id = r.device_id
WHERE r.ts >= $1 AND r.ts < $2 AND {scope}
ORDER BY r.received_at, r.device_id, r.ts, r.metric
"""


async def readings(
    conn: asyncpg.Connection, start: datetime, end: datetime, scope: ReplayScope, *, prefetch: int = 5000
) -> AsyncIterator[Record]:
    """The stored readings of ``[start, end)`` as the ``readings`` records they came in (one per
    device and receipt time), oldest receipt first. ``conn`` must be inside a transaction."""
    batch: dict | None = None
    key: tuple[str, datetime] | None = None
    n = 0
    async for r in conn.cursor(
        _READINGS.format(scope=_in_scope("r")), start, end, scope.model, scope.vendor, prefetch=prefetch
    ):
        k = (r["device_id"], r["received_at"])
        if k != key:
            if batch is not None and key is not None:
                yield _reading_record(batch, key[1], n)
                n += 1
            key = k
            batch = {
                "device_id": r["device_id"],
                "site_id": r["site_id"],
                "domain": r["domain"] or _domain(r["metric"]),
                "vendor": r["vendor"],
                "model": r["model"],
                "received_at": r["received_at"],
                "samples": [],
            }
        assert batch is not None
        sample: dict = {"metric": r["metric"], "value": r["value"], "ts": r["ts"], "unit": r["unit"]}
        if r["seq"] is not None:
            sample["seq"] = r["seq"]
        flags = [f for f in r["flags"] or () if f in _FLAGS]
        if flags:
            sample["flags"] = flags
        batch["samples"].append(sample)
    if batch is not None and key is not None:
        yield _reading_record(batch, key[1], n)


def _domain(metric: str) -> str:
    """An unregistered device's domain, as far as its metric tells."""
    spec = METRICS.get(metric)
    return spec.domain if spec is not None and spec.domain != "*" else "gas"


def _reading_record(batch: dict, received_at: datetime, n: int) -> Record:
    return received_at, 0, Message(msgspec.json.encode(batch), f"replay:readings:{n}")


async def device_records(
    conn: asyncpg.Connection, start: datetime, end: datetime, scope: ReplayScope
) -> list[Record]:
    """The device events and status reports of ``[start, end)`` as consumed records, by receipt."""
    out: list[Record] = []
    rows = await conn.fetch(
        "SELECT e.device_id, coalesce(d.site_id, 'unknown') AS site_id, coalesce(d.domain, '') AS domain,"
        " coalesce(d.vendor_id, 'stored') AS vendor, e.code, e.active, e.component, e.zone,"
        " e.detail::text AS detail, e.ts, e.received_at"
        " FROM device_events e LEFT JOIN devices d ON d.id = e.device_id"
        f" WHERE e.ts >= $1 AND e.ts < $2 AND {_in_scope('e')} ORDER BY e.received_at, e.ts",
        start,
        end,
        scope.model,
        scope.vendor,
    )
    for i, r in enumerate(rows):
        ev = DeviceEvent(
            device_id=r["device_id"],
            site_id=r["site_id"],
            domain=r["domain"] or "gas",
            vendor=r["vendor"],
            code=r["code"],
            active=r["active"],
            component=r["component"],
            zone=r["zone"],
            detail=json.loads(r["detail"]),
            ts=r["ts"],
            received_at=r["received_at"],
        )
        out.append((r["received_at"], 1, Message(ev.model_dump_json().encode(), f"replay:device-events:{i}")))
    rows = await conn.fetch(
        "SELECT s.device_id, coalesce(d.site_id, 'unknown') AS site_id,"
        " coalesce(d.vendor_id, 'stored') AS vendor,"
        " s.ts, s.reason, s.state, s.battery_pct, s.signal_dbm, s.mains_power, s.received_at"
        " FROM device_status s LEFT JOIN devices d ON d.id = s.device_id"
        f" WHERE s.ts >= $1 AND s.ts < $2 AND {_in_scope('s')} ORDER BY s.received_at, s.ts",
        start,
        end,
        scope.model,
        scope.vendor,
    )
    for i, r in enumerate(rows):
        st = DeviceStatus(
            device_id=r["device_id"],
            site_id=r["site_id"],
            vendor=r["vendor"],
            state=PresenceState(r["state"]) if r["state"] else None,
            reason=r["reason"],
            battery_pct=r["battery_pct"],
            signal_dbm=r["signal_dbm"],
            mains_power=r["mains_power"],
            ts=r["ts"],
            received_at=r["received_at"],
        )
        out.append((r["received_at"], 2, Message(st.model_dump_json().encode(), f"replay:status:{i}")))
    out.sort(key=lambda rec: (rec[0], rec[1]))
    return out


@dataclass(frozen=True, slots=True)
class LiveAlert:
    """A stored (live) alert of the period: its identity and its 研判 verdict (None: not judged)."""

    id: str
    device_id: str
    kind: str
    starts_at: datetime
    verdict: str | None


async def live_alerts(
    conn: asyncpg.Connection, start: datetime, end: datetime, scope: ReplayScope
) -> list[LiveAlert]:
    """The live alerts that started in ``[start, end)`` on the scope's devices (what 误报率 counts)."""
    rows = await conn.fetch(
        "SELECT a.id, a.device_id, a.kind, a.starts_at, a.verdict FROM alerts a"
        f" WHERE a.starts_at >= $1 AND a.starts_at < $2 AND {_in_scope('a')} ORDER BY a.starts_at, a.id",
        start,
        end,
        scope.model,
        scope.vendor,
    )
    return [LiveAlert(r["id"], r["device_id"], r["kind"], r["starts_at"], r["verdict"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Handling:
    """What people did to a stored alert, in time (its applied transitions): when it was
    acknowledged, each phase it entered and each 研判 verdict — what the 四单 ladder's stop
    conditions read when a replayed alert is a stored one (alerting/replay_notices.py)."""

    acked_at: datetime | None
    phases: tuple[tuple[datetime, str], ...] = ()
    verdicts: tuple[tuple[datetime, str], ...] = ()


async def handling(conn: asyncpg.Connection, ids: list[str]) -> dict[str, Handling]:
    """The :class:`Handling` of the stored alerts ``ids``."""
    acked = {
        r["id"]: r["acked_at"]
        for r in await conn.fetch("SELECT id, acked_at FROM alerts WHERE id = ANY($1::text[])", ids)
    }
    phases: dict[str, list[tuple[datetime, str]]] = {}
    verdicts: dict[str, list[tuple[datetime, str]]] = {}
    for r in await conn.fetch(
        "SELECT alert_id, to_phase, at, verdict FROM alert_transitions"
        " WHERE alert_id = ANY($1::text[]) AND outcome = 'applied' ORDER BY alert_id, at, id",
        ids,
    ):
        phases.setdefault(r["alert_id"], []).append((r["at"], r["to_phase"]))
        if r["verdict"]:
            verdicts.setdefault(r["alert_id"], []).append((r["at"], r["verdict"]))
    return {i: Handling(acked.get(i), tuple(phases.get(i, ())), tuple(verdicts.get(i, ()))) for i in acked}


async def scope_options(conn: asyncpg.Connection) -> list[dict[str, object]]:
    """The registry's vendor models a replay can be limited to: model, vendor, device count."""
    rows = await conn.fetch(
        "SELECT d.model, d.vendor_id, v.name AS vendor_name, d.domain, count(*) AS devices"
        " FROM devices d JOIN vendors v ON v.id = d.vendor_id WHERE d.model <> ''"
        " GROUP BY 1, 2, 3, 4 ORDER BY 3, 1"
    )
    return [dict(r) for r in rows]
