"""隐患台账: the list (filters, paging), 重大隐患清零, a hazard with its timeline in words and the
steps the reader may take now, and 登记. The steps are console/routes/hazard_steps.py's; the
transitions alerting.ledger's. Unknown and out-of-scope hazards look the same (404), and an
attempt on another unit's hazard is audited (``hazard.refused``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from alerting import ledger, queries
from alerting.errors import InvalidAction
from alerting.hazard_overdue import SYSTEM_ACTOR
from alerting.queries_hazards import major_open
from alerting.templates import format_when
from console.actors import actor_words
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
from console.scope import Params, Principal, Role, Scope
from console.words import DOMAIN_ZH, has_latin

__all__ = ["router", "hazard_in_scope", "STEP_ROLES", "Text", "READERS", "FINDERS"]

router = APIRouter(prefix="/api/hazards", tags=["hazards"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER)
FINDERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.GRID_MEMBER)
_GOV = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
#: who may take each step (the page shows a step's form only where its role is here)
STEP_ROLES: dict[str, tuple[Role, ...]] = {
    "register": _GOV,
    "supervise": _GOV,
    "review": _GOV,
    "strike_off": _GOV,
    "rectify": (*_GOV, Role.BUSINESS, Role.GRID_MEMBER),
}
#: the phases each step may be taken in (alerting.ledger decides; this only chooses the forms)
_STEP_PHASES = {
    "register": ("found",),
    "supervise": ("found", "registered"),
    "rectify": ("registered", "supervised"),
    "review": ("rectified",),
    "strike_off": ("reviewed",),
}
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
Phase = Literal["found", "registered", "supervised", "rectified", "reviewed", "struck_off"]


async def _names(conn: Any) -> tuple[dict[str, str], dict[str, str]]:
    towns = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM townships")}
    deps = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM departments")}
    return towns, deps


def _hazard(row: Any, towns: dict[str, str], deps: dict[str, str], now: Any) -> dict:
    d = {
        **dict(row),
        "department_ids": list(row["department_ids"]),
        "attachment_ids": list(row["attachment_ids"] or ()),
    }
    d["phase_zh"] = ledger.PHASE_ZH.get(d["phase"], "其他")
    d["grade_zh"] = "重大隐患" if d["grade"] == "major" else "一般隐患"
    d["domain_zh"] = DOMAIN_ZH.get(d["domain"], "其他领域")
    d["township_name"] = towns.get(d["township_id"], "")
    d["department_names"] = [deps.get(x, "行业部门") for x in d["department_ids"]]
    d["overdue"] = bool(d["deadline"] and now > d["deadline"] and d["phase"] in ("registered", "supervised"))
    return d


@router.get("", summary="隐患台账 (filters, paging)", **access(*READERS))
async def list_hazards(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    phase: Phase | None = None,
    grade: Literal["general", "major"] | None = None,
    overdue: Annotated[bool | None, Query(description="逾期: past deadline, not rectified")] = None,
    township_id: IdFilter = None,
    site_id: IdFilter = None,
    domain: DomainFilter = None,
) -> dict:
    now = request.app.state.clock()
    f = queries.HazardFilter(
        phase=phase, grade=grade, township_id=township_id, site_id=site_id, domain=domain, overdue=overdue
    )
    page = await queries.list_hazards(conn, scope, f, now=now, limit=paging.page_size, offset=paging.offset)
    towns, deps = await _names(conn)
    return page_of([_hazard(r, towns, deps, now) for r in page.rows], page.total, paging)


@router.get(
    "/clearance", summary="重大隐患清零 (open major hazards per township and department)", **access(*READERS)
)
async def clearance(request: Request, conn: Conn, scope: CurrentScope) -> dict:
    rows = await major_open(conn, scope, request.app.state.clock())
    return {
        "items": [
            {**asdict(r), "unit_kind_zh": "镇街" if r.unit_kind == "township" else "行业部门"} for r in rows
        ],
        "total_open": await _open_major(conn, scope),
    }


async def _open_major(conn: Any, scope: Scope) -> int:
    return await queries.open_major_hazards(conn, scope)


async def hazard_in_scope(
    conn: Any, scope: Scope, hazard_id: str, principal: Principal | None = None, now: Any = None
) -> dict:
    """The hazard as ``scope`` sees it, or 404; an existing hazard outside the scope is audited."""
    row = await queries.hazard_in_scope(conn, scope, hazard_id)
    if row is None:
        if principal is not None and await queries.hazard_exists(conn, hazard_id):
            await conn.execute(
                """INSERT INTO console_audit (actor, action, target, detail)
                   VALUES ($1, 'hazard.refused', $2, $3::jsonb)""",
                principal.actor,
                hazard_id,
                json.dumps(
                    {"reason": "out_of_scope", "message": "该隐患不在您的查看范围内"}, ensure_ascii=False
                ),
            )
        raise not_found("hazard", hazard_id)
    towns, deps = await _names(conn)
    return _hazard(row, towns, deps, now)


async def _actor_names(conn: Any, actors: list[str]) -> dict[str, str]:
    """username → how the timeline names a console user: its display name, or (a name in
    letters, a bare account) its unit — the township, the department, the site."""
    names = sorted({a.split(":", 1)[1] for a in actors if ":" in a})
    rows = await conn.fetch(
        """SELECT u.username, u.display_name, coalesce(t.name, d.name, s.name, '') AS unit
           FROM console_users u LEFT JOIN townships t ON t.id = u.township_id
           LEFT JOIN departments d ON d.id = u.department_id LEFT JOIN sites s ON s.id = u.site_ids[1]
           WHERE u.username = ANY($1::text[])""",
        names,
    )
    out = {}
    for r in rows:
        name = r["display_name"] if r["display_name"] and not has_latin(r["display_name"]) else r["unit"]
        if name:
            out[r["username"]] = name
    return out


def _actor_zh(actor: str, users: dict[str, str]) -> str:
    if actor == SYSTEM_ACTOR:
        return "系统（逾期检查）"
    kind, _, who = actor.partition(":")
    if who in users or kind not in set(Role):
        return actor_words(actor, {}, users)
    return Role(kind).zh


def _when(iso: Any) -> str:
    try:
        return format_when(datetime.fromisoformat(str(iso)))
    except ValueError:
        return "未定"


def _transition_words(t: Any) -> str:
    d = dict(t.detail)
    if t.outcome == "rejected":
        return f"未执行：{d.get('problem') or '不符合当前状态'}"
    if t.action == "supervise":
        return (
            f"督办单位{d.get('supervisor', '')}，整改期限{_when(d.get('deadline'))}；"
            f"责任人{d.get('owner', '')}，措施{d.get('measures', '')}，资金{d.get('funds', '')}，"
            f"预案{d.get('plan', '')}"
        )
    if t.action == "rectify":
        n = len(d.get("attachment_ids") or [])
        return f"整改照片{n}张" if n else "未附照片"
    if t.action == "review":
        return "复查通过，待销号" if d.get("passed") else "复查不通过，退回整改"
    if t.action in ("overdue_notify", "overdue_escalate"):
        return f"已短信告知：{'、'.join(d.get('told') or []) or '无可达联系人'}"
    return ""


@router.get(
    "/{hazard_id}", summary="隐患详情 (timeline in words, the steps the reader may take)", **access(*READERS)
)
async def get_hazard(
    hazard_id: IdPath, request: Request, conn: Conn, scope: CurrentScope, principal: CurrentPrincipal
) -> dict:
    hazard = await hazard_in_scope(conn, scope, hazard_id, principal, request.app.state.clock())
    timeline = await ledger.hazard_timeline(conn, hazard_id)
    users = await _actor_names(conn, [t.actor for t in timeline])
    hazard["transitions"] = [
        {
            "id": t.id,
            "action": t.action,
            "action_zh": ledger.ACTION_ZH.get(t.action, "操作"),
            "from_phase": t.from_phase,
            "to_phase": t.to_phase,
            "to_phase_zh": ledger.PHASE_ZH.get(t.to_phase, ""),
            "outcome": t.outcome,
            "actor": t.actor,
            "actor_zh": _actor_zh(t.actor, users),
            "at": t.at,
            "reason": t.reason,
            "detail": dict(t.detail),
            "words": _transition_words(t),
        }
        for t in timeline
    ]
    alert = None
    if hazard["source_alert_id"]:
        alert = await queries.source_alert(conn, scope, hazard["source_alert_id"])
    hazard["source_alert"] = dict(alert) if alert else None
    hazard["can"] = [
        s for s, roles in STEP_ROLES.items() if scope.role in roles and hazard["phase"] in _STEP_PHASES[s]
    ]
    return hazard


class FindBody(BaseModel):
    site_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
    domain: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
    title: Annotated[Text, Field(min_length=1, max_length=200)]
    description: Text = ""
    grade: Literal["general", "major"] = "general"
    source_alert_id: Annotated[str | None, Field(pattern=ID_PATTERN, max_length=128)] = None
    #: 登记: put it on the ledger at once (排查发现 then 建立台账)
    on_ledger: bool = False


@router.post("", status_code=201, summary="排查发现 / 登记 (put a hazard on record)", **access(*FINDERS))
async def find(
    body: FindBody, request: Request, conn: Conn, scope: CurrentScope, principal: CurrentPrincipal
) -> dict:
    p = Params()
    if not await conn.fetchval(
        f"SELECT 1 FROM sites s WHERE s.id = {p(body.site_id)} AND {scope.sites_sql(p)}", *p.values
    ):
        raise HTTPException(422, f"site_id: site '{body.site_id}' not found")
    if not await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", body.domain):
        raise HTTPException(422, f"domain: unknown domain '{body.domain}'")
    if scope.role is Role.DEPARTMENT and body.domain not in (scope.domains or ()):
        raise HTTPException(422, f"domain: '{body.domain}' is not one of your department's domains")
    now = request.app.state.clock()
    try:
        async with conn.transaction():
            h = await ledger.find_hazard(
                conn,
                actor=principal.actor,
                now=now,
                site_id=body.site_id,
                domain=body.domain,
                title=body.title,
                description=body.description,
                grade=body.grade,
                source_alert_id=body.source_alert_id,
            )
            if body.on_ledger and h.phase == "found":
                await ledger.register_hazard(conn, h.id, actor=principal.actor, now=now, reason="登记入账")
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    return await hazard_in_scope(conn, scope, h.id, now=now)
