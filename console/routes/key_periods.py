"""重点时段 calendar (issue 14): list, add and end key periods from the console; while one is in
force every page shows a banner (``GET /api/key-periods/active``, every role). Rows made here
carry ``created_by`` = the operator, so the alerting service's sync from routes.yaml leaves them
alone (alerting/store/escalations.py); it re-reads the calendar at its next reload. Every change
is a ``registry_audit`` row (``key_period.create`` / ``key_period.end``) with its reason."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field

from alerting.store import key_periods as kp_store
from console.actors import actor_words, user_names
from console.auth import access
from console.routes._common import ID_PATTERN, Conn, CurrentPrincipal, IdPath
from console.scope import ALL_ROLES, Role
from console.words import DOMAIN_ZH

__all__ = ["router", "KIND_ZH"]

router = APIRouter(prefix="/api/key-periods", tags=["key-periods"])
EDITORS = (Role.CENTRE, Role.ADMIN)
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
KIND_ZH = {
    "holiday": "节假日",
    "meeting": "重大活动",
    "flood": "汛期",
    "heat": "高温",
    "freezing": "低温雨雪冰冻",
    "resumption": "复工复产",
    "weather": "极端天气",
    "other": "其他",
}
_STATUS_ZH = {"pending": "未开始", "active": "进行中", "ended": "已结束"}
Ident = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Text = Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")]


def _status(r: Any, now: Any) -> str:
    return "pending" if now < r["starts_at"] else "active" if now < r["ends_at"] else "ended"


async def _words(conn: Any, rows: list[Any], now: Any) -> list[dict]:
    towns = {t["id"]: t["name"] for t in await conn.fetch("SELECT id, name FROM townships")}
    users = await user_names(conn, [r["created_by"] for r in rows])
    out = []
    for r in rows:
        st = _status(r, now)
        where = "、".join(towns.get(t, "未知镇街") for t in r["township_ids"]) or "全区"
        domains = "、".join(DOMAIN_ZH.get(d, "其他领域") for d in r["domains"]) or "全部领域"
        out.append(
            {
                "id": r["id"],
                "name": r["name"],
                "kind": r["kind"],
                "kind_zh": KIND_ZH.get(r["kind"], "其他"),
                "starts_at": r["starts_at"],
                "ends_at": r["ends_at"],
                "timer_factor": r["timer_factor"],
                "domains": list(r["domains"]),
                "township_ids": list(r["township_ids"]),
                "note": r["note"],
                "where_zh": where,
                "domains_zh": domains,
                "status": st,
                "status_zh": _STATUS_ZH[st],
                "created_by_zh": "配置文件"
                if r["created_by"] == "config"
                else actor_words(r["created_by"], {}, users),
            }
        )
    return out


@router.get("", summary="重点时段列表", **access(*READERS))
async def list_periods(request: Request, conn: Conn) -> list[dict]:
    rows = await kp_store.list_key_periods(conn)
    return await _words(conn, rows, request.app.state.clock())


@router.get("/active", summary="正在进行的重点时段（每个页面的提示条）", **access(*ALL_ROLES))
async def active(request: Request, conn: Conn) -> list[dict]:
    now = request.app.state.clock()
    rows = await kp_store.active_key_periods(conn, now)
    return [
        {k: d[k] for k in ("name", "kind_zh", "ends_at", "where_zh", "domains_zh", "timer_factor")}
        for d in await _words(conn, rows, now)
    ]


class PeriodBody(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]*$")]
    kind: Literal["holiday", "meeting", "flood", "heat", "freezing", "resumption", "weather", "other"] = (
        "other"
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    timer_factor: Annotated[float, Field(gt=0.05, le=1.0)] = 0.5
    domains: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]], Field(max_length=20)
    ] = []
    township_ids: Annotated[list[Ident], Field(max_length=100)] = []
    note: Text = ""
    reason: Annotated[Text, Field(min_length=1)]


class KeyPeriodEndBody(BaseModel):
    reason: Annotated[Text, Field(min_length=1)]


async def _audit(conn: Any, actor: str, action: str, detail: dict) -> None:
    await conn.execute(
        "INSERT INTO registry_audit (actor, action, detail) VALUES ($1, $2, $3::jsonb)",
        actor,
        action,
        json.dumps(detail, ensure_ascii=False, default=str),
    )


@router.post("", status_code=201, summary="新增重点时段 (audited)", **access(*EDITORS))
async def create(body: PeriodBody, request: Request, conn: Conn, principal: CurrentPrincipal) -> dict:
    now = request.app.state.clock()
    if body.ends_at <= body.starts_at:
        raise HTTPException(422, "结束时间必须晚于开始时间")
    if body.ends_at <= now:
        raise HTTPException(422, "结束时间已过，不能新增已结束的重点时段")
    known = {
        r["id"]
        for r in await conn.fetch("SELECT id FROM townships WHERE id = ANY($1::text[])", body.township_ids)
    }
    if set(body.township_ids) - known:
        raise HTTPException(422, "所选镇街不存在")
    pid = f"kp-{now:%Y%m%d}-{secrets.token_hex(3)}"
    async with conn.transaction():
        row = await kp_store.insert_key_period(
            conn, period_id=pid, name=body.name, kind=body.kind, starts_at=body.starts_at,
            ends_at=body.ends_at, timer_factor=body.timer_factor, domains=body.domains,
            township_ids=body.township_ids, note=body.note, created_by=principal.actor, now=now)
        await _audit(
            conn, principal.actor, "key_period.create", {"id": pid, "reason": body.reason, "after": dict(row)}
        )
    return (await _words(conn, [row], now))[0]


@router.post("/{period_id}/end", summary="结束（或取消未开始的）重点时段 (audited)", **access(*EDITORS))
async def end(
    period_id: IdPath, body: KeyPeriodEndBody, request: Request, conn: Conn, principal: CurrentPrincipal
) -> dict:
    now = request.app.state.clock()
    async with conn.transaction():
        before = await kp_store.lock_key_period(conn, period_id)
        if before is None:
            raise HTTPException(404, "重点时段不存在")
        st = _status(before, now)
        if st == "ended":
            raise HTTPException(409, "该重点时段已结束")
        if st == "pending" and before["created_by"] == "config":  # the next sync would bring it back
            raise HTTPException(409, "该重点时段来自路由配置文件，尚未开始，请在配置文件中删除")
        if st == "pending":  # not started: cancelled (ends_at may not precede starts_at)
            await kp_store.cancel_key_period(conn, period_id)
            after = None
        else:
            # now the console's: the sync from routes.yaml leaves it ended
            after = await kp_store.end_key_period(conn, period_id, now=now, actor=principal.actor)
        await _audit(
            conn,
            principal.actor,
            "key_period.end",
            {"id": period_id, "reason": body.reason, "before": dict(before), "cancelled": after is None},
        )
    return (
        (await _words(conn, [after], now))[0]
        if after
        else {"id": period_id, "cancelled": True, "status_zh": "已取消"}
    )
