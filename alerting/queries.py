"""Reads of alerting's tables for the console and the KPIs: the board (报警看板), the alert list
and detail, the hazards ledger (隐患台账), the district map's colours and the inputs of the
考核指标. One home for that SQL, so the index-plan test checks what really runs
(tests/detectors/test_console_queries.py) and a column renamed in alerting is renamed here.

Every read is a named async function taking a connection and typed parameters and returning
records (or a small dataclass of them). What a reader may see (数据权限) is the caller's: a
:class:`Visibility` gives the SQL condition on an alerts or hazards row (the console's
``Scope`` is one). Writes are not here: they are transitions (alerting.lifecycle for alerts,
alerting.ledger for hazards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "alert_exists",
    "hazard_exists",
    "latest_feedback",
    "open_major_hazards",
    "source_alert",
    "Params",
    "Visibility",
    "Page",
    "BoardSnapshot",
    "AlertFilter",
    "HazardFilter",
    "BOARD_COLUMNS",
    "BOARD_FROM",
    "DETAIL_COLUMNS",
    "HAZARD_COLUMNS",
    "HAZARD_FROM",
    "NOTIFICATIONS_OF_ALERT",
    "NOTICES_OF_ALERT",
    "latest_change",
    "changed_since",
    "board",
    "list_alerts",
    "alert_detail",
    "board_row",
    "alert_notifications",
    "alert_notices",
    "open_severity_by_site",
    "list_hazards",
    "hazard_in_scope",
]

#: columns of an alert on the board, in the list and after an action
BOARD_COLUMNS = """a.id, a.kind, a.domain, a.severity, a.state, a.phase, a.verdict, a.device_id, a.site_id,
    a.township_id, a.department_ids, a.summary, a.starts_at, a.ends_at, a.acked_at, a.acked_by, a.closed_at,
    a.escalation_step, a.suppressed_by, a.version, a.updated_at,
    coalesce(s.name, a.site_id) AS site_name, coalesce(t.name, a.township_id) AS township_name"""
BOARD_FROM = "alerts a LEFT JOIN sites s ON s.id = a.site_id LEFT JOIN townships t ON t.id = a.township_id"
#: an alert's detail page: the board's columns and what only the detail shows
DETAIL_COLUMNS = f"""{BOARD_COLUMNS}, a.component, a.zone, a.evidence, a.labels, a.detected_at, a.received_at,
    a.route_id, a.group_key, a.notified_at, a.closed_by, a.close_reason, a.next_escalation_at, a.reported_at,
    a.time_flag"""
NOTIFICATIONS_OF_ALERT = """SELECT id, channel, recipient_role, recipient_name, recipient_unit,
       recipient_phone, rule, notice_level, template, body, status, attempts, last_error, created_at,
       sent_at, delivered_at
FROM notifications WHERE alert_id = $1 ORDER BY created_at, id"""
NOTICES_OF_ALERT = """SELECT id, level, step, issued_at, deadline, recipients, issued_by, reason, status,
       closed_at
FROM notices WHERE alert_id = $1 ORDER BY step"""
HAZARD_COLUMNS = """h.id, h.site_id, coalesce(s.name, h.site_id) AS site_name, h.township_id, h.domain,
    h.department_ids, h.title, h.description, h.grade, h.source_alert_id, h.phase, h.found_at, h.found_by,
    h.deadline, h.supervisor, h.rectified_at, h.struck_off_at, h.version, h.updated_at, h.owner, h.measures,
    h.funds, h.plan, h.rectify_note, h.attachment_ids, h.reviewed_at, h.reviewed_by, h.review_note,
    h.overdue_level"""
HAZARD_FROM = "hazards h LEFT JOIN sites s ON s.id = h.site_id"
#: board order: red, orange, yellow, blue, newest first within a colour
_BOARD_ORDER = """CASE a.severity WHEN 'red' THEN 0 WHEN 'orange' THEN 1 WHEN 'yellow' THEN 2 ELSE 3 END,
    a.starts_at DESC"""
_SEVERITY_RANK = "CASE a.severity WHEN 'red' THEN 4 WHEN 'orange' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END"
_RANKED = {4: "red", 3: "orange", 2: "yellow", 1: "blue"}


class Params:
    """Collects asyncpg positional parameters while a query is assembled: ``p(value)`` → ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


class Visibility(Protocol):
    """What one reader may see: a condition on an ``alerts`` row (alias ``a``) or a
    ``hazards`` row (alias ``h``); both carry site_id, township_id, domain, department_ids."""

    def alerts_sql(self, p: Params, alias: str = "a") -> str: ...


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows and how many there are in all."""

    total: int
    rows: list[Any]


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """The alert list's filters; empty tuples and None filter nothing."""

    phases: tuple[str, ...] = ()
    #: True: not 办结 yet; False: 办结 only
    open: bool | None = None
    severities: tuple[str, ...] = ()
    state: str | None = None
    domain: str | None = None
    site_id: str | None = None
    device_id: str | None = None
    township_id: str | None = None
    #: on starts_at: [since, until)
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class HazardFilter:
    phase: str | None = None
    grade: str | None = None
    township_id: str | None = None
    site_id: str | None = None
    domain: str | None = None
    #: 逾期: past its deadline, not rectified (True), or not overdue (False)
    overdue: bool | None = None


# --- the live board -------------------------------------------------------------------------


async def latest_change(conn: Any) -> datetime | None:
    """When any alert last changed: where the board hub's cursor starts."""
    value: datetime | None = await conn.fetchval("SELECT max(updated_at) FROM alerts")
    return value


async def changed_since(conn: Any, since: datetime, *, limit: int = 1000) -> list[Any]:
    """Alerts changed after ``since``, oldest change first (the board hub's poll)."""
    rows: list[Any] = await conn.fetch(
        f"SELECT {BOARD_COLUMNS} FROM {BOARD_FROM} WHERE a.updated_at > $1 ORDER BY a.updated_at LIMIT $2",
        since, limit,
    )
    return rows


@dataclass(frozen=True, slots=True)
class BoardSnapshot:
    #: open alerts per severity (only severities that have some)
    counts: dict[str, int]
    rows: list[Any]


async def board(conn: Any, scope: Visibility, *, township_id: str | None = None, domain: str | None = None,
                phases: Sequence[str] = (), limit: int = 200) -> BoardSnapshot:
    """Open (not 办结) alerts the reader sees, most severe first, and their count per colour;
    narrowed to a township (镇街), a domain and phases (研判/派发/处置/反馈) when given."""
    p = Params()
    where = ["a.phase <> 'closed'", scope.alerts_sql(p)]
    if township_id:
        where.append(f"a.township_id = {p(township_id)}")
    if domain:
        where.append(f"a.domain = {p(domain)}")
    if phases:
        where.append(f"a.phase = ANY({p(list(phases))}::text[])")
    w = " AND ".join(where)
    counts = await conn.fetch(f"SELECT a.severity, count(*) AS n FROM alerts a WHERE {w} GROUP BY a.severity",
                              *p.values)
    rows = await conn.fetch(
        f"SELECT {BOARD_COLUMNS} FROM {BOARD_FROM} WHERE {w} ORDER BY {_BOARD_ORDER} LIMIT {p(limit)}",
        *p.values,
    )
    return BoardSnapshot({r["severity"]: r["n"] for r in counts}, rows)


# --- alerts ---------------------------------------------------------------------------------


async def _rows(conn: Any, p: Params, columns: str, source: str, order_by: str, limit: int,
                offset: int) -> list[Any]:
    """One page of ``SELECT columns FROM source`` (``source`` ends with its WHERE clause)."""
    rows: list[Any] = await conn.fetch(
        f"SELECT {columns} FROM {source} ORDER BY {order_by} LIMIT {p(limit)} OFFSET {p(offset)}", *p.values
    )
    return rows


def _alert_where(scope: Visibility, f: AlertFilter, p: Params) -> str:
    where = [scope.alerts_sql(p)]
    if f.phases:
        where.append(f"a.phase = ANY({p(list(f.phases))}::text[])")
    if f.open is not None:
        where.append("a.phase <> 'closed'" if f.open else "a.phase = 'closed'")
    if f.severities:
        where.append(f"a.severity = ANY({p(list(f.severities))}::text[])")
    if f.state:
        where.append(f"a.state = {p(f.state)}")
    for col, val in (("domain", f.domain), ("site_id", f.site_id), ("device_id", f.device_id),
                     ("township_id", f.township_id)):
        if val:
            where.append(f"a.{col} = {p(val)}")
    if f.since:
        where.append(f"a.starts_at >= {p(f.since)}")
    if f.until:
        where.append(f"a.starts_at < {p(f.until)}")
    return " AND ".join(where)


async def list_alerts(conn: Any, scope: Visibility, f: AlertFilter, *, limit: int, offset: int) -> Page:
    """The alerts matching ``f`` that the reader sees, newest first."""
    p = Params()
    w = _alert_where(scope, f, p)
    # counted without the joins: they only add names
    total = await conn.fetchval(f"SELECT count(*) FROM alerts a WHERE {w}", *p.values)
    rows = await _rows(conn, p, BOARD_COLUMNS, f"{BOARD_FROM} WHERE {w}", "a.starts_at DESC, a.id",
                       limit, offset)
    return Page(total, rows)


async def alert_detail(conn: Any, scope: Visibility, alert_id: str) -> Any | None:
    """One alert with its detail columns, or None when unknown or not the reader's."""
    p = Params()
    return await conn.fetchrow(
        f"SELECT {DETAIL_COLUMNS} FROM {BOARD_FROM} WHERE a.id = {p(alert_id)} AND {scope.alerts_sql(p)}",
        *p.values,
    )


async def board_row(conn: Any, alert_id: str) -> Any | None:
    """One alert as the board shows it (after an action: the state it left)."""
    return await conn.fetchrow(f"SELECT {BOARD_COLUMNS} FROM {BOARD_FROM} WHERE a.id = $1", alert_id)


async def alert_notifications(conn: Any, alert_id: str) -> list[Any]:
    """The messages queued for an alert (the outbox rows), oldest first."""
    rows: list[Any] = await conn.fetch(NOTIFICATIONS_OF_ALERT, alert_id)
    return rows


async def alert_notices(conn: Any, alert_id: str) -> list[Any]:
    """The 四单 issued for an alert, by step."""
    rows: list[Any] = await conn.fetch(NOTICES_OF_ALERT, alert_id)
    return rows


async def open_severity_by_site(conn: Any, site_ids: Sequence[str]) -> dict[str, str]:
    """The severity of each site's most severe open alert (sites without one are absent)."""
    if not site_ids:
        return {}
    rows = await conn.fetch(
        f"""SELECT a.site_id, max({_SEVERITY_RANK}) AS rank FROM alerts a
            WHERE a.site_id = ANY($1::text[]) AND a.phase <> 'closed' GROUP BY a.site_id""",
        list(site_ids),
    )
    return {r["site_id"]: _RANKED[r["rank"]] for r in rows}


# --- hazards (隐患台账) -----------------------------------------------------------------------


async def list_hazards(conn: Any, scope: Visibility, f: HazardFilter, *, now: datetime, limit: int,
                       offset: int) -> Page:
    """The hazards matching ``f`` that the reader sees, newest found first (逾期 as of ``now``)."""
    p = Params()
    where = [scope.alerts_sql(p, "h")]
    for col, val in (("phase", f.phase), ("grade", f.grade), ("township_id", f.township_id),
                     ("site_id", f.site_id), ("domain", f.domain)):
        if val:
            where.append(f"h.{col} = {p(val)}")
    if f.overdue is not None:
        cond = (f"(h.deadline IS NOT NULL AND h.deadline < {p(now)}"
                " AND h.phase IN ('registered', 'supervised'))")
        where.append(cond if f.overdue else f"NOT {cond}")
    source = f"{HAZARD_FROM} WHERE {' AND '.join(where)}"
    total = await conn.fetchval(f"SELECT count(*) FROM {source}", *p.values)
    return Page(total, await _rows(conn, p, HAZARD_COLUMNS, source, "h.found_at DESC, h.id", limit, offset))


async def hazard_in_scope(conn: Any, scope: Visibility, hazard_id: str) -> Any | None:
    """One hazard, or None when unknown or not the reader's."""
    p = Params()
    return await conn.fetchrow(
        f"SELECT {HAZARD_COLUMNS} FROM {HAZARD_FROM}"
        f" WHERE h.id = {p(hazard_id)} AND {scope.alerts_sql(p, 'h')}",
        *p.values,
    )


# --- the console's small reads (an id's existence for an audited refusal, a card's details) -----


async def alert_exists(conn: Any, alert_id: str) -> bool:
    """Whether the alert exists at all (a reader outside its scope is refused, and audited)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $1)", alert_id))


async def hazard_exists(conn: Any, hazard_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM hazards WHERE id = $1)", hazard_id))


async def latest_feedback(conn: Any, alert_id: str) -> Any | None:
    """The alert's last applied 反馈 (note, at), or None."""
    return await conn.fetchrow(
        "SELECT note, at FROM alert_transitions WHERE alert_id = $1 AND action = 'feedback'"
        " AND outcome = 'applied' ORDER BY at DESC, id DESC LIMIT 1", alert_id)


async def open_major_hazards(conn: Any, scope: Visibility) -> int:
    """How many 重大隐患 the reader sees are not 销号 yet (toward 清零)."""
    p = Params()
    return int(await conn.fetchval(
        "SELECT count(*) FROM hazards h WHERE h.grade = 'major' AND h.phase <> 'struck_off'"
        f" AND {scope.alerts_sql(p, 'h')}", *p.values))


async def source_alert(conn: Any, scope: Visibility, alert_id: str) -> Any | None:
    """The alarm a hazard was turned from (id, summary, starts_at), when the reader sees it."""
    p = Params()
    return await conn.fetchrow(
        f"SELECT a.id, a.summary, a.starts_at FROM alerts a WHERE a.id = {p(alert_id)}"
        f" AND {scope.alerts_sql(p, 'a')}", *p.values)
