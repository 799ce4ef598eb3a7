"""SQL of 企业风险分级 (migration 036): the figures a grading reads, the current grades, their history.

Read per site: the registry's inherent fields and gas devices; the alarms of the window
``[since, now)`` with their 研判 (a 测试 alarm and a device 离线 are no alarm of the site's risk);
the hazards as they stand at ``now`` — not struck off (未销号), 重大 among them, and overdue as
alerting/hazard_overdue.py means it (past the 整改期限, still 登记/督办, not reported rectified).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["SiteFigures", "CurrentGrade", "site_figures", "current_grades", "save_grade", "history",
           "drop_gone", "grade_map"]


@dataclass(frozen=True, slots=True)
class SiteFigures:
    site_id: str
    site_name: str
    township_id: str
    industry: str
    site_class: str
    density_class: str
    critical: bool
    gas_alarm_required: bool
    gas_devices: int
    alarms: int
    real_alarms: int
    false_alarms: int
    fault_alarms: int
    open_hazards: int
    major_hazards: int
    overdue_hazards: int

    def value(self, field: str) -> Any:
        if field == "gas_use":
            return self.gas_alarm_required or self.gas_devices > 0
        return getattr(self, field)


@dataclass(frozen=True, slots=True)
class CurrentGrade:
    site_id: str
    grade: str
    score: int
    reasons: list[str]
    since: datetime
    graded_at: datetime


_FIGURES = """
SELECT s.id AS site_id, s.name AS site_name, s.township_id, s.industry, s.site_class, s.density_class,
       s.critical, s.gas_alarm_required,
       coalesce(g.n, 0) AS gas_devices,
       coalesce(a.alarms, 0) AS alarms, coalesce(a.real_alarms, 0) AS real_alarms,
       coalesce(a.false_alarms, 0) AS false_alarms, coalesce(a.fault_alarms, 0) AS fault_alarms,
       coalesce(h.open_hazards, 0) AS open_hazards, coalesce(h.major_hazards, 0) AS major_hazards,
       coalesce(h.overdue_hazards, 0) AS overdue_hazards
FROM sites s
LEFT JOIN (SELECT site_id, count(*) AS n FROM devices
           WHERE domain = 'gas' AND active AND NOT is_canary GROUP BY site_id) g ON g.site_id = s.id
LEFT JOIN (SELECT site_id,
                  count(*) FILTER (WHERE verdict IS DISTINCT FROM 'test') AS alarms,
                  count(*) FILTER (WHERE verdict = 'real') AS real_alarms,
                  count(*) FILTER (WHERE verdict = 'false') AS false_alarms,
                  count(*) FILTER (WHERE verdict = 'fault') AS fault_alarms
           FROM alerts WHERE starts_at >= $1 AND starts_at < $2 AND kind NOT LIKE '%offline%'
           GROUP BY site_id) a ON a.site_id = s.id
LEFT JOIN (SELECT site_id,
                  count(*) FILTER (WHERE phase <> 'struck_off') AS open_hazards,
                  count(*) FILTER (WHERE phase <> 'struck_off' AND grade = 'major') AS major_hazards,
                  count(*) FILTER (WHERE deadline IS NOT NULL AND deadline < $2
                                   AND phase IN ('registered', 'supervised')) AS overdue_hazards
           FROM hazards WHERE found_at < $2 GROUP BY site_id) h ON h.site_id = s.id
ORDER BY s.id"""


async def site_figures(conn: asyncpg.Connection, *, since: datetime, now: datetime) -> list[SiteFigures]:
    return [SiteFigures(**dict(r)) for r in await conn.fetch(_FIGURES, since, now)]


def _current(r: Any) -> CurrentGrade:
    return CurrentGrade(r["site_id"], r["grade"], r["score"], json.loads(r["reasons"]), r["since"],
                        r["graded_at"])


async def current_grades(conn: asyncpg.Connection, *, lock: bool = False) -> dict[str, CurrentGrade]:
    rows = await conn.fetch("SELECT site_id, grade, score, reasons, since, graded_at FROM risk_grades"
                            + (" FOR UPDATE" if lock else ""))
    return {r["site_id"]: _current(r) for r in rows}


async def grade_map(conn: asyncpg.Connection) -> dict[str, str]:
    """site id → grade (the ``risk_grade`` label of alerts)."""
    return dict(await conn.fetch("SELECT site_id, grade FROM risk_grades"))


async def save_grade(conn: asyncpg.Connection, *, site_id: str, grade: str, score: int, reasons: list[str],
                     measures: dict[str, Any], previous: CurrentGrade | None, now: datetime, actor: str,
                     digest: str) -> bool:
    """Store a site's grading; a changed grade (or a first one) gets its history row. True when it changed."""
    changed = previous is None or previous.grade != grade
    since = now if changed or previous is None else previous.since
    await conn.execute(
        """INSERT INTO risk_grades (site_id, grade, score, reasons, measures, since, graded_at, rules_digest)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)
           ON CONFLICT (site_id) DO UPDATE SET grade = EXCLUDED.grade, score = EXCLUDED.score,
             reasons = EXCLUDED.reasons, measures = EXCLUDED.measures, since = EXCLUDED.since,
             graded_at = EXCLUDED.graded_at, rules_digest = EXCLUDED.rules_digest""",
        site_id, grade, score, json.dumps(reasons, ensure_ascii=False), json.dumps(measures), since, now,
        digest)
    if changed:
        await conn.execute(
            """INSERT INTO risk_grade_history (site_id, from_grade, to_grade, score, reasons, actor, at)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)""",
            site_id, previous.grade if previous else None, grade, score,
            json.dumps(reasons, ensure_ascii=False), actor, now)
    return changed


async def drop_gone(conn: asyncpg.Connection, keep: list[str]) -> int:
    """Grades of sites no longer in the registry (their history stays)."""
    res = await conn.execute("DELETE FROM risk_grades WHERE NOT (site_id = ANY($1::text[]))", keep)
    return int(res.split()[-1])


async def history(conn: asyncpg.Connection, site_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT from_grade, to_grade, score, reasons, actor, at FROM risk_grade_history
           WHERE site_id = $1 ORDER BY at, id""", site_id)
    return [{**dict(r), "reasons": json.loads(r["reasons"])} for r in rows]
