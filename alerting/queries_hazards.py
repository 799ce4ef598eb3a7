"""Reads of the hazards ledger for the console beyond the list (alerting/queries.py): the
重大隐患清零 board and the hazards an alarm became.

重大隐患清零 (seed 001: 重大隐患动态清零): the open major hazards (not 销号) per township and per
department with the oldest of each, so the page shows who still holds some and since when; the
partial index ``hazards_open_major`` (migration 031) is its index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.queries import Params, Visibility

__all__ = ["ClearanceRow", "major_open", "hazards_of_alert"]


@dataclass(frozen=True, slots=True)
class ClearanceRow:
    unit_kind: str  # township | department
    unit_id: str
    unit_name: str
    open: int
    overdue: int
    oldest_id: str
    oldest_title: str
    oldest_found_at: datetime


async def major_open(conn: Any, scope: Visibility, now: datetime) -> list[ClearanceRow]:
    """The open 重大隐患 the reader sees, per township and per department (most first)."""
    p = Params()
    rows = await conn.fetch(
        f"""WITH m AS (
              SELECT h.id, h.title, h.found_at, h.township_id, h.department_ids,
                     (h.deadline IS NOT NULL AND h.deadline < {p(now)}
                      AND h.phase IN ('registered', 'supervised')) AS overdue
              FROM hazards h
              WHERE h.grade = 'major' AND h.phase <> 'struck_off' AND {scope.alerts_sql(p, "h")}),
            u AS (
              SELECT 'township' AS unit_kind, m.township_id AS unit_id, m.* FROM m WHERE m.township_id <> ''
              UNION ALL
              SELECT 'department', d, m.* FROM m, unnest(m.department_ids) AS d)
            SELECT DISTINCT ON (u.unit_kind, u.unit_id) u.unit_kind, u.unit_id,
                   coalesce(t.name, dep.name, u.unit_id) AS unit_name,
                   count(*) OVER w AS open, count(*) FILTER (WHERE u.overdue) OVER w AS overdue,
                   u.id AS oldest_id, u.title AS oldest_title, u.found_at AS oldest_found_at
            FROM u LEFT JOIN townships t ON u.unit_kind = 'township' AND t.id = u.unit_id
                   LEFT JOIN departments dep ON u.unit_kind = 'department' AND dep.id = u.unit_id
            WINDOW w AS (PARTITION BY u.unit_kind, u.unit_id)
            ORDER BY u.unit_kind, u.unit_id, u.found_at, u.id""",
        *p.values,
    )
    out = [ClearanceRow(**dict(r)) for r in rows]
    return sorted(out, key=lambda r: (r.unit_kind != "township", -r.open, r.oldest_found_at))


async def hazards_of_alert(conn: Any, scope: Visibility, alert_id: str) -> list[Any]:
    """The hazards an alarm became (转隐患), as the reader sees them."""
    p = Params()
    rows: list[Any] = await conn.fetch(
        f"SELECT h.id, h.title, h.phase, h.grade FROM hazards h WHERE h.source_alert_id = {p(alert_id)}"
        f" AND {scope.alerts_sql(p, 'h')} ORDER BY h.found_at, h.id",
        *p.values,
    )
    return rows
