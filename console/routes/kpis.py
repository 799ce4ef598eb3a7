"""考核指标 and 通报: coverage (安装全覆盖), online rate (在线全时段), closure rate and times
(报警全处置), hazards rectified — computed by alerting.kpi; this module picks the period and
keeps each role to its own rows (a township sees its township, a department its department
and domains)."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from alerting import kpi
from alerting.errors import InvalidAction
from console.auth import access
from console.routes._common import Conn, CurrentScope, Since, Until, check_range
from console.scope import Role, Scope

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["kpis"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
Period = Annotated[str | None, Query(pattern=r"^(19[7-9]\d|2\d{3})(-\d{2}|-Q[1-4])?$", description="YYYY, YYYY-MM or YYYY-Qn (CST)")]


def _bounds(period: str | None, since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    if period and (since or until):
        raise HTTPException(400, "give either period or since/until, not both")
    if period:
        try:
            return kpi.period_bounds(period)
        except (InvalidAction, ValueError, OverflowError) as exc:
            raise HTTPException(422, f"period {period!r}: {exc}") from None
    check_range(since, until)
    if since is None:
        # default: the current month in China Standard Time
        local = now.astimezone(kpi.CST)
        return kpi.period_bounds(f"{local:%Y-%m}")
    return since, until or now


def _visible(scope: Scope, row: kpi.KpiRow) -> bool:
    if scope.unrestricted:
        return True
    if scope.role is Role.TOWNSHIP:
        return row.dimension == "township" and row.key == scope.township_id
    if scope.role is Role.DEPARTMENT:
        return (row.dimension == "department" and row.key == scope.department_id) or (
            row.dimension == "domain" and row.key in (scope.domains or ())
        )
    return False


@dataclass(frozen=True, slots=True)
class _When:
    period: str | None
    since: datetime | None
    until: datetime | None


def _when(period: Period = None, since: Since = None, until: Until = None) -> _When:
    return _When(period, since, until)


#: the period asked for: ``period``, or ``since``/``until`` (checked when the bulletin is made)
When = Annotated[_When, Depends(_when)]


async def _bulletin(request: Request, conn: Any, scope: Scope, when: _When) -> kpi.Bulletin:
    now = request.app.state.clock()
    start, end = _bounds(when.period, when.since, when.until, now)
    if end <= start:
        raise HTTPException(400, "the period must end after it starts")
    b = await kpi.bulletin(conn, start=start, end=end, now=now)
    return replace(b, rows=tuple(r for r in b.rows if _visible(scope, r)))


@router.get("/kpis", summary="考核指标 (per total/township/department/domain)", **access(*READERS))
async def kpis(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    when: When,
    dimension: Literal["total", "township", "department", "domain"] | None = None,
) -> dict:
    b = await _bulletin(request, conn, scope, when)
    rows = [asdict(r) for r in b.rows if dimension is None or r.dimension == dimension]
    return {"start": b.start, "end": b.end, "generated_at": b.generated_at, "rows": rows}


@router.get("/bulletin", summary="通报 (text or CSV)", response_class=PlainTextResponse, **access(*READERS))
async def bulletin(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    when: When,
    format: Literal["text", "csv"] = "text",
) -> Response:
    b = await _bulletin(request, conn, scope, when)
    if format == "csv":
        import csv

        names = [f for f in kpi.KpiRow.__dataclass_fields__]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["period_start", "period_end", *names])
        w.writeheader()
        for r in b.rows:
            w.writerow({"period_start": b.start.isoformat(), "period_end": b.end.isoformat(), **asdict(r)})
        return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": "attachment; filename=bulletin.csv"})
    if not any(r.dimension == "total" for r in b.rows):
        # a scoped reader has no district total: list its own rows only
        lines = [f"安全生产监测预警通报（{b.start.astimezone(kpi.CST):%Y-%m-%d} 起）"]
        for r in b.rows:
            lines.append(f"{r.name}: 报警 {r.alerts} 起, 办结 {r.alerts_closed} 起, 隐患 {r.hazards_found} 处, "
                         f"整改 {r.hazards_rectified} 处")
        return PlainTextResponse("\n".join(lines))
    return PlainTextResponse(b.text())
