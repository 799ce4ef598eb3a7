"""Silences (静默): e.g. an elevator's 维保 window. alerting.silence validates and audits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field

from alerting import silence as silences
from alerting.errors import InvalidAction, NotFound
from console.actors import actor_words, user_names
from console.auth import access
from console.routes._common import Conn, CurrentPrincipal, IdPath, not_found
from console.scope import Role
from console.words import matcher_words

__all__ = ["router"]

router = APIRouter(prefix="/api/silences", tags=["silences"])
CENTRE = (Role.CENTRE, Role.ADMIN)


def _out(s: silences.Silence, now: Any) -> dict:
    return {
        "id": s.id, "matchers": [m.to_json() for m in s.matchers], "starts_at": s.starts_at, "ends_at": s.ends_at,
        "created_by": s.created_by, "reason": s.reason, "created_at": s.created_at, "expired_at": s.expired_at,
        "expired_by": s.expired_by, "status": s.status(now),
        "matchers_zh": [matcher_words(m.to_json()) for m in s.matchers],  # 场所为 S2 (console/words.py)
    }


class MatcherBody(BaseModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    op: Annotated[str, Field(pattern=r"^(=|!=|=~|!~)$")] = "="
    value: Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]


class SilenceBody(BaseModel):
    matchers: Annotated[list[MatcherBody], Field(min_length=1, max_length=20)]
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]


class ExpireBody(BaseModel):
    reason: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] = ""


@router.get("", summary="静默列表", **access(*CENTRE))
async def list_silences(request: Request, conn: Conn, include_expired: bool = False) -> list[dict]:
    now = request.app.state.clock()
    found = await silences.list_silences(conn, now=now, include_expired=include_expired)
    users = await user_names(conn, [s.created_by for s in found])  # 李值班（中心值班员）, not centre:centre1
    return [{**_out(s, now), "created_by_zh": actor_words(s.created_by, {}, users)} for s in found]


@router.post("", status_code=201, summary="新建静默 (matchers, reason, expiry)", **access(*CENTRE))
async def create(body: SilenceBody, request: Request, conn: Conn, principal: CurrentPrincipal) -> dict:
    now = request.app.state.clock()
    try:
        s = await silences.create_silence(
            conn, actor=principal.actor, now=now, matchers=[m.model_dump() for m in body.matchers],
            starts_at=body.starts_at, ends_at=body.ends_at, reason=body.reason,
        )
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    return _out(s, now)


@router.get("/{silence_id}", summary="静默详情 (with audit)", **access(*CENTRE))
async def get(silence_id: IdPath, request: Request, conn: Conn) -> dict:
    try:
        s = await silences.get_silence(conn, silence_id)
    except NotFound:
        raise not_found("silence", silence_id) from None
    out = _out(s, request.app.state.clock())
    out["audit"] = await silences.silence_audit(conn, silence_id)
    return out


@router.post("/{silence_id}/expire", summary="提前结束静默", **access(*CENTRE))
async def expire(silence_id: IdPath, body: ExpireBody, request: Request, conn: Conn,
                 principal: CurrentPrincipal) -> dict:
    now = request.app.state.clock()
    try:
        s = await silences.expire_silence(conn, silence_id, actor=principal.actor, now=now, reason=body.reason)
    except NotFound:
        raise not_found("silence", silence_id) from None
    return _out(s, now)
