"""工单 (work orders) on the console: 派发 from the alarm's 责任矩阵 and each order's steps.

* ``GET /api/alerts/{id}/dispatch-options`` — the units and people the matrix names for the
  alarm (alerting.workorders.dispatch_options), for the centre's 派发 picker;
* ``POST /api/alerts/{id}/dispatch`` — one order per picked unit or person, with a deadline
  (replaces the free-text 派发: the alarm moves to 已派发 the same way);
* ``GET /api/workorders`` and ``GET /api/workorders/{id}`` — scoped: the centre sees every
  order; a township the orders of its own duty room and grid members; a department its own; a
  grid member or 维保单位 those addressed to it; a business those of its own site;
* ``POST /api/workorders/{id}/accept|arrive|feedback`` — the addressee's steps (the centre may
  record them for it); ``approve`` / ``return`` — the centre's.

Applied → 200; refused (wrong state, already closed by someone else) → 409 with the reason,
recorded; an order outside the reader's scope → 404 (a field user: 403 无权查看), audited; bad
input → 422. The steps and their audit are alerting's (alerting/workorder_steps.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from alerting import queries, workorder_steps
from alerting.errors import InvalidAction, NotFound
from alerting.matrix import resolve
from alerting.store import workorders as wstore
from alerting.templates import what_happened
from alerting.workorders import (
    REASON_ZH,
    STATE_ZH,
    STEPS,
    UnitOption,
    dispatch_options,
    find_unit,
    is_overdue,
)
from console.attachments import AttachmentRefused, audit_refusal, check_attachments
from console.auth import access
from console.board import board_item
from console.routes._common import Conn, CurrentPrincipal, CurrentScope, IdFilter, IdPath, PageParams
from console.scope import Principal, Role, Scope
from hazmon.registry import load_registry

__all__ = ["router", "STEP_ROLES"]

router = APIRouter(tags=["workorders"])
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
CENTRE = (Role.CENTRE, Role.ADMIN)
FIELD = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER,
         Role.MAINTAINER)
#: who may take which step (on orders within their scope)
STEP_ROLES: dict[str, tuple[Role, ...]] = {"accept": FIELD, "arrive": FIELD, "feedback": FIELD,
                                           "approve": CENTRE, "return": CENTRE}
UNIT_KIND_ZH = {"business": "企业", "township": "镇街", "grid": "网格员", "department": "行业部门",
                "maintainer": "维保单位", "leader": "领导"}
_NOT_YOURS = {Role.GRID_MEMBER: "无权查看：该工单不是派给您或您负责的村（社区）的",
              Role.MAINTAINER: "无权查看：该工单不是派给您单位的"}
_NO_ORDER = "工单不存在，或不在您的查看范围内"
_NO_ALERT = "报警不存在，或不在您的查看范围内"


def _scope_sql(scope: Scope, p: queries.Params) -> str:
    """Which orders (alias ``o``) the reader sees."""
    if scope.unrestricted:
        return "TRUE"
    if scope.role is Role.TOWNSHIP:
        return f"(o.township_id = {p(scope.township_id or '')} AND o.unit_kind IN ('township', 'grid'))"
    if scope.role is Role.DEPARTMENT:
        return f"(o.unit_kind = 'department' AND o.unit_id = {p(scope.department_id or '')})"
    if scope.role is Role.GRID_MEMBER:
        return f"(o.unit_kind = 'grid' AND o.unit_id = ANY({p(sorted(scope.village_ids))}::text[]))"
    if scope.role is Role.MAINTAINER:
        return f"(o.unit_kind = 'maintainer' AND o.unit_id = {p(scope.maintainer_id or '')})"
    if scope.role is Role.BUSINESS:
        return f"(o.unit_kind = 'business' AND o.site_id = ANY({p(sorted(scope.site_ids))}::text[]))"
    return "FALSE"


def _actions(scope: Scope, row: Any) -> list[str]:
    """The steps this reader may take on the order now (the page shows these buttons)."""
    return [s for s, (frm, _to, _zh) in STEPS.items() if row["state"] in frm and scope.role in STEP_ROLES[s]]


def order_json(row: Any, scope: Scope, now: datetime) -> dict[str, Any]:
    """An order as the API gives it (contract14.md), its words Chinese."""
    atts = list(row["attachment_ids"] or [])
    return {
        "order_id": row["id"], "alert_id": row["alert_id"],
        "alert_title": f"{row['site_name']} {what_happened(row['alert_kind'], row['alert_summary'])}",
        "unit_kind": row["unit_kind"], "unit_kind_zh": UNIT_KIND_ZH.get(row["unit_kind"], "单位"),
        "unit_id": row["unit_id"], "unit_name": row["unit_name"], "assignee_name": row["assignee_name"],
        "assignee_phone": scope.phone(row["assignee_phone"]), "state": row["state"],
        "state_zh": STATE_ZH.get(row["state"], "未知"), "deadline": row["deadline"],
        "overdue": is_overdue(row["state"], row["deadline"], now) and row["alert_phase"] != "closed",
        "note": row["note"],
        "created_at": row["created_at"], "accepted_at": row["accepted_at"], "arrived_at": row["arrived_at"],
        "arrived_lat": row["arrived_lat"], "arrived_lon": row["arrived_lon"],
        "arrived_accuracy_m": row["arrived_accuracy_m"], "fed_back_at": row["fed_back_at"],
        "closed_at": row["closed_at"], "feedback_note": row["feedback_note"], "attachment_ids": atts,
        "close_requested": row["close_requested"], "return_reason": row["return_reason"],
        "close_reason": row["close_reason"], "close_reason_zh": REASON_ZH.get(row["close_reason"] or "", ""),
        "close_note": row["close_note"], "version": row["version"], "actions": _actions(scope, row),
    }


async def _audit_refusal(conn: Any, principal: Principal, target: str, message: str) -> None:
    await conn.execute(
        "INSERT INTO console_audit (actor, action, target, detail)"
        " VALUES ($1, 'workorder.refused', $2, $3::jsonb)", principal.actor, target,
        json.dumps({"reason": "out_of_scope", "message": message}, ensure_ascii=False))


async def _order_in_scope(conn: Any, scope: Scope, principal: Principal, order_id: str) -> Any:
    p = queries.Params()
    row = await wstore.visible_order(conn, order_id, _scope_sql(scope, p), p.values)
    if row is not None:
        return row
    if await wstore.order_exists(conn, order_id):
        message = _NOT_YOURS.get(scope.role, _NO_ORDER)
        await _audit_refusal(conn, principal, order_id, message)
        raise HTTPException(403 if scope.role in _NOT_YOURS else 404, message)
    raise HTTPException(404, _NO_ORDER)


# --- 派发 ----------------------------------------------------------------------------------------


async def _options(conn: Any, scope: Scope, alert_id: str) -> tuple[Any, list[UnitOption]]:
    alert = await queries.alert_detail(conn, scope, alert_id)
    if alert is None:
        raise HTTPException(404, _NO_ALERT)
    registry = await load_registry(conn)
    resp = resolve(registry, site_id=alert["site_id"], domain=alert["domain"], device_id=alert["device_id"])
    return alert, dispatch_options(resp)


@router.get("/api/alerts/{alert_id}/dispatch-options", summary="派发: 责任矩阵 units and people of the alarm",
            **access(*CENTRE))
async def get_dispatch_options(alert_id: IdPath, conn: Conn, scope: CurrentScope) -> dict:
    _alert, options = await _options(conn, scope, alert_id)
    return {"units": [
        {"unit_kind": u.unit_kind, "unit_kind_zh": UNIT_KIND_ZH[u.unit_kind], "unit_id": u.unit_id,
         "unit_name": u.unit_name, "why": u.why,
         "people": [{"contact_id": x.contact_id, "name": x.recipient.name,
                     "phone": scope.phone(x.recipient.phone)} for x in u.people]}
        for u in options]}


_Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]


class OrderPick(BaseModel):
    unit_id: _Id
    unit_kind: Literal["business", "township", "grid", "department", "maintainer", "leader"] | None = None
    contact_id: _Id | None = None


class DispatchBody(BaseModel):
    orders: Annotated[list[OrderPick], Field(min_length=1, max_length=30)]
    deadline_minutes: Annotated[int, Field(ge=5, le=30 * 24 * 60)] = 60
    note: Text = ""


def _conflict(problem: str, **extra: Any) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps({"applied": False, "problem": problem, **extra}, default=str)),
                        status_code=409)


@router.post("/api/alerts/{alert_id}/dispatch", summary="派发: one 工单 per picked unit or person",
             **access(*CENTRE))
async def dispatch(alert_id: IdPath, body: DispatchBody, request: Request, conn: Conn, scope: CurrentScope,
                   principal: CurrentPrincipal) -> Any:
    _alert, options = await _options(conn, scope, alert_id)
    picks: list[workorder_steps.Pick] = []
    seen: set[tuple[str, str | None, str | None]] = set()
    for i, o in enumerate(body.orders, 1):
        if (o.unit_id, o.unit_kind, o.contact_id) in seen:
            raise HTTPException(422, f"第{i}个派发对象与前面的重复，请去掉重复的选择")
        seen.add((o.unit_id, o.unit_kind, o.contact_id))
        unit = find_unit(options, o.unit_id, o.unit_kind)
        if unit is None:
            raise HTTPException(422, f"第{i}个派发对象不在该报警的责任矩阵中，请刷新后重新选择")
        person = unit.person(o.contact_id) if o.contact_id else None
        if o.contact_id and person is None:
            raise HTTPException(422, f"第{i}个派发对象：所选人员不属于{unit.unit_name}，请刷新后重新选择")
        picks.append(workorder_steps.Pick(unit, person))
    now = request.app.state.clock()
    try:
        res = await workorder_steps.dispatch(conn, alert_id, actor=principal.actor, now=now, picks=picks,
                                             deadline_minutes=body.deadline_minutes, note=body.note)
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    except NotFound:
        raise HTTPException(404, _NO_ALERT) from None
    alert = board_item(await queries.board_row(conn, alert_id))
    if not res.applied:
        return _conflict(res.problem, alert=alert)
    rows = [await wstore.order_row(conn, o["id"]) for o in res.orders]
    return {"applied": True, "orders": [order_json(r, scope, now) for r in rows], "alert": alert}


# --- reading -------------------------------------------------------------------------------------


@router.get("/api/workorders", summary="工单列表 (scoped; state open / overdue / closed / all)",
            **access(*FIELD))
async def list_orders(conn: Conn, scope: CurrentScope, request: Request, paging: PageParams,
                      state: Annotated[Literal["open", "overdue", "closed", "all"], Query()] = "all",
                      alert_id: IdFilter = None) -> dict:
    now = request.app.state.clock()
    p = queries.Params()
    where = [_scope_sql(scope, p)]
    if state == "open":
        where.append("o.state <> 'closed'")
    elif state == "closed":
        where.append("o.state = 'closed'")
    elif state == "overdue":
        where.append(f"o.state IN ('issued', 'accepted', 'arrived', 'returned') AND o.deadline <= {p(now)}"
                     " AND a.phase <> 'closed'")
    if alert_id:
        where.append(f"o.alert_id = {p(alert_id)}")
    total, rows = await wstore.list_orders(conn, where, p.values, limit=paging.page_size,
                                           offset=paging.offset)
    return {"items": [order_json(r, scope, now) for r in rows], "total": total, "page": paging.page,
            "page_size": paging.page_size}


@router.get("/api/workorders/{order_id}", summary="工单详情 (with its steps)", **access(*FIELD))
async def get_order(order_id: IdPath, conn: Conn, scope: CurrentScope, principal: CurrentPrincipal,
                    request: Request) -> dict:
    row = await _order_in_scope(conn, scope, principal, order_id)
    out = order_json(row, scope, request.app.state.clock())
    out["steps"] = [
        {"action": t["action"], "action_zh": _STEP_ZH.get(t["action"], "操作"), "outcome": t["outcome"],
         "from_state": t["from_state"], "to_state": t["to_state"], "at": t["at"], "reason": t["reason"]}
        for t in await wstore.order_transitions(conn, order_id)]
    return out


_STEP_ZH = {**{k: v[2] for k, v in STEPS.items()}, "issue": "派发", "notify": "通知", "remind": "超时提醒",
            "escalate": "超时上报"}


# --- steps ---------------------------------------------------------------------------------------


class _StepBody(BaseModel):
    expected_version: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None


class ArriveBody(_StepBody):
    lat: Annotated[float | None, Field(ge=-90, le=90)] = None
    lon: Annotated[float | None, Field(ge=-180, le=180)] = None
    accuracy_m: Annotated[float | None, Field(ge=0, le=100_000)] = None


_Att = Annotated[str, Field(pattern=r"^att-[A-Za-z0-9_-]{4,64}$")]


class OrderFeedbackBody(_StepBody):
    note: Annotated[Text, Field(min_length=1)]
    attachment_ids: Annotated[list[_Att], Field(max_length=9)] = []
    request_close: bool = False


class ApproveBody(_StepBody):
    reason: Literal["real", "false", "test", "fault"]
    note: Text = ""


class ReturnBody(_StepBody):
    reason: Annotated[Text, Field(min_length=1)]


async def _checked_attachments(conn: Any, ids: list[str], alert_id: str, principal: Principal,
                               now: datetime) -> list[str]:
    """The photos of a 反馈: uploaded to the order's alarm (console.attachments), else its 422 in
    Chinese and an ``attachment.refused`` audit row."""
    try:
        return await check_attachments(conn, ids, alert_id=alert_id)
    except AttachmentRefused as refusal:
        await audit_refusal(conn, principal.actor, alert_id, refusal, now=now)
        raise


async def _run(request: Request, conn: Any, scope: Scope, principal: Principal, order_id: str, step: str,
               call: Any, **args: Any) -> Any:
    row = await _order_in_scope(conn, scope, principal, order_id)
    now = request.app.state.clock()
    try:
        res = await call(conn, order_id, actor=principal.actor, now=now, **args)
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    except NotFound:
        raise HTTPException(404, _NO_ORDER) from None
    order = order_json(await wstore.order_row(conn, order_id), scope, now)
    body = {"applied": res.applied, "action": step, "problem": res.problem, "order": order,
            "alert_closed": res.alert_closed, "alert_id": row["alert_id"]}
    if not res.applied:
        return _conflict(res.problem, action=step, order=order)
    return body


@router.post("/api/workorders/{order_id}/accept", summary="接单", **access(*STEP_ROLES["accept"]))
async def accept(order_id: IdPath, body: _StepBody, request: Request, conn: Conn, scope: CurrentScope,
                 principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, order_id, "accept", workorder_steps.accept,
                      expected_version=body.expected_version)


@router.post("/api/workorders/{order_id}/arrive", summary="到场签到 (location optional)",
             **access(*STEP_ROLES["arrive"]))
async def arrive(order_id: IdPath, body: ArriveBody, request: Request, conn: Conn, scope: CurrentScope,
                 principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, order_id, "arrive", workorder_steps.arrive,
                      lat=body.lat, lon=body.lon, accuracy_m=body.accuracy_m,
                      expected_version=body.expected_version)


@router.post("/api/workorders/{order_id}/feedback", summary="反馈 (note, photos; request_close = 申请办结)",
             **access(*STEP_ROLES["feedback"]))
async def feedback(order_id: IdPath, body: OrderFeedbackBody, request: Request, conn: Conn,
                   scope: CurrentScope, principal: CurrentPrincipal) -> Any:
    row = await _order_in_scope(conn, scope, principal, order_id)
    ids = await _checked_attachments(conn, list(body.attachment_ids), row["alert_id"], principal,
                                     request.app.state.clock())
    return await _run(request, conn, scope, principal, order_id, "feedback", workorder_steps.feedback,
                      note=body.note, attachment_ids=ids, request_close=body.request_close,
                      expected_version=body.expected_version)


@router.post("/api/workorders/{order_id}/approve", summary="审核通过 (办结; the last order closes the alarm)",
             **access(*STEP_ROLES["approve"]))
async def approve(order_id: IdPath, body: ApproveBody, request: Request, conn: Conn, scope: CurrentScope,
                  principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, order_id, "approve", workorder_steps.approve,
                      reason=body.reason, note=body.note, expected_version=body.expected_version)


@router.post("/api/workorders/{order_id}/return", summary="退回 (the person redoes its feedback)",
             **access(*STEP_ROLES["return"]))
async def return_order(order_id: IdPath, body: ReturnBody, request: Request, conn: Conn, scope: CurrentScope,
                       principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, order_id, "return", workorder_steps.return_order,
                      reason=body.reason, expected_version=body.expected_version)
