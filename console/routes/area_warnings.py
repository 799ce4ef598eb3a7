"""区域预警 (三色, by 片/线/点): ``GET /api/area-warnings`` — the warnings in force with their reasons
and history (issue 15, contract 3; ``?all=true`` adds the lifted ones) — and ``POST /api/accidents``,
the centre's form entering a 生产安全事故 (alerting/accidents.py), counted at the next pass.

Who sees what: the centre and admin every warning; a township its 片 and the 点 in it; a
department the 线 of its matrix domains and the 点 where it regulates; a business and a grid
member the 点 of their own sites."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from alerting.accidents import ACCIDENT_LEVEL_ZH, NewAccident, add_accident
from alerting.area_warning import ACTION_ZH, LEVEL_ZH, SCOPE_ZH
from alerting.errors import InvalidAction
from alerting.store.area_warning import warnings_with_history
from console.auth import access
from console.routes._common import ID_PATTERN, Conn, CurrentPrincipal, CurrentScope
from console.scope import Role, Scope

__all__ = ["router", "READERS"]

router = APIRouter(tags=["area-warnings"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER)
_ACTOR_ZH = {"system:area_warning": "系统自动研判", "cli:warnings": "命令行研判"}
_SCOPE_NAME_ZH = {"township": "片区（镇街）", "industry": "行业领域", "site": "重点点位"}


def _sees(scope: Scope, w: dict[str, Any]) -> bool:
    if scope.unrestricted:
        return True
    if scope.role is Role.TOWNSHIP:
        return w["scope"] in ("township", "site") and w["township_id"] == scope.township_id
    if scope.role is Role.DEPARTMENT:
        mine = {d for d, _ind in scope.rules}
        return w["scope"] in ("industry", "site") and bool(mine & set(w["domains"]))
    if scope.role in (Role.BUSINESS, Role.GRID_MEMBER):
        return w["scope"] == "site" and w["key"] in scope.site_ids
    return False


def _item(w: dict[str, Any], towns: dict[str, str]) -> dict[str, Any]:
    return {
        "id": w["id"],
        "scope": w["scope"],
        "scope_zh": SCOPE_ZH[w["scope"]],
        "scope_name_zh": _SCOPE_NAME_ZH[w["scope"]],
        "key": w["key"],
        "name": w["name"],
        "level": w["level"],
        "level_zh": LEVEL_ZH[w["level"]],
        "reasons": w["reasons"],
        "since": w["since"],
        "level_since": w["level_since"],
        "evaluated_at": w["evaluated_at"],
        "lifted_at": w["lifted_at"],
        "township_id": w["township_id"],
        "township_name": towns.get(w["township_id"], ""),
        "history": [
            {
                "action": h["action"],
                "action_zh": ACTION_ZH[h["action"]],
                "at": h["at"],
                "from_level_zh": LEVEL_ZH.get(h["from_level"] or "", ""),
                "to_level_zh": LEVEL_ZH.get(h["to_level"] or "", ""),
                "reasons": h["reasons"],
                "actor_zh": _ACTOR_ZH.get(h["actor"], "值班人员"),
                "told": (h["detail"] or {}).get("told", []),
            }
            for h in w["history"]
        ],
    }


@router.get("/api/area-warnings", summary="区域预警（三色，片/线/点）", **access(*READERS))
async def area_warnings(
    conn: Conn, scope: CurrentScope, all: Annotated[bool, Query(description="含已解除的预警")] = False
) -> dict:
    rows = await warnings_with_history(conn, active_only=not all)
    towns = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM townships")}
    return {"items": [_item(w, towns) for w in rows if _sees(scope, w)]}


class AccidentBody(BaseModel):
    occurred_at: AwareDatetime
    township_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
    domain: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
    level: Literal["general", "larger", "major", "especially_major"]
    title: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
    site_id: Annotated[str | None, Field(pattern=ID_PATTERN, max_length=64)] = None
    deaths: Annotated[int, Field(ge=0, le=10_000)] = 0
    injuries: Annotated[int, Field(ge=0, le=10_000)] = 0
    description: Annotated[str, Field(max_length=1000)] = ""


@router.post("/api/accidents", summary="登记生产安全事故", **access(Role.CENTRE, Role.ADMIN))
async def post_accident(
    body: AccidentBody, request: Request, conn: Conn, principal: CurrentPrincipal
) -> dict:
    now: datetime = request.app.state.clock()
    try:
        aid = await add_accident(conn, NewAccident(**body.model_dump()), actor=principal.actor, now=now)
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    return {
        "id": aid,
        "level_zh": ACCIDENT_LEVEL_ZH[body.level],
        "message": "事故已登记，下次区域预警研判时计入",
    }
