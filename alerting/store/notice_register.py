"""通知单台账: the 四单 register per unit (``notice_units``, migration 028) — each notice's addressed
units with their 签收, 回复 and 办结 — and what a 问责建议单 names (``notices.concerning``).

A notice (``notices``) is written by the escalation pass (:mod:`alerting.notices`); its units
come from its recipients (:func:`units_of`): a township's duty room and its grid member are the
township's row (属地), a department's duty room the department's, a leader reading a 问责建议单
the leader's, the duty desk's copy the centre's. The console reads and writes through here
(console/routes/notices.py); every write returns what it did, the caller audits it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from hazmon.contracts import Recipient, RecipientRole

__all__ = [
    "RegisterUnit",
    "RegisterFilter",
    "units_of",
    "insert_notice_units",
    "prior_notice",
    "set_concerning",
    "list_register",
    "notice_with_units",
    "sign_unit",
    "reply_unit",
    "close_unit",
]

UnitKind = Literal["township", "department", "leader", "centre"]
#: the ids in a recipient's matrix rule (``township:T1:duty``, ``matrix:R-gas:department:zj``, …)
_RULE = re.compile(r"(department|covering_leader|leader|township):([^:;]+)")


@dataclass(frozen=True, slots=True)
class RegisterUnit:
    kind: UnitKind
    id: str
    name: str
    roles: tuple[str, ...] = ()


def units_of(recipients: Sequence[Recipient], township_id: str, township_name: str) -> list[RegisterUnit]:
    """The units a notice to ``recipients`` is addressed to, one each (the roles reached merged)."""
    found: dict[tuple[str, str], RegisterUnit] = {}

    def add(kind: UnitKind, ident: str, name: str, role: str) -> None:
        key = (kind, ident)
        old = found.get(key)
        roles = (*(old.roles if old else ()), role)
        found[key] = RegisterUnit(kind, ident, old.name if old else name, tuple(dict.fromkeys(roles)))

    for r in recipients:
        m = {k: v for k, v in _RULE.findall(r.rule)}
        if r.role in (RecipientRole.TOWNSHIP, RecipientRole.GRID_MEMBER):
            add("township", m.get("township") or township_id, township_name or r.unit, r.role.value)
        elif r.role is RecipientRole.DEPARTMENT and "department" in m:
            add("department", m["department"], r.unit or r.name, r.role.value)
        elif r.role in (RecipientRole.LEADER, RecipientRole.COVERING_LEADER):
            add("leader", m.get("leader") or m.get("covering_leader") or r.name, r.name, r.role.value)
        elif r.role is RecipientRole.DUTY_OPERATOR:
            add("centre", "duty", r.unit or r.name, r.role.value)
    return list(found.values())


async def insert_notice_units(conn: asyncpg.Connection, notice_id: int, units: Sequence[RegisterUnit]
                              ) -> None:
    for u in units:
        await conn.execute(
            """INSERT INTO notice_units (notice_id, unit_kind, unit_id, unit_name, roles)
               VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING""",
            notice_id, u.kind, u.id, u.name, list(u.roles))


async def prior_notice(conn: asyncpg.Connection, alert_id: str, step: int
                       ) -> tuple[str, datetime, list[dict[str, str]]] | None:
    """The last notice issued for the alert below ``step``: its level, deadline and the townships
    and departments it was addressed to that have not had their part closed (办结)."""
    row = await conn.fetchrow(
        "SELECT id, level, deadline FROM notices WHERE alert_id=$1 AND step<$2 ORDER BY step DESC LIMIT 1",
        alert_id, step)
    if row is None:
        return None
    units = await conn.fetch(
        """SELECT unit_kind, unit_id, unit_name FROM notice_units WHERE notice_id=$1 AND closed_at IS NULL
               AND unit_kind IN ('township','department') ORDER BY unit_kind DESC, unit_id""", row["id"])
    return row["level"], row["deadline"], [
        {"kind": u["unit_kind"], "id": u["unit_id"], "name": u["unit_name"]} for u in units]


async def set_concerning(conn: asyncpg.Connection, notice_id: int, units: Sequence[dict[str, str]]) -> None:
    await conn.execute("UPDATE notices SET concerning=$2::jsonb WHERE id=$1", notice_id,
                       json.dumps(list(units), ensure_ascii=False))


@dataclass(frozen=True, slots=True)
class RegisterFilter:
    township_id: str | None = None
    department_id: str | None = None
    level: str | None = None
    state: Literal["unsigned", "unreplied", "replied", "closed", "overdue"] | None = None


_COLUMNS = """u.notice_id, n.alert_id, n.level, n.step, n.issued_by, n.issued_at, n.deadline, n.reason,
    n.status AS notice_status, n.concerning, u.unit_kind, u.unit_id, u.unit_name, u.roles, u.signed_at,
    u.signed_by, u.replied_at, u.replied_by, u.reply, u.closed_at, u.closed_by, u.close_note,
    a.site_id, coalesce(s.name, a.site_id) AS site_name, s.township_id, a.domain, a.kind, a.severity"""
_FROM = """notice_units u JOIN notices n ON n.id = u.notice_id JOIN alerts a ON a.id = n.alert_id
    LEFT JOIN sites s ON s.id = a.site_id"""
_STATE = {
    "unsigned": "u.signed_at IS NULL AND u.closed_at IS NULL",
    "unreplied": "u.replied_at IS NULL AND u.closed_at IS NULL",
    "replied": "u.replied_at IS NOT NULL AND u.closed_at IS NULL",
    "closed": "u.closed_at IS NOT NULL",
    "overdue": "u.replied_at IS NULL AND u.closed_at IS NULL AND n.deadline < $NOW",
}


async def list_register(conn: Any, f: RegisterFilter, *, now: datetime, limit: int, offset: int
                        ) -> tuple[int, list[Any]]:
    """A page of the register, one row per notice and unit, newest first. ``township_id``: the
    township's own rows; ``department_id``: the department's; neither: every row (the centre)."""
    where, args = ["true"], [now]

    def p(v: Any) -> str:
        args.append(v)
        return f"${len(args)}"

    if f.township_id:
        where.append(f"u.unit_kind='township' AND u.unit_id={p(f.township_id)}")
    if f.department_id:
        where.append(f"u.unit_kind='department' AND u.unit_id={p(f.department_id)}")
    if f.level:
        where.append(f"n.level={p(f.level)}")
    if f.state:
        where.append(_STATE[f.state].replace("$NOW", "$1"))
    cond = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM {_FROM} WHERE {cond} AND $1::timestamptz IS NOT NULL",
                                *args)
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM {_FROM} WHERE {cond} AND $1::timestamptz IS NOT NULL
            ORDER BY n.issued_at DESC, u.notice_id DESC, u.unit_kind, u.unit_id
            LIMIT {p(limit)} OFFSET {p(offset)}""", *args)
    return int(total or 0), list(rows)


async def notice_with_units(conn: Any, notice_id: int) -> list[Any]:
    """Every unit row of one notice (empty: no such notice)."""
    return list(await conn.fetch(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE u.notice_id=$1 ORDER BY u.unit_kind DESC, u.unit_id",
        notice_id))


_KEY = "notice_id=$1 AND unit_kind=$2 AND unit_id=$3"


async def _locked(conn: asyncpg.Connection, notice_id: int, kind: str, unit_id: str) -> Any:
    return await conn.fetchrow(f"SELECT * FROM notice_units WHERE {_KEY} FOR UPDATE",
                               notice_id, kind, unit_id)


async def sign_unit(conn: asyncpg.Connection, notice_id: int, kind: str, unit_id: str, *, actor: str,
                    now: datetime) -> str:
    """签收: ``signed``, ``already`` (signed before: the first signature stands) or ``missing``."""
    row = await _locked(conn, notice_id, kind, unit_id)
    if row is None:
        return "missing"
    if row["signed_at"] is not None:
        return "already"
    await conn.execute(f"UPDATE notice_units SET signed_at=$4, signed_by=$5 WHERE {_KEY}",
                       notice_id, kind, unit_id, now, actor)
    return "signed"


async def reply_unit(conn: asyncpg.Connection, notice_id: int, kind: str, unit_id: str, *, actor: str,
                     now: datetime, text: str) -> str:
    """回复 (signs too, if not yet): ``replied``, ``closed`` (its part is 办结: no more replies) or
    ``missing``. A second reply replaces the first (the register keeps the latest; the audit both).
    The notice is ``answered`` once every township and department addressed has replied."""
    row = await _locked(conn, notice_id, kind, unit_id)
    if row is None:
        return "missing"
    if row["closed_at"] is not None:
        return "closed"
    await conn.execute(
        f"""UPDATE notice_units SET replied_at=$4, replied_by=$5, reply=$6,
               signed_at=coalesce(signed_at, $4), signed_by=coalesce(signed_by, $5) WHERE {_KEY}""",
        notice_id, kind, unit_id, now, actor, text)
    await conn.execute(
        """UPDATE notices SET status='answered' WHERE id=$1 AND status='open' AND NOT EXISTS (
               SELECT 1 FROM notice_units WHERE notice_id=$1 AND unit_kind IN ('township','department')
                   AND replied_at IS NULL)""", notice_id)
    return "replied"


async def close_unit(conn: asyncpg.Connection, notice_id: int, kind: str, unit_id: str, *, actor: str,
                     now: datetime, note: str) -> str:
    """办结 of one unit's part by the centre: ``closed``, ``already``, ``unreplied`` (a township or
    department must reply first) or ``missing``. The notice is closed with its last unit."""
    row = await _locked(conn, notice_id, kind, unit_id)
    if row is None:
        return "missing"
    if row["closed_at"] is not None:
        return "already"
    if kind in ("township", "department") and row["replied_at"] is None:
        return "unreplied"
    await conn.execute(f"UPDATE notice_units SET closed_at=$4, closed_by=$5, close_note=$6 WHERE {_KEY}",
                       notice_id, kind, unit_id, now, actor, note)
    await conn.execute(
        """UPDATE notices SET status='closed', closed_at=$2 WHERE id=$1 AND NOT EXISTS (
               SELECT 1 FROM notice_units WHERE notice_id=$1 AND closed_at IS NULL)""", notice_id, now)
    return "closed"
