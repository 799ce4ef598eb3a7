"""隐患台账: found → registered → supervised (挂牌督办, deadline) → rectified → struck off (销号).
Transitions are alerting.ledger's; this module scopes and maps outcomes to HTTP like alerts."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from alerting import ledger, queries
from alerting.errors import InvalidAction, NotFound
from console.auth import access
from console.routes._common import (
    ID_PATTERN,
    Conn,
    CurrentPrincipal,
    CurrentScope,
    DomainFilter,
    IdFilter,
    IdPath,
    PageParams,
    not_found,
    page_of,
)
from console.scope import Params, Role, Scope

__all__ = ["router"]

router = APIRouter(prefix="/api/hazards", tags=["hazards"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER)
FINDERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
SUPERVISORS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT)
RECTIFIERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS)
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]


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
    domain: DomainFilter = None,
) -> dict:
    f = queries.HazardFilter(phase=phase, grade=grade, township_id=township_id, site_id=site_id,
                             domain=domain, overdue=overdue)
    page = await queries.list_hazards(conn, scope, f, now=request.app.state.clock(), limit=paging.page_size,
                                      offset=paging.offset)
    return page_of([_hazard(r) for r in page.rows], page.total, paging)


def _hazard(row: Any) -> dict:
    return {**dict(row), "department_ids": list(row["department_ids"])}


async def _hazard_in_scope(conn: Any, scope: Scope, hazard_id: str) -> dict:
    row = await queries.hazard_in_scope(conn, scope, hazard_id)
    if row is None:
        raise not_found("hazard", hazard_id)
    return _hazard(row)


@router.get("/{hazard_id}", summary="隐患详情 (with its transitions)", **access(*READERS))
async def get_hazard(hazard_id: IdPath, conn: Conn, scope: CurrentScope) -> dict:
    hazard = await _hazard_in_scope(conn, scope, hazard_id)
    hazard["transitions"] = [
        {"id": t.id, "action": t.action, "from_phase": t.from_phase, "to_phase": t.to_phase, "outcome": t.outcome,
         "actor": t.actor, "at": t.at, "reason": t.reason, "photo_ref": t.photo_ref, "detail": dict(t.detail)}
        for t in await ledger.hazard_timeline(conn, hazard_id)
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
        h = await ledger.find_hazard(conn, actor=principal.actor, now=request.app.state.clock(),
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
    return await _step(request, conn, scope, hazard_id, lambda now: ledger.register_hazard(
        conn, hazard_id, actor=principal.actor, now=now, reason=body.reason, expected_version=body.expected_version))


@router.post("/{hazard_id}/supervise", summary="挂牌督办 (deadline, supervising unit)", **access(*SUPERVISORS))
async def supervise(hazard_id: IdPath, body: SuperviseBody, request: Request, conn: Conn, scope: CurrentScope,
                    principal: CurrentPrincipal) -> Any:
    return await _step(request, conn, scope, hazard_id, lambda now: ledger.supervise_hazard(
        conn, hazard_id, actor=principal.actor, now=now, deadline=body.deadline, supervisor=body.supervisor,
        reason=body.reason, expected_version=body.expected_version))


@router.post("/{hazard_id}/rectify", summary="整改完成", **access(*RECTIFIERS))
async def rectify(hazard_id: IdPath, body: RectifyBody, request: Request, conn: Conn, scope: CurrentScope,
                  principal: CurrentPrincipal) -> Any:
    return await _step(request, conn, scope, hazard_id, lambda now: ledger.rectify_hazard(
        conn, hazard_id, actor=principal.actor, now=now, reason=body.reason, photo_ref=body.photo_ref,
        expected_version=body.expected_version))


@router.post("/{hazard_id}/strike-off", summary="销号", **access(*FINDERS))
async def strike_off(hazard_id: IdPath, body: StepBody, request: Request, conn: Conn, scope: CurrentScope,
                     principal: CurrentPrincipal) -> Any:
    return await _step(request, conn, scope, hazard_id, lambda now: ledger.strike_off_hazard(
        conn, hazard_id, actor=principal.actor, now=now, reason=body.reason, expected_version=body.expected_version))
