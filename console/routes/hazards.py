"""隐患台账: found → registered → supervised (挂牌督办, deadline) → rectified → struck off (销号).
Transitions are alerting.lifecycle's; this module scopes and maps outcomes to HTTP like alerts."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from alerting import lifecycle
from alerting.errors import InvalidAction, NotFound
from console.auth import access
from console.routes._common import (
    ID_PATTERN,
    Conn,
    CurrentPrincipal,
    CurrentScope,
    IdPath,
    PageParams,
    not_found,
    page_of,
)
from console.scope import Params, Role, Scope

__all__ = ["router"]

router = APIRouter(prefix="/api/hazards", tags=["hazards"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS)
FINDERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
SUPERVISORS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT)
RECTIFIERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS)
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=128)]

_COLS = """h.id, h.site_id, coalesce(s.name, h.site_id) AS site_name, h.township_id, h.domain, h.department_ids,
           h.title, h.description, h.grade, h.source_alert_id, h.phase, h.found_at, h.found_by, h.deadline,
           h.supervisor, h.rectified_at, h.struck_off_at, h.version, h.updated_at"""
_FROM = "hazards h LEFT JOIN sites s ON s.id = h.site_id"


@router.get("", summary="隐患台账 (filters, paging)", **access(*READERS))
async def list_hazards(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    phase: Literal["found", "registered", "supervised", "rectified", "struck_off"] | None = None,
    grade: Literal["general", "major"] | None = None,
    overdue: Annotated[bool | None, Query(description="逾期: past deadline, not rectified")] = None,
    township_id: IdFilter = None,
    site_id: IdFilter = None,
    domain: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{1,31}$")] = None,
) -> dict:
    p = Params()
    where = [scope.alerts_sql(p, "h")]
    for col, val in (("phase", phase), ("grade", grade), ("township_id", township_id), ("site_id", site_id),
                     ("domain", domain)):
        if val:
            where.append(f"h.{col} = {p(val)}")
    if overdue is not None:
        cond = f"(h.deadline IS NOT NULL AND h.deadline < {p(request.app.state.clock())} AND h.phase IN ('registered', 'supervised'))"
        where.append(cond if overdue else f"NOT {cond}")
    w = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM {_FROM} WHERE {w}", *p.values)
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM {_FROM} WHERE {w} ORDER BY h.found_at DESC, h.id "
        f"LIMIT {p(paging.page_size)} OFFSET {p(paging.offset)}",
        *p.values,
    )
    return page_of([{**dict(r), "department_ids": list(r["department_ids"])} for r in rows], total, paging)


async def _hazard_in_scope(conn: Any, scope: Scope, hazard_id: str) -> dict:
    p = Params()
    row = await conn.fetchrow(f"SELECT {_COLS} FROM {_FROM} WHERE h.id = {p(hazard_id)} AND {scope.alerts_sql(p, 'h')}",
                              *p.values)
    if row is None:
        raise not_found("hazard", hazard_id)
    return {**dict(row), "department_ids": list(row["department_ids"])}


@router.get("/{hazard_id}", summary="隐患详情 (with its transitions)", **access(*READERS))
async def get_hazard(hazard_id: IdPath, conn: Conn, scope: CurrentScope) -> dict:
    hazard = await _hazard_in_scope(conn, scope, hazard_id)
    hazard["transitions"] = [
        {"id": t.id, "action": t.action, "from_phase": t.from_phase, "to_phase": t.to_phase, "outcome": t.outcome,
         "actor": t.actor, "at": t.at, "reason": t.reason, "photo_ref": t.photo_ref, "detail": dict(t.detail)}
        for t in await lifecycle.hazard_timeline(conn, hazard_id)
    ]
    return hazard


class FindBody(BaseModel):
    site_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
    domain: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
    title: Annotated[Text, Field(min_length=1, max_length=200)]
    description: Text = ""
    grade: Literal["general", "major"] = "general"
    source_alert_id: Annotated[str | None, Field(pattern=ID_PATTERN, max_length=128)] = None


@router.post("", status_code=201, summary="排查发现 (put a hazard on record)", **access(*FINDERS))
async def find(body: FindBody, request: Request, conn: Conn, scope: CurrentScope,
               principal: CurrentPrincipal) -> dict:
    p = Params()
    if not await conn.fetchval(f"SELECT 1 FROM sites s WHERE s.id = {p(body.site_id)} AND {scope.sites_sql(p)}",
                               *p.values):
        raise HTTPException(422, f"site_id: site '{body.site_id}' not found")
    if not await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", body.domain):
        raise HTTPException(422, f"domain: unknown domain '{body.domain}'")
    if scope.role is Role.DEPARTMENT and body.domain not in (scope.domains or ()):
        raise HTTPException(422, f"domain: '{body.domain}' is not one of your department's domains")
    try:
        h = await lifecycle.find_hazard(conn, actor=principal.actor, now=request.app.state.clock(),
                                        site_id=body.site_id, domain=body.domain, title=body.title,
                                        description=body.description, grade=body.grade,
                                        source_alert_id=body.source_alert_id)
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    return await _hazard_in_scope(conn, scope, h.id)


class StepBody(BaseModel):
    reason: Annotated[Text, Field(min_length=1)]
    expected_version: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None


class SuperviseBody(StepBody):
    deadline: AwareDatetime
    supervisor: Annotated[Text, Field(min_length=1, max_length=100)]


class RectifyBody(StepBody):
    photo_ref: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] = ""


async def _step(request: Request, conn: Any, scope: Scope, hazard_id: str, call: Any) -> Any:
    await _hazard_in_scope(conn, scope, hazard_id)
    try:
        result = await call(now=request.app.state.clock())
    except NotFound:
        raise not_found("hazard", hazard_id) from None
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    body = {"applied": result.applied, "problem": result.problem, "transition_id": result.transition_id,
            "hazard": await _hazard_in_scope(conn, scope, hazard_id)}
    if not result.applied:
        return JSONResponse(json.loads(json.dumps(body, default=str)), status_code=409)
    return body


@router.post("/{hazard_id}/register", summary="建立台账", **access(*FINDERS))
async def register(hazard_id: IdPath, body: StepBody, request: Request, conn: Conn, scope: CurrentScope,
                   principal: CurrentPrincipal) -> Any:
    return await _step(request, conn, scope, hazard_id, lambda now: lifecycle.register_hazard(
        conn, hazard_id, actor=principal.actor, now=now, reason=body.reason, expected_version=body.expected_version))


@router.post("/{hazard_id}/supervise", summary="挂牌督办 (deadline, supervising unit)", **access(*SUPERVISORS))
async def supervise(hazard_id: IdPath, body: SuperviseBody, request: Request, conn: Conn, scope: CurrentScope,
                    principal: CurrentPrincipal) -> Any:
    return await _step(request, conn, scope, hazard_id, lambda now: lifecycle.supervise_hazard(
        conn, hazard_id, actor=principal.actor, now=now, deadline=body.deadline, supervisor=body.supervisor,
        reason=body.reason, expected_version=body.expected_version))


@router.post("/{hazard_id}/rectify", summary="整改完成", **access(*RECTIFIERS))
async def rectify(hazard_id: IdPath, body: RectifyBody, request: Request, conn: Conn, scope: CurrentScope,
                  principal: CurrentPrincipal) -> Any:
    return await _step(request, conn, scope, hazard_id, lambda now: lifecycle.rectify_hazard(
        conn, hazard_id, actor=principal.actor, now=now, reason=body.reason, photo_ref=body.photo_ref,
        expected_version=body.expected_version))


@router.post("/{hazard_id}/strike-off", summary="销号", **access(*FINDERS))
async def strike_off(hazard_id: IdPath, body: StepBody, request: Request, conn: Conn, scope: CurrentScope,
                     principal: CurrentPrincipal) -> Any:
    return await _step(request, conn, scope, hazard_id, lambda now: lifecycle.strike_off_hazard(
        conn, hazard_id, actor=principal.actor, now=now, reason=body.reason, expected_version=body.expected_version))
