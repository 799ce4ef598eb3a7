"""SQL of the 三色区域预警 and the accidents (事故) record (migration 037): the facts the pass counts,
the warnings with their history, and the reads of the console and the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "alarm_facts",
    "hazard_facts",
    "accident_facts",
    "active_warnings",
    "insert_warning",
    "update_warning",
    "lift_warning",
    "insert_history",
    "set_history_detail",
    "warnings_with_history",
    "insert_accident",
    "list_accidents",
    "try_lock",
]

_LOCK = 0x61726561  # pg advisory lock of the pass: two alerting instances never evaluate at once


async def try_lock(conn: asyncpg.Connection) -> bool:
    """The pass's transaction-scoped lock (released at commit); False: another instance holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK))


async def alarm_facts(conn: asyncpg.Connection, since: datetime) -> list[asyncpg.Record]:
    """Alarms that started since ``since`` (the monitoring system's own left out)."""
    return await conn.fetch(
        """SELECT site_id, township_id, domain, severity, COALESCE(verdict, 'none') AS verdict, starts_at
             FROM alerts WHERE starts_at >= $1 AND domain <> 'system'""",
        since,
    )


async def hazard_facts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Hazards not yet rectified (found, registered, supervised)."""
    return await conn.fetch(
        """SELECT id, site_id, township_id, domain, grade, deadline FROM hazards
            WHERE phase IN ('found', 'registered', 'supervised')"""
    )


async def accident_facts(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, site_id, township_id, domain, level, deaths, injuries, occurred_at FROM accidents
            WHERE occurred_at >= $1 AND occurred_at <= $2""",
        since,
        until,
    )


async def active_warnings(conn: asyncpg.Connection, *, lock: bool = False) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM area_warnings WHERE lifted_at IS NULL ORDER BY id" + (" FOR UPDATE" if lock else "")
    )


def _j(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


async def insert_warning(
    conn: asyncpg.Connection,
    *,
    scope: str,
    key: str,
    name: str,
    township_id: str,
    domains: Sequence[str],
    level: str,
    reasons: Sequence[str],
    measures: dict[str, float],
    now: datetime,
) -> int:
    return int(
        await conn.fetchval(
            """INSERT INTO area_warnings (scope, key, name, township_id, domains, level, reasons, measures,
                                      since, level_since, evaluated_at)
           VALUES ($1, $2, $3, $4, $5::text[], $6, $7::jsonb, $8::jsonb, $9, $9, $9) RETURNING id""",
            scope,
            key,
            name,
            township_id,
            list(domains),
            level,
            _j(list(reasons)),
            _j(measures),
            now,
        )
    )


async def update_warning(
    conn: asyncpg.Connection,
    warning_id: int,
    *,
    name: str,
    level: str,
    level_changed: bool,
    reasons: Sequence[str],
    measures: dict[str, float],
    now: datetime,
) -> None:
    await conn.execute(
        """UPDATE area_warnings SET name = $2, level = $3, reasons = $4::jsonb, measures = $5::jsonb,
                  evaluated_at = $6, level_since = CASE WHEN $7 THEN $6 ELSE level_since END
            WHERE id = $1""",
        warning_id,
        name,
        level,
        _j(list(reasons)),
        _j(measures),
        now,
        level_changed,
    )


async def lift_warning(conn: asyncpg.Connection, warning_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE area_warnings SET lifted_at = $2, evaluated_at = $2 WHERE id = $1", warning_id, now
    )


async def insert_history(
    conn: asyncpg.Connection,
    warning_id: int,
    action: str,
    from_level: str | None,
    to_level: str | None,
    reasons: Sequence[str],
    measures: dict[str, float],
    actor: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> int:
    return int(
        await conn.fetchval(
            """INSERT INTO area_warning_history (warning_id, action, from_level, to_level, reasons, measures,
                                             actor, at, detail)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9::jsonb) RETURNING id""",
            warning_id,
            action,
            from_level,
            to_level,
            _j(list(reasons)),
            _j(measures),
            actor,
            now,
            _j(detail or {}),
        )
    )


async def set_history_detail(conn: asyncpg.Connection, history_id: int, detail: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE area_warning_history SET detail = detail || $2::jsonb WHERE id = $1", history_id, _j(detail)
    )


async def warnings_with_history(
    conn: asyncpg.Connection, *, active_only: bool = True, limit: int = 500
) -> list[dict[str, Any]]:
    """Warnings (the active ones, or the latest of any state) each with its history, oldest first."""
    rows = await conn.fetch(
        "SELECT * FROM area_warnings"
        + (" WHERE lifted_at IS NULL" if active_only else "")
        + " ORDER BY (lifted_at IS NULL) DESC,"
        + " array_position(ARRAY['red','orange','yellow'], level), since DESC"
        + " LIMIT $1",
        limit,
    )
    hist = await conn.fetch(
        """SELECT warning_id, action, from_level, to_level, reasons, actor, at, detail
             FROM area_warning_history WHERE warning_id = ANY($1::bigint[]) ORDER BY id""",
        [r["id"] for r in rows],
    )
    by: dict[int, list[dict[str, Any]]] = {}
    for h in hist:
        d = dict(h)
        for k in ("reasons", "detail"):
            d[k] = json.loads(d[k]) if isinstance(d[k], str) else d[k]
        by.setdefault(h["warning_id"], []).append(d)
    out = []
    for r in rows:
        d = dict(r)
        for k in ("reasons", "measures"):
            d[k] = json.loads(d[k]) if isinstance(d[k], str) else d[k]
        d["history"] = by.get(r["id"], [])
        out.append(d)
    return out


async def insert_accident(
    conn: asyncpg.Connection,
    *,
    accident_id: str,
    occurred_at: datetime,
    township_id: str,
    site_id: str | None,
    domain: str,
    level: str,
    deaths: int,
    injuries: int,
    title: str,
    description: str,
    actor: str,
    now: datetime,
) -> bool:
    """The accident and its audit row; False when that id is taken (nothing written)."""
    done = await conn.fetchval(
        """INSERT INTO accidents (id, occurred_at, township_id, site_id, domain, level, deaths, injuries,
                                  title,
                                  description, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (id) DO NOTHING RETURNING id""",
        accident_id,
        occurred_at,
        township_id,
        site_id,
        domain,
        level,
        deaths,
        injuries,
        title,
        description,
        actor,
        now,
    )
    if done is None:
        return False
    await conn.execute(
        "INSERT INTO accident_audit (accident_id, action, actor, at, detail)"
        " VALUES ($1, 'add', $2, $3, $4::jsonb)",
        accident_id,
        actor,
        now,
        _j({"level": level, "deaths": deaths, "injuries": injuries}),
    )
    return True


async def list_accidents(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM accidents ORDER BY occurred_at DESC LIMIT $1", limit)
