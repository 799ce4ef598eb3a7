"""``work_orders`` and ``work_order_transitions`` (migration 030): the SQL of 工单
(alerting/workorders.py decides, alerting/workorder_steps.py and alerting/workorder_notify.py act).

Reads for the console take a condition built by the caller (its scope) with its parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["insert_order", "lock_order", "update_order", "insert_order_transition", "open_orders_of_alert",
           "open_same_unit", "any_due", "lock_due", "ORDER_COLUMNS", "list_orders", "order_row", "visible_order",
           "order_exists", "order_alert", "order_span", "order_transitions"]

#: what the console reads of an order: its columns, its alarm's kind and summary, the site's name
ORDER_COLUMNS = """o.*, a.kind AS alert_kind, a.summary AS alert_summary, a.phase AS alert_phase,
    a.domain AS alert_domain, coalesce(s.name, o.site_id) AS site_name"""
_FROM = "work_orders o JOIN alerts a ON a.id = o.alert_id LEFT JOIN sites s ON s.id = o.site_id"


async def insert_order(conn: asyncpg.Connection, row: Mapping[str, Any]) -> asyncpg.Record:
    cols = list(row)
    vals = [json.dumps(v, ensure_ascii=False) if k == "recipients" else v for k, v in row.items()]
    marks = ", ".join(f"${i}::jsonb" if k == "recipients" else f"${i}" for i, k in enumerate(cols, 1))
    out = await conn.fetchrow(f"INSERT INTO work_orders ({', '.join(cols)}) VALUES ({marks}) RETURNING *",
                              *vals)
    assert out is not None
    return out


async def lock_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The order's row, locked for a decision (inside the caller's transaction)."""
    return await conn.fetchrow("SELECT * FROM work_orders WHERE id = $1 FOR UPDATE", order_id)


async def update_order(conn: asyncpg.Connection, order_id: str, cols: Mapping[str, Any]) -> asyncpg.Record:
    """Set ``cols`` (trusted column names) and bump the version; the new row."""
    assigns = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(cols))
    row = await conn.fetchrow(
        f"UPDATE work_orders SET {assigns}, version = version + 1 WHERE id = $1 RETURNING *",
        order_id, *cols.values())
    assert row is not None
    return row


async def insert_order_transition(conn: asyncpg.Connection, order_id: str, action: str, from_state: str,
                                  to_state: str, outcome: str, actor: str, at: datetime, reason: str, *,
                                  version: int, detail: Mapping[str, Any] | None = None) -> int:
    return int(await conn.fetchval(
        """INSERT INTO work_order_transitions (order_id, action, from_state, to_state, outcome, actor, at,
                                               reason, detail, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10) RETURNING id""",
        order_id, action, from_state, to_state, outcome, actor, at, reason,
        json.dumps(dict(detail or {}), ensure_ascii=False, default=str), version))


async def open_orders_of_alert(conn: asyncpg.Connection, alert_id: str) -> int:
    """How many orders of the alarm are not 办结 yet."""
    return int(await conn.fetchval(
        "SELECT count(*) FROM work_orders WHERE alert_id = $1 AND state <> 'closed'", alert_id))


async def open_same_unit(conn: asyncpg.Connection, alert_id: str, unit_kind: str, unit_id: str,
                         contact_id: str | None) -> str | None:
    """The open order of the alarm already addressed to that unit and person, if any."""
    return await conn.fetchval(
        """SELECT id FROM work_orders WHERE alert_id = $1 AND unit_kind = $2 AND unit_id = $3
              AND contact_id IS NOT DISTINCT FROM $4 AND state <> 'closed' LIMIT 1""",
        alert_id, unit_kind, unit_id, contact_id)


async def any_due(conn: asyncpg.Connection, now: datetime) -> bool:
    """Whether any order's timer is due (one index probe, outside any transaction)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM work_orders WHERE next_due_at IS NOT NULL AND next_due_at <= $1)", now))


async def lock_due(conn: asyncpg.Connection, now: datetime, limit: int = 100) -> list[asyncpg.Record]:
    """The orders whose timer is due, locked (another alerting process skips them), oldest first."""
    return list(await conn.fetch(
        """SELECT * FROM work_orders WHERE next_due_at IS NOT NULL AND next_due_at <= $1
            ORDER BY next_due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED""", now, limit))


async def list_orders(conn: asyncpg.Connection, where: Sequence[str], values: Sequence[Any], *, limit: int,
                      offset: int) -> tuple[int, list[asyncpg.Record]]:
    """A page of orders matching ``where`` (conditions over ``o``, ``a``), overdue and newest first."""
    cond = " AND ".join(where) or "TRUE"
    total = await conn.fetchval(f"SELECT count(*) FROM {_FROM} WHERE {cond}", *values)
    n = len(values)
    rows = await conn.fetch(
        f"""SELECT {ORDER_COLUMNS} FROM {_FROM} WHERE {cond}
            ORDER BY (o.state <> 'closed') DESC, o.deadline, o.created_at DESC, o.id
            LIMIT ${n + 1} OFFSET ${n + 2}""", *values, limit, offset)
    return int(total), list(rows)


async def order_row(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM {_FROM} WHERE o.id = $1", order_id)


async def visible_order(conn: asyncpg.Connection, order_id: str, where: str,
                        values: Sequence[Any]) -> asyncpg.Record | None:
    """The order when it also meets ``where`` (the reader's visibility over ``o``; its
    parameters ``values`` come first)."""
    return await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM {_FROM} WHERE o.id = ${len(values) + 1}"
                               f" AND {where}", *values, order_id)


async def order_exists(conn: asyncpg.Connection, order_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM work_orders WHERE id = $1)", order_id))


async def order_alert(conn: asyncpg.Connection, order_id: str) -> str | None:
    """The alarm an order belongs to (None: no such order)."""
    found = await conn.fetchval("SELECT alert_id FROM work_orders WHERE id = $1", order_id)
    return None if found is None else str(found)


async def order_span(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """An order's created_at and deadline (its length, for a new deadline after 退回)."""
    return await conn.fetchrow("SELECT created_at, deadline FROM work_orders WHERE id = $1", order_id)


async def order_transitions(conn: asyncpg.Connection, order_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM work_order_transitions WHERE order_id = $1 ORDER BY id",
                                 order_id))
