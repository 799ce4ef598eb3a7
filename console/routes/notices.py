"""通知单台账: the 四单 register per unit — read by the centre (filtered by township or
department), by a township or a department for its own notices; 签收 and 回复 by the unit the
notice is addressed to, 办结 of a unit's part by the centre once it replied.

The register is alerting's (``notice_units``, alerting/store/notice_register.py, written when
the escalation pass issues a notice in the 区安委办's name). A 问责建议单 is an internal record for
the leaders: only the centre sees it. Every 签收, 回复 and 办结 — and every refusal of one (a notice
not addressed to the caller's unit, a part already 办结, a reply or note that is empty, longer than
:data:`MAX_TEXT` or holds control characters) — is a ``console_audit`` row; errors are Chinese.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from alerting.store import notice_register as register
from console.auth import access
from console.routes._common import Conn, CurrentPrincipal, IdFilter, PageParams, page_of
from console.scope import Principal, Role

__all__ = ["router"]

router = APIRouter(prefix="/api/notices", tags=["notices"])
CENTRE = (Role.CENTRE, Role.ADMIN)
UNITS = (Role.TOWNSHIP, Role.DEPARTMENT)
NoticeId = Annotated[int, Path(ge=1, le=2**62, description="通知单编号")]
MAX_TEXT = 2000
#: what a request may carry at all; the text's own limits (:func:`_text_problem`) are refusals
#: with an audit row, so they are checked by the route, not by the model
Text = Annotated[str, Field(min_length=1, max_length=4 * MAX_TEXT,
                            description=f"最多{MAX_TEXT}字；不能含控制字符（换行、制表符除外）")]
#: C0/C1 controls but tab and newlines, zero-width and direction marks/overrides, BOM: they
#: hide or reorder what a reader of the register sees
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
LEVEL_ZH = {"reminder": "工作提醒单", "warning": "风险警示单", "supervision": "问题督办单",
            "accountability": "问责建议单"}
UNIT_KIND_ZH = {"township": "镇街", "department": "行业部门", "leader": "领导", "centre": "中心值班室"}


def _own_unit(principal: Principal) -> tuple[str, str]:
    """The unit a township or department user acts for; 403 when the account names none."""
    if principal.role is Role.TOWNSHIP and principal.township_id:
        return "township", principal.township_id
    if principal.role is Role.DEPARTMENT and principal.department_id:
        return "department", principal.department_id
    raise HTTPException(403, "无权操作：账号未关联镇街或行业部门")


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["level_zh"] = LEVEL_ZH.get(d["level"], d["level"])
    d["unit_kind_zh"] = UNIT_KIND_ZH.get(d["unit_kind"], d["unit_kind"])
    d["roles"] = list(d["roles"])
    raw = d.get("concerning")
    d["concerning"] = json.loads(raw) if isinstance(raw, str) else list(raw or [])
    d["state_zh"] = ("已办结" if d["closed_at"] else "已回复" if d["replied_at"] else
                     "已签收" if d["signed_at"] else "未签收")
    return d


@router.get("", summary="通知单台账 (per unit; the centre filters by township or department)",
            **access(*CENTRE, *UNITS))
async def list_notices(
    request: Request, conn: Conn, principal: CurrentPrincipal, paging: PageParams,
    township_id: IdFilter = None, department_id: IdFilter = None,
    level: Literal["reminder", "warning", "supervision", "accountability"] | None = None,
    state: Annotated[Literal["unsigned", "unreplied", "replied", "closed", "overdue"] | None,
                     Query(description="未签收 / 未回复 / 已回复 / 已办结 / 逾期未回复")] = None,
) -> dict:
    if principal.role in UNITS:
        kind, own = _own_unit(principal)
        asked = township_id if kind == "township" else department_id
        if (asked and asked != own) or (township_id if kind == "department" else department_id):
            raise HTTPException(403, "无权查看：只能查看本单位的通知单台账")
        township_id, department_id = (own, None) if kind == "township" else (None, own)
    f = register.RegisterFilter(township_id=township_id, department_id=department_id, level=level,
                                state=state)
    total, rows = await register.list_register(conn, f, now=request.app.state.clock(),
                                               limit=paging.page_size, offset=paging.offset)
    return page_of([_row(r) for r in rows], total, paging)


async def _notice(conn: Any, principal: Principal, notice_id: int) -> list[dict[str, Any]]:
    """The notice's unit rows the caller may see: all for the centre, its own unit's otherwise;
    404 alike for an unknown notice and one not addressed to the caller (nothing learnt)."""
    rows = [_row(r) for r in await register.notice_with_units(conn, notice_id)]
    if principal.role in UNITS:
        kind, own = _own_unit(principal)
        rows = [r for r in rows if (r["unit_kind"], r["unit_id"]) == (kind, own)]
    if not rows:
        raise HTTPException(404, f"通知单 {notice_id} 不存在或未发给本单位")
    return rows


_HEAD = ("notice_id", "alert_id", "level", "level_zh", "step", "issued_by", "issued_at", "deadline", "reason",
         "notice_status", "concerning", "site_id", "site_name", "township_id", "domain", "kind", "severity")


@router.get("/{notice_id}", summary="通知单详情 (its units, 签收/回复/办结)", **access(*CENTRE, *UNITS))
async def get_notice(notice_id: NoticeId, conn: Conn, principal: CurrentPrincipal) -> dict:
    rows = await _notice(conn, principal, notice_id)
    head = {k: rows[0][k] for k in _HEAD}
    return {**head, "units": [{k: v for k, v in r.items() if k not in head} for r in rows]}


async def _audit(conn: Any, actor: str, action: str, notice_id: int, detail: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO console_audit (actor, action, target, detail) VALUES ($1,$2,$3,$4::jsonb)",
        actor, action, f"notice:{notice_id}", json.dumps(detail, ensure_ascii=False))


async def _refuse(conn: Any, principal: Principal, notice_id: int, action: str, status: int, problem: str,
                  **detail: Any) -> HTTPException:
    await _audit(conn, principal.actor, "notice.refused", notice_id,
                 {"action": action, "problem": problem, **detail})
    return HTTPException(status, problem)


_MISSING = "通知单 {} 不存在或未发给本单位"


def _text_problem(text: str, what: str) -> str | None:
    """Why ``text`` (a reply, a note) cannot go into the register, in Chinese; None when it can."""
    t = text.strip()
    if not t:
        return f"{what}不能为空"
    if len(t) > MAX_TEXT:
        return f"{what}过长：最多{MAX_TEXT}字（现有{len(t)}字）"
    if _CONTROL.search(t):
        return f"{what}含有不可见的控制字符，请删除后重试"
    return None


@router.post("/{notice_id}/sign", summary="签收 (the addressed township or department)", **access(*UNITS))
async def sign(notice_id: NoticeId, request: Request, conn: Conn, principal: CurrentPrincipal) -> dict:
    kind, own = _own_unit(principal)
    async with conn.transaction():
        got = await register.sign_unit(conn, notice_id, kind, own, actor=principal.actor,
                                       now=request.app.state.clock())
        if got == "signed":
            await _audit(conn, principal.actor, "notice.sign", notice_id, {"unit": f"{kind}:{own}"})
    if got == "missing":  # the refusal's audit row outside the (empty) transaction: it stays
        raise await _refuse(conn, principal, notice_id, "sign", 404, _MISSING.format(notice_id))
    return {"result": "已签收" if got == "signed" else "此前已签收",
            **await get_notice(notice_id, conn, principal)}


class ReplyBody(BaseModel):
    reply: Annotated[Text, Field(description="回复：处置措施、责任人、整改结果")]


@router.post("/{notice_id}/reply", summary="回复 (signs too; the addressed township or department)",
             **access(*UNITS))
async def reply(notice_id: NoticeId, body: ReplyBody, request: Request, conn: Conn,
                principal: CurrentPrincipal) -> dict:
    kind, own = _own_unit(principal)
    if problem := _text_problem(body.reply, "回复"):
        raise await _refuse(conn, principal, notice_id, "reply", 422, problem)
    async with conn.transaction():
        got = await register.reply_unit(conn, notice_id, kind, own, actor=principal.actor,
                                        now=request.app.state.clock(), text=body.reply.strip())
        if got == "replied":
            await _audit(conn, principal.actor, "notice.reply", notice_id,
                         {"unit": f"{kind}:{own}", "reply": body.reply.strip()})
    if got == "missing":
        raise await _refuse(conn, principal, notice_id, "reply", 404, _MISSING.format(notice_id))
    if got == "closed":
        raise await _refuse(conn, principal, notice_id, "reply", 409, "本单位的通知单已办结，不能再回复")
    return {"result": "已回复", **await get_notice(notice_id, conn, principal)}


class NoticeCloseBody(BaseModel):
    unit: Annotated[str, Field(pattern=r"^(township|department|leader|centre):[A-Za-z0-9._-]{1,64}$",
                               description="township:T1 / department:zj / leader:L1 / centre:duty")]
    note: Annotated[Text, Field(description="办结意见")]


@router.post("/{notice_id}/close", summary="办结 one unit's part (the centre, after its reply)",
             **access(*CENTRE))
async def close(notice_id: NoticeId, body: NoticeCloseBody, request: Request, conn: Conn,
                principal: CurrentPrincipal) -> dict:
    kind, _, unit_id = body.unit.partition(":")
    if problem := _text_problem(body.note, "办结意见"):
        raise await _refuse(conn, principal, notice_id, "close", 422, problem, unit=body.unit)
    async with conn.transaction():
        got = await register.close_unit(conn, notice_id, kind, unit_id, actor=principal.actor,
                                        now=request.app.state.clock(), note=body.note.strip())
        if got == "closed":
            await _audit(conn, principal.actor, "notice.close", notice_id,
                         {"unit": body.unit, "note": body.note.strip()})
    problems = {"missing": (404, f"通知单 {notice_id} 未发给 {body.unit}"),
                "already": (409, "该单位的通知单此前已办结"),
                "unreplied": (409, "该单位尚未回复，不能办结：请先督促其回复")}
    if got in problems:
        status, problem = problems[got]
        raise await _refuse(conn, principal, notice_id, "close", status, problem, unit=body.unit)
    return {"result": "已办结", **await get_notice(notice_id, conn, principal)}
