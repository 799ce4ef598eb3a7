"""Reads for the duty operator's board on a long shift (issue 14 item 7): the history of 办结
alarms and its search, what makes an open alarm overdue (逾期), and the wall screen's (大屏)
counts. Beside :mod:`alerting.queries` (which holds the board itself), for the same reason:
one home for the SQL on alerting's tables, the console only calls these.

Overdue is not decided anew here: the timers are the ones alerting already keeps — the
escalation ladder's ``alerts.next_escalation_at`` and the 四单 it issued (``notices``,
:mod:`alerting.escalation`: a step issues only when its 确认/处置/办结 condition is unmet past
its time), and the 维保单位's 到场 timer (``lift_arrivals.due_at``, :mod:`alerting.arrival`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.queries import BOARD_COLUMNS, BOARD_FROM, Page, Params, Visibility

__all__ = ["HistoryFilter", "WallSummary", "closed_history", "overdue_marks", "wall_summary"]


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """The history's search; None filters nothing. ``text`` matches a site's name or id, or a
    device id, anywhere in it (case-insensitive); the dates are on the alarm's start."""

    text: str | None = None
    device_id: str | None = None
    township_id: str | None = None
    domain: str | None = None
    verdict: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _like(value: str) -> str:
    """``value`` as a literal inside an ILIKE pattern (its %, _ and \\ are not wildcards)."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def closed_history(conn: Any, scope: Visibility, f: HistoryFilter, *, limit: int, offset: int) -> Page:
    """The 办结 alarms the reader sees that match ``f``, the latest closed first."""
    p = Params()
    where = ["a.phase = 'closed'", "a.closed_at IS NOT NULL", scope.alerts_sql(p)]
    # by site first (alerts_site): the sites whose name or id matches, or that hold a matching
    # device — alerts has no index on device_id
    # (an ARRAY(...) the planner evaluates once and probes the index with)
    if f.text:
        pat = p(_like(f.text))
        named = f"SELECT id FROM sites WHERE name ILIKE {pat} OR id ILIKE {pat}"
        holding = f"SELECT site_id FROM devices WHERE id ILIKE {pat}"
        where.append(f"a.site_id = ANY(ARRAY({named} UNION {holding}))")
        where.append(f"(a.site_id = ANY(ARRAY({named})) OR a.device_id ILIKE {pat})")
    if f.device_id:
        pat = p(_like(f.device_id))
        where.append(f"a.site_id = ANY(ARRAY(SELECT site_id FROM devices WHERE id ILIKE {pat}))")
        where.append(f"a.device_id ILIKE {pat}")
    for col, val in (("township_id", f.township_id), ("domain", f.domain), ("verdict", f.verdict)):
        if val:
            where.append(f"a.{col} = {p(val)}")
    if f.since:
        where.append(f"a.starts_at >= {p(f.since)}")
    if f.until:
        where.append(f"a.starts_at < {p(f.until)}")
    source = f"{BOARD_FROM} WHERE {' AND '.join(where)}"
    total = await conn.fetchval(f"SELECT count(*) FROM {source}", *p.values)
    rows = await conn.fetch(
        f"""SELECT {BOARD_COLUMNS}, a.closed_by, a.close_reason FROM {source}
            ORDER BY a.closed_at DESC, a.id LIMIT {p(limit)} OFFSET {p(offset)}""",
        *p.values,
    )
    return Page(total, rows)


async def overdue_marks(conn: Any, alert_ids: Sequence[str]) -> dict[str, Any]:
    """Per alert: the escalation timer (``next_escalation_at``), the pending 到场 timer of a
    trapped-passenger alarm (``arrival_due_at``, None once arrived) and the latest 四单 still
    open (``notice_level``, ``notice_reason``, ``notice_deadline``). Only alerts with one of them."""
    if not alert_ids:
        return {}
    rows = await conn.fetch(
        """SELECT a.id, a.next_escalation_at, la.due_at AS arrival_due_at,
                  n.level AS notice_level, n.reason AS notice_reason, n.deadline AS notice_deadline
           FROM alerts a
           LEFT JOIN lift_arrivals la ON la.alert_id = a.id AND la.arrived_at IS NULL
           LEFT JOIN LATERAL (SELECT level, reason, deadline FROM notices
                              WHERE alert_id = a.id AND status = 'open' ORDER BY step DESC LIMIT 1) n ON true
           WHERE a.id = ANY($1::text[])
             AND (a.next_escalation_at IS NOT NULL OR la.due_at IS NOT NULL OR n.level IS NOT NULL)""",
        list(alert_ids),
    )
    return {r["id"]: r for r in rows}


@dataclass(frozen=True, slots=True)
class WallSummary:
    #: open alarms: domain, severity, n
    by_domain: list[Any]
    #: open alarms per township, most first: township_id, township_name, n, red
    townships: list[Any]
    #: the newest open red alarms (board columns)
    newest_red: list[Any]
    #: open alarms the 四单 ladder has escalated (a notice issued)
    escalated: int


async def wall_summary(conn: Any, scope: Visibility, *, red_limit: int = 8,
                       town_limit: int = 12) -> WallSummary:
    """What the wall screen (大屏) shows, for the reader's scope."""
    p = Params()
    w = f"a.phase <> 'closed' AND {scope.alerts_sql(p)}"
    by_domain = await conn.fetch(
        f"SELECT a.domain, a.severity, count(*) AS n FROM alerts a WHERE {w} GROUP BY a.domain, a.severity",
        *p.values,
    )
    escalated = await conn.fetchval(f"SELECT count(*) FROM alerts a WHERE {w} AND a.escalation_step > 0",
                                    *p.values)
    towns = await conn.fetch(
        f"""SELECT a.township_id, coalesce(t.name, a.township_id) AS township_name, count(*) AS n,
                   count(*) FILTER (WHERE a.severity = 'red') AS red
            FROM alerts a LEFT JOIN townships t ON t.id = a.township_id WHERE {w}
            GROUP BY a.township_id, t.name ORDER BY n DESC, red DESC, a.township_id
            LIMIT {int(town_limit)}""",
        *p.values,
    )
    red = await conn.fetch(
        f"""SELECT {BOARD_COLUMNS} FROM {BOARD_FROM} WHERE {w} AND a.severity = 'red'
            ORDER BY a.starts_at DESC LIMIT {int(red_limit)}""",
        *p.values,
    )
    return WallSummary(by_domain, towns, red, int(escalated or 0))
