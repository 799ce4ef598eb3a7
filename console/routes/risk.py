"""企业风险分级 红橙黄蓝 (alerting/risk.py): the grades of the sites the reader sees, with their reasons,
and a site's grade history. Scoped as the registry's sites (a township sees its sites, a department
the sites with devices of its domains); the grades themselves are the risk pass's (alerting's
timers, ``hazmon risk grade``), this module only reads them.

``GET /api/risk/sites`` is contract 2 of issue 15: ``{"items": [{"site_id", "site_name",
"township_id", "grade", "grade_zh", "score", "reasons"}]}`` plus, for the page, the township's and
the grade's names, the industry, since when and when last graded, and ``counts`` per grade."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from alerting.risk_rules import GRADE_NAME_ZH, GRADE_ZH, GRADES
from console.auth import access
from console.routes._common import Conn, CurrentScope, IdFilter, IdPath
from console.scope import Params, Role

__all__ = ["router"]

router = APIRouter(prefix="/api/risk", tags=["risk"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
GradeFilter = Annotated[Literal["red", "orange", "yellow", "blue"] | None, Query(description="红橙黄蓝")]
Industry = Annotated[str | None, Query(max_length=40)]
_ORDER = "CASE r.grade WHEN 'red' THEN 0 WHEN 'orange' THEN 1 WHEN 'yellow' THEN 2 ELSE 3 END"


def _item(r: Any) -> dict[str, Any]:
    return {"site_id": r["site_id"], "site_name": r["site_name"], "township_id": r["township_id"],
            "township_name": r["township_name"], "industry": r["industry"], "grade": r["grade"],
            "grade_zh": GRADE_ZH[r["grade"]], "grade_name": GRADE_NAME_ZH[r["grade"]], "score": r["score"],
            "reasons": json.loads(r["reasons"]), "since": r["since"], "graded_at": r["graded_at"]}


@router.get("/sites", summary="企业风险分级: the grades of the sites the reader sees (红 first)",
            **access(*READERS))
async def risk_sites(conn: Conn, scope: CurrentScope, grade: GradeFilter = None,
                     township_id: IdFilter = None, industry: Industry = None) -> dict:
    p = Params()
    where = [scope.sites_sql(p, "s")]
    if township_id:
        where.append(f"s.township_id = {p(township_id)}")
    if industry:
        where.append(f"s.industry = {p(industry)}")
    rows = await conn.fetch(
        f"""SELECT r.site_id, s.name AS site_name, s.township_id, coalesce(t.name, '') AS township_name,
                   s.industry, r.grade, r.score, r.reasons, r.since, r.graded_at
            FROM risk_grades r JOIN sites s ON s.id = r.site_id LEFT JOIN townships t ON t.id = s.township_id
            WHERE {' AND '.join(where)}
            ORDER BY {_ORDER}, r.score DESC, s.name""", *p.values)
    counts = dict.fromkeys(GRADES, 0)
    for r in rows:
        counts[r["grade"]] += 1
    items = [_item(r) for r in rows if grade is None or r["grade"] == grade]
    return {"items": items, "counts": counts, "graded_at": max((r["graded_at"] for r in rows), default=None)}


@router.get("/sites/{site_id}/history", summary="a site's grade changes (the record of the risk pass)",
            **access(*READERS))
async def risk_history(conn: Conn, scope: CurrentScope, site_id: IdPath) -> dict:
    p = Params()
    name = await conn.fetchval(
        f"SELECT s.name FROM sites s WHERE s.id = {p(site_id)} AND {scope.sites_sql(p)}", *p.values)
    if name is None:
        raise HTTPException(404, "未找到该场所，或不在您的管辖范围内")
    rows = await conn.fetch(
        """SELECT from_grade, to_grade, score, reasons, actor, at FROM risk_grade_history
           WHERE site_id = $1 ORDER BY at DESC, id DESC LIMIT 100""", site_id)
    return {"site_id": site_id, "site_name": name, "items": [
        {"from_grade": r["from_grade"], "from_zh": GRADE_ZH.get(r["from_grade"] or "", "未评级"),
         "to_grade": r["to_grade"], "to_zh": GRADE_ZH[r["to_grade"]], "score": r["score"],
         "reasons": json.loads(r["reasons"]), "by": "定时评定" if r["actor"].startswith("system:") else "命令评定",
         "at": r["at"]} for r in rows]}
