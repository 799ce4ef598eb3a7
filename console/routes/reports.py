"""维保/测试 报备 (issue 14): the centre files one for any site; a business (企业) or a 维保单位
files one for its own devices only — whose they are is the caller's scope (console/scope.py),
checked here on the server; a refused device is audited (``report.refused``) and answered 404 in
Chinese, as an id outside one's scope always is. The 报备 itself is alerting/report.py's."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field

from alerting import report, silence
from alerting.errors import InvalidAction, NotFound
from alerting.matrix import normalize_phone
from alerting.store import reports as store
from console.actors import actor_words, user_names
from console.auth import access
from console.routes._common import ID_PATTERN, Conn, CurrentPrincipal, CurrentScope, IdPath
from console.scope import Params, Principal, Role, Scope
from console.words import DOMAIN_ZH, matcher_words

__all__ = ["router"]

router = APIRouter(prefix="/api/reports", tags=["reports"])
FILERS = (Role.CENTRE, Role.ADMIN, Role.BUSINESS, Role.MAINTAINER)
SELF_SERVICE = frozenset({Role.BUSINESS, Role.MAINTAINER})
Ident = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
_STATUS_ZH = {"pending": "未开始", "active": "生效中", "expired": "已结束"}


def _limits(request: Request) -> report.ReportLimits:
    """The deployment's bounds (``app.state.report_limits``, else 8 h for self-service)."""
    return getattr(request.app.state, "report_limits", None) or report.ReportLimits()


class ReportBody(BaseModel):
    site_id: Ident
    device_ids: Annotated[list[Ident], Field(max_length=50)] = []
    kind: Literal["维保", "测试"]
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    reason: Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ReportEndBody(BaseModel):
    reason: Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


async def _devices(conn: Any, scope: Scope, site_id: str | None = None) -> list[dict]:
    """The devices the caller may file a 报备 for (its scope), with their site."""
    p = Params()
    where = scope.devices_sql(p)
    if site_id is not None:
        where += f" AND d.site_id = {p(site_id)}"
    rows = await conn.fetch(
        f"""SELECT d.id, d.model, d.domain, d.site_id, s.name AS site_name FROM devices d
            JOIN sites s ON s.id = d.site_id WHERE {where} ORDER BY s.id, d.domain, d.id LIMIT 2000""",
        *p.values,
    )
    return [dict(r) for r in rows]


async def _refuse(conn: Any, request: Request, principal: Principal, body: ReportBody, problem: str) -> None:
    await conn.execute(
        "INSERT INTO console_audit (at, actor, action, target, detail)"
        " VALUES ($1, $2, 'report.refused', $3, $4::jsonb)",
        request.app.state.clock(),
        principal.actor,
        body.site_id,
        json.dumps(
            {"site_id": body.site_id, "device_ids": body.device_ids, "kind": body.kind, "problem": problem},
            ensure_ascii=False,
        ),
    )


async def _notify(conn: Any, principal: Principal, site_id: str) -> tuple[str, str | None]:
    """Whom the end-of-window reminder goes to: the filer's own mobile, else the site's first
    contact with a mobile."""
    own = normalize_phone(principal.phone)
    if own:
        return principal.display_name or principal.username, own
    for r in await conn.fetch(
        "SELECT name, phone FROM site_contacts WHERE site_id=$1 ORDER BY phone", site_id
    ):
        if phone := normalize_phone(r["phone"]):
            return r["name"], phone
    return "", None


def _out(r: Any, now: Any, held: list[Any], users: dict[str, str]) -> dict:
    s = silence.Silence.from_row(r)
    shown = [m for m in s.matchers if m.name not in ("site_id", "kind")]  # the kind: keeps_fire_alarm
    return {
        "id": s.id,
        "kind": r["report_kind"],
        "site_id": r["site_id"],
        "site_name": r["site_name"] or "",
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
        "expired_at": s.expired_at,
        "reason": s.reason,
        "status": s.status(now),
        "status_zh": _STATUS_ZH[s.status(now)],
        "devices_zh": [matcher_words(m.to_json()) for m in shown],
        "keeps_fire_alarm": any(m.name == "kind" and m.value == report.FIRE_ALARM for m in s.matchers),
        "created_by_zh": actor_words(s.created_by, {}, users),
        "held": len(held),
        # what it held, as the reminder SMS names them: 消防系统测试报警（仍在报警）
        "held_zh": [f"{report.held_words(a['kind'])}（{'已恢复' if a['state'] == 'resolved' else '仍在报警'}）"
                    for a in held[:20]],
        "reminded_at": r["reminded_at"],
    }


@router.get("/devices", summary="可报备的设备（本单位的设备）", **access(*FILERS))
async def devices(conn: Conn, scope: CurrentScope) -> list[dict]:
    return [{**d, "domain_zh": DOMAIN_ZH.get(d["domain"], "其他领域")} for d in await _devices(conn, scope)]


@router.get("", summary="报备列表（中心：全部；企业、维保单位：本单位的）", **access(*FILERS))
async def list_reports(
    request: Request, conn: Conn, principal: CurrentPrincipal, scope: CurrentScope
) -> list[dict]:
    now = request.app.state.clock()
    mine = principal.role in SELF_SERVICE
    by = principal.actor if principal.role is Role.MAINTAINER else None
    sites = sorted(scope.site_ids) if principal.role is Role.BUSINESS else None
    rows = (
        await store.report_rows(conn, created_by=by, site_ids=sites)
        if mine
        else await store.report_rows(conn, created_by=None, site_ids=None)
    )
    users = await user_names(conn, [r["created_by"] for r in rows])
    return [_out(r, now, await store.held_alarms(conn, r["id"]), users) for r in rows]


@router.post("", status_code=201, summary="新建维保/测试报备", **access(*FILERS))
async def create(
    body: ReportBody, request: Request, conn: Conn, principal: CurrentPrincipal, scope: CurrentScope
) -> dict:
    now = request.app.state.clock()
    own = principal.role in SELF_SERVICE
    allowed = {d["id"] for d in await _devices(conn, scope, body.site_id)}
    if own and not allowed:
        await _refuse(conn, request, principal, body, "site")
        raise HTTPException(404, "该场所不属于本单位，不能报备")
    if not own and not await conn.fetchval("SELECT 1 FROM sites WHERE id=$1", body.site_id):
        raise HTTPException(404, "场所不存在")
    others = sorted(set(body.device_ids) - allowed)
    if others:
        if own:
            await _refuse(conn, request, principal, body, "device")
        raise HTTPException(404, f"设备{'、'.join(others)}不属于本单位或不在该场所，不能报备")
    name, phone = await _notify(conn, principal, body.site_id)
    try:
        r = await report.create_report(
            conn,
            actor=principal.actor,
            now=now,
            site_id=body.site_id,
            device_ids=body.device_ids,
            kind=body.kind,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            reason=body.reason,
            self_service=own,
            notify_name=name,
            notify_phone=phone,
            limits=_limits(request),
        )
    except InvalidAction as exc:
        if own:
            await _refuse(conn, request, principal, body, str(exc))
        raise HTTPException(422, str(exc)) from None
    rows = await store.report_rows(conn, created_by=principal.actor, site_ids=[body.site_id])
    row = next(x for x in rows if x["id"] == r.id)
    return _out(row, now, [], await user_names(conn, [principal.actor]))


@router.post("/{silence_id}/end", summary="提前结束报备", **access(*FILERS))
async def end(
    silence_id: IdPath, body: ReportEndBody, request: Request, conn: Conn, principal: CurrentPrincipal
) -> dict:
    now = request.app.state.clock()
    mine = None if principal.role not in SELF_SERVICE else principal.actor
    rows = [x for x in await store.report_rows(conn, created_by=mine, site_ids=None) if x["id"] == silence_id]
    if not rows:
        raise HTTPException(404, "报备不存在，或不是本单位的报备")
    try:
        await silence.expire_silence(conn, silence_id, actor=principal.actor, now=now, reason=body.reason)
    except NotFound:
        raise HTTPException(404, "报备不存在") from None
    row = next(
        x for x in await store.report_rows(conn, created_by=None, site_ids=None) if x["id"] == silence_id
    )
    held = await store.held_alarms(conn, silence_id)
    return _out(row, now, held, await user_names(conn, [row["created_by"]]))
