"""安全公益短信 from the console (issue 14): preview (the text, its length and SMS segments, the
providers' review rules it breaks), draft, approval by **another** user of the centre or admin
roles (the author's own approval is refused and audited), then send. The steps are
alerting/broadcast.py's; the audience is picked by township and industry."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from alerting import broadcast as bc
from alerting.errors import InvalidAction, NotFound
from alerting.store import broadcasts as store
from console.actors import actor_words, user_names
from console.auth import access
from console.routes._common import ID_PATTERN, Conn, CurrentPrincipal, IdPath
from console.scope import Role

__all__ = ["router"]

router = APIRouter(prefix="/api/broadcasts", tags=["broadcasts"])
CENTRE = (Role.CENTRE, Role.ADMIN)
Ident = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Word = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$")]
_STATUS_ZH = {"draft": "待审批", "approved": "已审批待发送", "rejected": "已驳回", "sent": "已发送"}
_ACTION_ZH = {
    "draft": "起草",
    "approve": "审批通过",
    "reject": "驳回",
    "send": "发送",
    "refused": "操作被拒绝",
}


def _sms(request: Request) -> tuple[str, str]:
    s = request.app.state.settings.sms
    return s.sign_name, s.provider


class AudienceBody(BaseModel):
    body: Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")]
    township_ids: Annotated[list[Ident], Field(max_length=100)] = []
    industries: Annotated[list[Word], Field(max_length=50)] = []


class DraftBody(AudienceBody):
    reason: Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")]


class DecideBody(BaseModel):
    reason: Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


async def _preview(request: Request, conn: Any, body: AudienceBody) -> dict:
    sign, provider = _sms(request)
    p = bc.preview(body.body, sign_name=sign, provider=provider)
    n = await store.audience_count(conn, township_ids=body.township_ids, industries=body.industries)
    problems = list(p.problems) + ([] if n else ["所选范围内没有可接收短信的企业联系人"])
    return {
        "text": p.text,
        "full": p.full,
        "chars": p.chars,
        "segments": p.segments,
        "problems": problems,
        "recipients": n,
    }


@router.get("/options", summary="发送范围的可选项（镇街、行业）", **access(*CENTRE))
async def options(conn: Conn) -> dict:
    towns = await conn.fetch("SELECT id, name FROM townships ORDER BY id")
    inds = await conn.fetch("SELECT DISTINCT industry FROM sites WHERE industry <> '' ORDER BY industry")
    return {"townships": [dict(t) for t in towns], "industries": [r["industry"] for r in inds]}


@router.post("/preview", summary="预览：正文、字数、条数、审核规则", **access(*CENTRE))
async def preview(body: AudienceBody, request: Request, conn: Conn) -> dict:
    return await _preview(request, conn, body)


@router.get("", summary="公益短信列表（含审批记录）", **access(*CENTRE))
async def list_broadcasts(conn: Conn) -> list[dict]:
    rows = await store.broadcast_rows(conn)
    audit = await store.audit_rows(conn, [r["id"] for r in rows])
    users = await user_names(conn, [r["created_by"] for r in rows] + [a["actor"] for a in audit])
    towns = {t["id"]: t["name"] for t in await conn.fetch("SELECT id, name FROM townships")}
    out = []
    for r in rows:
        aud = json.loads(r["audience"]) if isinstance(r["audience"], str) else dict(r["audience"] or {})
        where = "、".join(towns.get(t, "未知镇街") for t in aud.get("township_ids", [])) or "全区"
        who = "、".join(aud.get("industries", [])) or "全部行业"
        out.append(
            {
                "id": r["id"],
                "body": r["body"],
                "status": r["status"],
                "status_zh": _STATUS_ZH.get(r["status"], "未知"),
                "reason": r["reason"],
                "recipients": r["recipients"],
                "created_at": r["created_at"],
                "audience_zh": f"{where} · {who}",
                "created_by": r["created_by"],
                "created_by_zh": actor_words(r["created_by"], {}, users),
                "audit": [
                    {
                        "at": a["at"],
                        "action_zh": _ACTION_ZH.get(a["action"], "操作"),
                        "reason": a["reason"],
                        "actor_zh": actor_words(a["actor"], {}, users),
                        "problem": (
                            json.loads(a["detail"]) if isinstance(a["detail"], str) else a["detail"] or {}
                        ).get("problem", ""),
                    }
                    for a in audit
                    if a["broadcast_id"] == r["id"]
                ],
            }
        )
    return out


@router.post("", status_code=201, summary="起草公益短信（待另一人审批）", **access(*CENTRE))
async def create(body: DraftBody, request: Request, conn: Conn, principal: CurrentPrincipal) -> dict:
    pv = await _preview(request, conn, body)
    if pv["problems"]:
        raise HTTPException(422, "；".join(pv["problems"]))
    try:
        bid = await bc.draft(
            conn,
            actor=principal.actor,
            now=request.app.state.clock(),
            body=body.body,
            reason=body.reason,
            township_ids=body.township_ids,
            industries=body.industries,
            text=pv["text"],
            recipients=pv["recipients"],
        )
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": bid, "status": "draft", "status_zh": _STATUS_ZH["draft"], **pv}


async def _decide(
    broadcast_id: str, body: DecideBody, request: Request, conn: Any, principal: Any, reject: bool
) -> dict:
    try:
        await bc.approve(
            conn,
            broadcast_id,
            actor=principal.actor,
            now=request.app.state.clock(),
            reason=body.reason,
            reject=reject,
        )
    except NotFound:
        raise HTTPException(404, "公益短信不存在") from None
    except InvalidAction as exc:
        raise HTTPException(409, str(exc)) from None
    st = "rejected" if reject else "approved"
    return {"id": broadcast_id, "status": st, "status_zh": _STATUS_ZH[st]}


@router.post("/{broadcast_id}/approve", summary="审批通过（不能审批自己起草的）", **access(*CENTRE))
async def approve(
    broadcast_id: IdPath, body: DecideBody, request: Request, conn: Conn, principal: CurrentPrincipal
) -> dict:
    return await _decide(broadcast_id, body, request, conn, principal, False)


@router.post("/{broadcast_id}/reject", summary="驳回", **access(*CENTRE))
async def reject(
    broadcast_id: IdPath, body: DecideBody, request: Request, conn: Conn, principal: CurrentPrincipal
) -> dict:
    return await _decide(broadcast_id, body, request, conn, principal, True)


@router.post("/{broadcast_id}/send", summary="发送已审批的公益短信", **access(*CENTRE))
async def send(broadcast_id: IdPath, request: Request, conn: Conn, principal: CurrentPrincipal) -> dict:
    sign, _ = _sms(request)
    try:
        res = await bc.send_approved(
            conn, broadcast_id, actor=principal.actor, now=request.app.state.clock(), sign_name=sign
        )
    except NotFound:
        raise HTTPException(404, "公益短信不存在") from None
    except InvalidAction as exc:
        raise HTTPException(409, str(exc)) from None
    return {
        "id": broadcast_id,
        "status": "sent",
        "status_zh": _STATUS_ZH["sent"],
        "recipients": res.recipients,
        "queued": res.queued,
        "skipped_invalid": res.skipped_invalid,
    }
