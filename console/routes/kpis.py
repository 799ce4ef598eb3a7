"""考核指标 and 通报: coverage (安装全覆盖), online rate (在线全时段), 处置率, 误报率, times, 逾期,
with 同比/环比 and rankings — computed by alerting.kpi; this module picks the period and keeps
each role to its own rows (a township sees its township, a department its department and
domains; the site, device, model and vendor rows are the centre's)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from alerting import kpi
from alerting.errors import InvalidAction
from alerting.kpi.render import COMPARED as RENDER_COMPARED
from alerting.kpi.render import DIMENSION_ZH, LABELS, csv_text
from console.auth import access
from console.routes._common import Conn, CurrentScope, Since, Until, check_range
from console.scope import Role, Scope

__all__ = ["router", "period_bulletin", "scoped_bulletin"]

router = APIRouter(prefix="/api", tags=["kpis"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
Period = Annotated[str | None, Query(max_length=16, description="YYYY, YYYY-MM or YYYY-Qn (CST)")]
#: every figure with its 同比/环比 (alerting/kpi/render.py)
COMPARED = tuple(f for f, _ in RENDER_COMPARED)
_DEFAULT_DIMS = ("total", "township", "department", "domain", "vendor")


def _bounds(period: str | None, since: datetime | None, until: datetime | None,
            now: datetime) -> tuple[datetime, datetime]:
    if period and (since or until):
        raise HTTPException(400, "请只给出统计周期或起止时间之一（period，或自定义的 since/until）")
    if period:
        try:
            return kpi.period_bounds(period)
        except InvalidAction as exc:
            raise HTTPException(422, str(exc)) from None
    check_range(since, until)
    if since is None:
        # default: the current month in China Standard Time
        return kpi.period_bounds(f"{now.astimezone(kpi.CST):%Y-%m}")
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


async def period_bulletin(request: Request, conn: Any, when: _When) -> kpi.Bulletin:
    now = request.app.state.clock()
    start, end = _bounds(when.period, when.since, when.until, now)
    try:
        return await kpi.bulletin(conn, start=start, end=end, now=now)
    except InvalidAction as exc:  # a period not begun, or without data: nothing was read into state
        raise HTTPException(422, str(exc)) from None


def scoped_bulletin(b: kpi.Bulletin | None, scope: Scope) -> kpi.Bulletin | None:
    if b is None:
        return None
    return replace(b, rows=tuple(r for r in b.rows if _visible(scope, r)),
                   vendors=b.vendors if scope.unrestricted else (),
                   previous=scoped_bulletin(b.previous, scope), year_ago=scoped_bulletin(b.year_ago, scope))


def _row(b: kpi.Bulletin, r: kpi.KpiRow) -> dict[str, Any]:
    changes = {f: {"mom": b.change(r.dimension, r.key, f, "mom"),
                   "yoy": b.change(r.dimension, r.key, f, "yoy")} for f in COMPARED}
    return {**asdict(r), "dimension_zh": DIMENSION_ZH[r.dimension], "changes": changes}


@router.get("/kpis", summary="考核指标 (per total/township/department/domain/site/device/model/vendor)",
            **access(*READERS))
async def kpis(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    when: When,
    dimension: Literal["total", "township", "department", "domain", "site", "device", "model",
                       "vendor"] | None = None,
) -> dict:
    full = await period_bulletin(request, conn, when)
    b = scoped_bulletin(full, scope)
    assert b is not None
    dims = (dimension,) if dimension else _DEFAULT_DIMS
    rows = [_row(full, r) for r in b.rows if r.dimension in dims]

    def span(x: kpi.Bulletin | None) -> dict | None:
        if x is None:
            return None
        return {"start": x.start, "end": x.end, "label": kpi.period_label(x.start, x.end)}

    return {"start": b.start, "end": b.end, "generated_at": b.generated_at,
            "label": kpi.period_label(b.start, b.end), "previous": span(b.previous),
            "year_ago": span(b.year_ago), "rows": rows,
            "vendors": [asdict(v) for v in b.vendors], "labels": LABELS}


@router.get("/bulletin", summary="通报 (text or CSV)", response_class=PlainTextResponse, **access(*READERS))
async def bulletin(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    when: When,
    format: Literal["text", "csv"] = "text",
) -> Response:
    b = scoped_bulletin(await period_bulletin(request, conn, when), scope)
    assert b is not None
    if format == "csv":
        return Response("\ufeff" + csv_text(b), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": "attachment; filename=bulletin.csv"})
    if not any(r.dimension == "total" for r in b.rows):
        # a scoped reader has no district total: list its own rows only
        lines = [f"安全生产监测预警通报（{kpi.period_label(b.start, b.end)}）"]
        for r in b.rows:
            lines.append(f"{r.name}：报警 {r.alerts} 起，办结 {r.alerts_closed} 起，误报 {r.false} 起，"
                         f"隐患 {r.hazards_found} 处，整改 {r.hazards_rectified} 处")
        return PlainTextResponse("\n".join(lines))
    return PlainTextResponse(b.text())
