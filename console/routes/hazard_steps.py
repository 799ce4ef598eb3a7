"""The steps of a hazard from the page: 建立台账, 挂牌督办 (deadline, supervising unit, 五落实),
整改 (with photos: ``attachment_ids`` uploaded through POST /api/attachments), 复查 (passed or
not, with a reason), 销号, and 转隐患 from an alarm (POST /api/alerts/{id}/to-hazard).

Each is alerting.ledger's transition, audited applied or rejected; a rejected one answers 409
with its Chinese ``problem``. The caller must see the hazard (else 404 and a ``hazard.refused``
audit row); the roles per step are console/routes/hazards.py's :data:`STEP_ROLES`."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from alerting import ledger, queries
from alerting.errors import InvalidAction, NotFound
from alerting.queries_hazards import hazards_of_alert
from console.auth import access
from console.routes._common import Conn, CurrentPrincipal, CurrentScope, IdPath, not_found
from console.routes.hazards import FINDERS, READERS, STEP_ROLES, Text, hazard_in_scope
from console.scope import Scope

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["hazards"])
_ATT = re.compile(r"^att-[A-Za-z0-9_-]{1,64}$")


class StepBody(BaseModel):
    reason: Annotated[Text, Field(min_length=1)]
    expected_version: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None


Short = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]


class SuperviseBody(StepBody):
    deadline: AwareDatetime
    supervisor: Annotated[Text, Field(min_length=1, max_length=100)]
    owner: Short = ""
    measures: Text = ""
    funds: Short = ""
    plan: Short = ""


class RectifyBody(StepBody):
    photo_ref: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] = ""
    attachment_ids: Annotated[list[Annotated[str, Field(max_length=80)]], Field(max_length=10)] = []


class ReviewBody(StepBody):
    passed: bool
    #: the reviewing unit (复查单位); the reader's own unit when empty
    unit: Short = ""


class ToHazardBody(BaseModel):
    title: Annotated[Text, Field(min_length=1, max_length=200)]
    description: Text = ""
    grade: Literal["general", "major"] = "general"


async def _checked_attachments(conn: Any, ids: Sequence[str], hazard_id: str) -> list[str]:
    """The photos of a 整改: each an attachment of this hazard (H1's console.attachments when it
    is there; until then only the id's form is checked)."""
    for i, att in enumerate(ids, 1):
        if not _ATT.match(att):
            raise HTTPException(422, f"第{i}张照片编号格式错误，请重新上传")
    try:
        mod = importlib.import_module("console.attachments")
    except ModuleNotFoundError:
        return list(dict.fromkeys(ids))
    checked: list[str] = await mod.check_attachments(conn, ids, hazard_id=hazard_id)
    return checked


async def _unit_name(conn: Any, principal: Any, scope: Scope) -> str:
    """The reviewing unit in words: the reader's township or department, else its role."""
    name = await conn.fetchval(
        "SELECT coalesce((SELECT name FROM townships WHERE id = $1), (SELECT name FROM departments WHERE id = $2))",
        principal.township_id, principal.department_id)
    return str(name or ("区应急指挥中心" if scope.role in ("centre", "admin") else scope.role.zh))


Call = Callable[[Any], Awaitable[ledger.HazardResult]]


async def _step(
    request: Request, conn: Any, scope: Scope, principal: Any, hazard_id: str, step: str, call: Call
) -> Any:
    if scope.role not in STEP_ROLES[step]:
        raise HTTPException(403, "无权进行该隐患操作")
    now = request.app.state.clock()
    await hazard_in_scope(conn, scope, hazard_id, principal, now)
    try:
        result = await call(now)
    except NotFound:
        raise not_found("hazard", hazard_id) from None
    except InvalidAction as exc:
        # a form that can never be valid (no 五落实, a past deadline): refused and audited too
        await conn.execute(
            """INSERT INTO console_audit (actor, action, target, detail)
               VALUES ($1, 'hazard.step_refused', $2, $3::jsonb)""",
            principal.actor, hazard_id, json.dumps({"step": step, "message": str(exc)}, ensure_ascii=False))
        raise HTTPException(422, str(exc)) from None
    body = {
        "applied": result.applied,
        "problem": result.problem,
        "transition_id": result.transition_id,
        "result": f"已{ledger.ACTION_ZH.get(step, '操作')}" if result.applied else result.problem,
        "hazard": await hazard_in_scope(conn, scope, hazard_id, now=now),
    }
    if not result.applied:
        return JSONResponse(json.loads(json.dumps(body, default=str)), status_code=409)
    return body


@router.post("/hazards/{hazard_id}/register", summary="建立台账", **access(*STEP_ROLES["register"]))
async def register(
    hazard_id: IdPath,
    body: StepBody,
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    principal: CurrentPrincipal,
) -> Any:
    return await _step(
        request,
        conn,
        scope,
        principal,
        hazard_id,
        "register",
        lambda now: ledger.register_hazard(
            conn,
            hazard_id,
            actor=principal.actor,
            now=now,
            reason=body.reason,
            expected_version=body.expected_version,
        ),
    )


@router.post(
    "/hazards/{hazard_id}/supervise",
    summary="挂牌督办 (deadline, supervising unit, 五落实)",
    **access(*STEP_ROLES["supervise"]),
)
async def supervise(
    hazard_id: IdPath,
    body: SuperviseBody,
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    principal: CurrentPrincipal,
) -> Any:
    return await _step(
        request,
        conn,
        scope,
        principal,
        hazard_id,
        "supervise",
        lambda now: ledger.supervise_hazard(
            conn,
            hazard_id,
            actor=principal.actor,
            now=now,
            deadline=body.deadline,
            supervisor=body.supervisor,
            reason=body.reason,
            owner=body.owner,
            measures=body.measures,
            funds=body.funds,
            plan=body.plan,
            expected_version=body.expected_version,
        ),
    )


@router.post(
    "/hazards/{hazard_id}/rectify", summary="整改完成 (with photos)", **access(*STEP_ROLES["rectify"])
)
async def rectify(
    hazard_id: IdPath,
    body: RectifyBody,
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    principal: CurrentPrincipal,
) -> Any:
    async def call(now: Any) -> ledger.HazardResult:
        ids = await _checked_attachments(conn, body.attachment_ids, hazard_id)
        return await ledger.rectify_hazard(
            conn,
            hazard_id,
            actor=principal.actor,
            now=now,
            reason=body.reason,
            photo_ref=body.photo_ref,
            attachment_ids=ids,
            expected_version=body.expected_version,
        )

    return await _step(request, conn, scope, principal, hazard_id, "rectify", call)


@router.post(
    "/hazards/{hazard_id}/review",
    summary="复查 (passed → 待销号; failed → back to 整改)",
    **access(*STEP_ROLES["review"]),
)
async def review(
    hazard_id: IdPath,
    body: ReviewBody,
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    principal: CurrentPrincipal,
) -> Any:
    unit = body.unit or await _unit_name(conn, principal, scope)
    return await _step(
        request,
        conn,
        scope,
        principal,
        hazard_id,
        "review",
        lambda now: ledger.review_hazard(
            conn,
            hazard_id,
            actor=principal.actor,
            now=now,
            passed=body.passed,
            reason=body.reason,
            unit=unit,
            expected_version=body.expected_version,
        ),
    )


@router.post(
    "/hazards/{hazard_id}/strike-off",
    summary="销号 (only after a passed 复查)",
    **access(*STEP_ROLES["strike_off"]),
)
async def strike_off(
    hazard_id: IdPath,
    body: StepBody,
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    principal: CurrentPrincipal,
) -> Any:
    return await _step(
        request,
        conn,
        scope,
        principal,
        hazard_id,
        "strike_off",
        lambda now: ledger.strike_off_hazard(
            conn,
            hazard_id,
            actor=principal.actor,
            now=now,
            reason=body.reason,
            expected_version=body.expected_version,
        ),
    )


@router.post(
    "/alerts/{alert_id}/to-hazard",
    status_code=201,
    summary="转隐患 (the alarm's site on the ledger)",
    **access(*FINDERS),
)
async def to_hazard(
    alert_id: IdPath,
    body: ToHazardBody,
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    principal: CurrentPrincipal,
) -> dict:
    if await queries.alert_detail(conn, scope, alert_id) is None:
        raise not_found("alert", alert_id)
    now = request.app.state.clock()
    try:
        h = await ledger.hazard_from_alert(
            conn,
            alert_id,
            actor=principal.actor,
            now=now,
            title=body.title,
            description=body.description,
            grade=body.grade,
        )
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    except NotFound:
        raise not_found("alert", alert_id) from None
    return await hazard_in_scope(conn, scope, h.id, now=now)


@router.get("/alerts/{alert_id}/hazards", summary="隐患 this alarm became (转隐患)", **access(*READERS))
async def alert_hazards(alert_id: IdPath, conn: Conn, scope: CurrentScope) -> dict:
    if await queries.alert_detail(conn, scope, alert_id) is None:
        raise not_found("alert", alert_id)
    rows = await hazards_of_alert(conn, scope, alert_id)
    return {"items": [{"id": r["id"], "title": r["title"], "phase_zh": ledger.PHASE_ZH.get(r["phase"], "其他"),
                       "grade_zh": "重大隐患" if r["grade"] == "major" else "一般隐患"} for r in rows]}
