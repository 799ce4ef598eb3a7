"""Alerts (报警) and their closed loop: 研判 verify → 派发 dispatch → 处置 handle → 反馈 feedback
→ 办结 close, plus 确认 acknowledge and 维保到场 arrival (alerting.arrival). The transitions are alerting's (alerting.lifecycle); this
module checks who may do what on which alert, and turns outcomes into HTTP:
applied → 200, refused (wrong phase, already closed, stale version) → 409 with the reason —
both recorded in the audit trail — unknown or out-of-scope id → 404, bad input → 422."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from alerting import lifecycle, queries
from alerting.arrival import record_arrival
from alerting.errors import InvalidAction, NotFound
from alerting.store.arrival import arrival_of
from console import words
from console.actors import actor_words, recipients_of, unit_names, user_names
from console.attachments import AttachmentRefused, audit_refusal, check_attachments
from console.auth import access
from console.board import board_item
from console.refusals import problem_zh
from console.routes._common import (
    Conn,
    CurrentPrincipal,
    CurrentScope,
    DomainFilter,
    IdFilter,
    IdPath,
    PageParams,
    Since,
    Until,
    check_range,
    not_found,
    page_of,
)
from console.routes.field import Position, store_checkin
from console.routes.registry import SITE_READERS
from console.scope import Principal, Role, Scope
from hazmon.contracts import AlertPhase, Severity, Verdict

__all__ = ["router", "ACTION_ROLES"]

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]

CENTRE = (Role.CENTRE, Role.ADMIN)
RESPONDERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER,
              Role.MAINTAINER)
#: who may do which action (on alerts within their scope)
ACTION_ROLES: dict[str, tuple[Role, ...]] = {
    "verify": CENTRE,  # 研判 is the centre's call
    "acknowledge": RESPONDERS,
    "dispatch": CENTRE,  # 派发 makes 工单: console/routes/workorders.py
    "handle": RESPONDERS,
    "feedback": RESPONDERS,
    "close": CENTRE,  # 办结
    # 维保到场: the 维保单位 phoned the centre's duty room from the lift, or records it itself (its lifts)
    "arrival": (*CENTRE, Role.MAINTAINER),
}


@router.get("", summary="报警列表 (filters, paging)", **access(*SITE_READERS))
async def list_alerts(
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    phase: Annotated[list[AlertPhase] | None, Query(description="repeat for several")] = None,
    open: Annotated[bool | None, Query(description="true: not 办结 yet")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    state: Literal["firing", "resolved"] | None = None,
    domain: DomainFilter = None,
    site_id: IdFilter = None,
    device_id: IdFilter = None,
    township_id: IdFilter = None,
    since: Since = None,
    until: Until = None,
) -> dict:
    check_range(since, until)
    f = queries.AlertFilter(
        phases=tuple(x.value for x in phase or ()), open=open,
        severities=tuple(x.value for x in severity or ()), state=state, domain=domain, site_id=site_id,
        device_id=device_id, township_id=township_id,
        since=since, until=until,
    )
    page = await queries.list_alerts(conn, scope, f, limit=paging.page_size, offset=paging.offset)
    return page_of([board_item(r) for r in page.rows], page.total, paging)


#: a field user (网格员, 维保单位) opening an alarm outside its area is told so, and it is audited: the
#: link in an SMS forwarded to the wrong person, a number typed by hand (issue 14)
_NOT_YOURS = {Role.GRID_MEMBER: "无权查看：该报警不在您负责的村（社区）",
              Role.MAINTAINER: "无权查看：该报警不是您维保的电梯"}


async def _alert_in_scope(conn: Any, scope: Scope, alert_id: str, principal: Principal | None = None
                          ) -> dict[str, Any]:
    row = await queries.alert_detail(conn, scope, alert_id)
    if row is None:
        if principal is not None and scope.role in _NOT_YOURS and await queries.alert_exists(conn, alert_id):
            await conn.execute(
                """INSERT INTO console_audit (actor, action, target, detail)
                   VALUES ($1, 'alert.refused', $2, $3::jsonb)""",
                principal.actor, alert_id,
                json.dumps({"reason": "out_of_scope", "message": _NOT_YOURS[scope.role]}, ensure_ascii=False))
            raise HTTPException(403, _NOT_YOURS[scope.role])
        raise not_found("alert", alert_id)
    d = board_item(row)
    for k in ("evidence", "labels"):
        if isinstance(d[k], str):
            d[k] = json.loads(d[k])
    return d


def _jsonish(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


#: the bearer token of a recipient's acknowledgement link: whoever holds it acknowledges as that
#: recipient, so nobody reads it in the console (the 回复码 stays: it only counts from its number)
_LINK_TOKEN = re.compile(r"(/ack/)[A-Za-z0-9_-]{8,}")


def _mask_phones(value: Any, scope: Any) -> Any:
    """``phone`` fields anywhere in a transition's detail, masked for the reader's role."""
    if isinstance(value, dict):
        return {k: (scope.phone(v) if k == "phone" and isinstance(v, str) else _mask_phones(v, scope))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_phones(v, scope) for v in value]
    return value

@router.get("/{alert_id}", summary="报警详情 (timeline: actions, notifications, 四单, readings)", **access(*SITE_READERS))
async def get_alert(alert_id: IdPath, request: Request, conn: Conn, scope: CurrentScope,
                    principal: CurrentPrincipal) -> dict:
    alert = await _alert_in_scope(conn, scope, alert_id, principal)
    transitions = await lifecycle.alert_timeline(conn, alert_id)
    alert["transitions"] = [
        {"id": t.id, "action": t.action, "from_phase": t.from_phase, "to_phase": t.to_phase, "outcome": t.outcome,
         "actor": t.actor, "at": t.at, "reason": t.reason, "verdict": t.verdict, "note": t.note,
         "photo_ref": t.photo_ref, "detail": _mask_phones(dict(t.detail), scope), "version": t.version}
        for t in transitions
    ]
    notes = await queries.alert_notifications(conn, alert_id)
    # who did it, in words (系统, 回复码确认（姓名·单位）…): console/actors.py
    told = recipients_of(notes)
    users = await user_names(conn, [t.actor for t in transitions] + [str(alert.get("acked_by") or "")])
    kind = str(alert.get("kind") or "")
    for t in alert["transitions"]:  # the timeline in words (console/words.py)
        t["actor_zh"] = actor_words(t["actor"], told, users)
        t["action_zh"] = words.TRANSITION_ZH.get(t["action"], "操作")
        t["reason_zh"] = words.transition_reason(t["action"], t["reason"], kind)
        if t["outcome"] == "rejected":
            t["problem_zh"] = problem_zh(str(t["detail"].get("problem") or t["reason"] or ""))
    alert["acked_by_zh"] = actor_words(alert.get("acked_by"), told, users) if alert.get("acked_by") else ""
    names = await unit_names(conn, [str(n["rule"] or "") for n in notes], told)
    alert["notifications"] = [
        {**dict(n), "recipient_phone": scope.phone(n["recipient_phone"]),
         "body": _LINK_TOKEN.sub(r"\1••••", n["body"]),
         "rule_zh": words.rule_words(n["rule"], alert["domain"], names),
         "channel_zh": words.CHANNEL_ZH.get(n["channel"], "其他渠道"),
         "status_zh": words.NOTIFY_STATUS_ZH.get(n["status"], "处理中"),
         "template_zh": words.template_words(str(n["template"] or "")),
         "error_zh": words.delivery_error(n["last_error"])}
        for n in notes]
    notices = await queries.alert_notices(conn, alert_id)
    out_notices = []
    for n in notices:
        d = dict(n)
        recipients = _jsonish(d["recipients"]) or []
        d["recipients"] = [{**r, "phone": scope.phone(r.get("phone"))} for r in recipients if isinstance(r, dict)]
        d["status_zh"] = words.NOTICE_STATUS_ZH.get(d["status"], "")
        out_notices.append(d)
    alert["notices"] = out_notices
    timer = await arrival_of(conn, alert_id)  # 维保到场计时 (a trapped passenger's lift)
    alert["arrival"] = {k: timer[k] for k in ("maintainer_id", "started_at", "due_at", "arrived_at", "arrived_by",
                                              "escalated_at")} if timer else None
    # readings around the alarm, for the chart: 30 min before the start to the end (or now)
    now = request.app.state.clock()
    start = alert["starts_at"] - timedelta(minutes=30)
    end = (alert["ends_at"] or now) + timedelta(minutes=5)
    readings = await conn.fetch(
        """SELECT metric, ts, value, unit FROM readings WHERE device_id = $1 AND ts >= $2 AND ts < $3
           ORDER BY ts DESC LIMIT 2000""",
        alert["device_id"], start, end,
    )
    alert["readings"] = [dict(r) for r in reversed(readings)]
    # a chart's axis: 可燃气体浓度（%LEL）, not gas_lel
    alert["metric_zh"] = {r["metric"]: words.metric_words(r["metric"], r["unit"]) for r in readings}
    return alert


class _ActionBody(BaseModel):
    expected_version: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None


class VerifyBody(_ActionBody):
    verdict: Verdict
    reason: Annotated[Text, Field(min_length=1)]


class AckBody(_ActionBody):
    reason: Text = ""


class NoteBody(_ActionBody):
    note: Text = ""


class FeedbackBody(_ActionBody):
    note: Annotated[Text, Field(min_length=1)]
    photo_ref: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] = ""
    #: 现场照片 uploaded to this alert (POST /api/attachments); kept in photo_ref, space-separated
    attachment_ids: Annotated[list[Annotated[str, Field(pattern=r"^att-[A-Za-z0-9_-]{1,40}$")]],
                              Field(max_length=10)] = []


class ArrivalBody(NoteBody, Position):
    """维保到场, with the browser's position when granted (console/routes/field.py)."""


class CloseBody(_ActionBody):
    reason: Annotated[Text, Field(min_length=1)]


async def _run(request: Request, conn: Any, scope: Scope, principal: Any, alert_id: str, action: str,
               transition: Any, body: _ActionBody, **args: Any) -> Any:
    """Apply ``transition`` (an alerting.lifecycle action) to an alert of the caller's scope."""
    await _alert_in_scope(conn, scope, alert_id, principal)  # outside the caller's scope: 404 (field: 403)
    now = request.app.state.clock()
    try:
        result = await transition(conn, alert_id, actor=principal.actor, now=now,
                                  expected_version=body.expected_version, **args)
    except NotFound:
        raise not_found("alert", alert_id) from None
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    item = board_item(await queries.board_row(conn, alert_id))
    body_out = {"applied": result.applied, "action": action, "transition_id": result.transition_id,
                "problem": problem_zh(result.problem), "problem_code": result.problem, "alert": item}
    if not result.applied:
        return JSONResponse(json.loads(json.dumps(body_out, default=str)), status_code=409)
    return body_out


@router.post("/{alert_id}/verify", summary="研判 (real / false / test / fault)", **access(*ACTION_ROLES["verify"]))
async def verify(alert_id: IdPath, body: VerifyBody, request: Request, conn: Conn, scope: CurrentScope,
                 principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, alert_id, "verify", lifecycle.verify, body,
                      verdict=body.verdict, reason=body.reason)


@router.post("/{alert_id}/acknowledge", summary="确认 (seen; stops reminder timers)",
             **access(*ACTION_ROLES["acknowledge"]))
async def acknowledge(alert_id: IdPath, body: AckBody, request: Request, conn: Conn, scope: CurrentScope,
                      principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, alert_id, "acknowledge", lifecycle.acknowledge, body,
                      via="console", reason=body.reason)


@router.post("/{alert_id}/handle", summary="处置 (someone is on site)", **access(*ACTION_ROLES["handle"]))
async def handle(alert_id: IdPath, body: NoteBody, request: Request, conn: Conn, scope: CurrentScope,
                 principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, alert_id, "handle", lifecycle.start_handling, body,
                      note=body.note)


@router.post("/{alert_id}/feedback", summary="反馈 (note, optional photo reference)",
             **access(*ACTION_ROLES["feedback"]))
async def feedback(alert_id: IdPath, body: FeedbackBody, request: Request, conn: Conn, scope: CurrentScope,
                   principal: CurrentPrincipal) -> Any:
    try:
        ids = await check_attachments(conn, body.attachment_ids, alert_id=alert_id)
    except AttachmentRefused as refusal:
        await audit_refusal(conn, principal.actor, alert_id, refusal, now=request.app.state.clock())
        raise
    return await _run(request, conn, scope, principal, alert_id, "feedback", lifecycle.feedback, body,
                      note=body.note, photo_ref=" ".join([x for x in [body.photo_ref, *ids] if x]))


@router.post("/{alert_id}/close", summary="办结 (needs a reason)", **access(*ACTION_ROLES["close"]))
async def close(alert_id: IdPath, body: CloseBody, request: Request, conn: Conn, scope: CurrentScope,
                principal: CurrentPrincipal) -> Any:
    return await _run(request, conn, scope, principal, alert_id, "close", lifecycle.close, body,
                      reason=body.reason)


@router.post("/{alert_id}/arrival", summary="维保到场 (the 维保单位 is on site: stops the 到场 timer)",
             **access(*ACTION_ROLES["arrival"]))
async def arrival(alert_id: IdPath, body: ArrivalBody, request: Request, conn: Conn, scope: CurrentScope,
                  principal: CurrentPrincipal) -> Any:
    out = await _run(request, conn, scope, principal, alert_id, "arrival", record_arrival, body, note=body.note)
    if isinstance(out, dict):  # applied: where the 维保单位 stood (field_checkins)
        out["checkin"] = await store_checkin(conn, alert_id, principal.actor, request.app.state.clock(), "arrival",
                                             body)
    return out
