"""现场 (issue 14): what the phone pages (console/static/field.js) need beside the alert actions —
到场签到 at an alarm with the browser's position when the person granted it, and the one check
every field request starts with: is this alarm the caller's to see (a field user is told it is
not, and that is audited; anyone else gets the 404 that tells nothing).

A work order's 到场签到 is the work orders' own (/api/workorders/{id}/arrive); a 维保单位's at a
困人 alarm is 维保到场 (POST /api/alerts/{id}/arrival, which stores its position here too)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from alerting import lifecycle, queries
from console.auth import access
from console.routes._common import Conn, CurrentPrincipal, CurrentScope, IdPath, not_found
from console.scope import Principal, Role, Scope

__all__ = ["router", "Position", "visible_alert", "store_checkin", "NOT_YOURS"]

router = APIRouter(prefix="/api/alerts", tags=["field"])

#: who checks in on site: everyone who responds to an alarm (the vendor does not)
CHECKIN_ROLES = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER,
                 Role.MAINTAINER)
NOT_YOURS = {Role.GRID_MEMBER: "无权查看：该报警不在您负责的村（社区）",
             Role.MAINTAINER: "无权查看：该报警不是您维保的电梯"}


class Position(BaseModel):
    """The browser's geolocation (navigator.geolocation), all three or none: none when the person
    refused it or the phone had no fix."""

    lat: Annotated[float | None, Field(ge=-90, le=90)] = None
    lon: Annotated[float | None, Field(ge=-180, le=180)] = None
    accuracy_m: Annotated[float | None, Field(ge=0, le=100_000)] = None

    def located(self) -> bool:
        return self.lat is not None and self.lon is not None


class CheckinBody(Position):
    note: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] = ""


async def visible_alert(conn: Any, scope: Scope, principal: Principal, alert_id: str, *, action: str,
                        now: datetime) -> Any:
    """The alert row when ``principal`` may see it; else 403 for a field user (audited as
    ``<action>.refused``, e.g. a link forwarded to the wrong grid member) or 404."""
    row = await queries.alert_detail(conn, scope, alert_id)
    if row is not None:
        return row
    if await queries.alert_exists(conn, alert_id):
        message = NOT_YOURS.get(scope.role, "未找到该报警（不存在或不在您的查看范围内）")
        await conn.execute(
            "INSERT INTO console_audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
            now, principal.actor, f"{action}.refused", alert_id,
            json.dumps({"reason": "out_of_scope", "message": message}, ensure_ascii=False))
        if scope.role in NOT_YOURS:
            raise HTTPException(403, message)
    raise not_found("alert", alert_id)


def _position_words(pos: Position) -> str:
    if not pos.located():
        return "未获取定位（未授权或无信号）"
    return f"已定位，精度约{round(pos.accuracy_m)}米" if pos.accuracy_m is not None else "已定位"


async def store_checkin(conn: Any, alert_id: str, actor: str, now: datetime, kind: str, pos: Position
                        ) -> dict[str, Any]:
    """The position of a 到场签到 or 维保到场 (lat/lon/accuracy NULL when not granted)."""
    located = pos.located()
    row = await conn.fetchrow(
        """INSERT INTO field_checkins (alert_id, actor, at, kind, lat, lon, accuracy_m)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, at, lat, lon, accuracy_m""",
        alert_id, actor, now, kind, pos.lat if located else None, pos.lon if located else None,
        pos.accuracy_m if located else None)
    return {**dict(row), "located": located, "position_zh": _position_words(pos)}


@router.post("/{alert_id}/checkin", summary="到场签到 (position when granted; 处置 starts if dispatched)",
             **access(*CHECKIN_ROLES))
async def checkin(alert_id: IdPath, body: CheckinBody, request: Request, conn: Conn, scope: CurrentScope,
                  principal: CurrentPrincipal) -> dict:
    now = request.app.state.clock()
    row = await visible_alert(conn, scope, principal, alert_id, action="checkin", now=now)
    if row["phase"] == "closed":
        raise HTTPException(409, "报警已办结，无需签到")
    async with conn.transaction():
        out = await store_checkin(conn, alert_id, principal.actor, now, "checkin", body)
        note = "到场签到：" + out["position_zh"] + (f"；{body.note}" if body.note else "")
        handled = False
        if row["phase"] == "dispatched":  # someone is on site: 处置 (the 督办 ladder's unhandled timers stop)
            result = await lifecycle.start_handling(conn, alert_id, actor=principal.actor, now=now, note=note)
            handled = result.applied
        await conn.execute(
            "INSERT INTO console_audit (at, actor, action, target, detail) VALUES ($1, $2, 'field.checkin', $3,"
            " $4::jsonb)", now, principal.actor, alert_id,
            json.dumps({"checkin_id": out["id"], "accuracy_m": out["accuracy_m"], "located": out["located"]}))
    return {"checkin_id": out["id"], "at": out["at"], "located": out["located"], "accuracy_m": out["accuracy_m"],
            "handling": handled, "message": "已签到（" + out["position_zh"] + "）"}


@router.get("/{alert_id}/checkins", summary="到场签到记录 of an alert", **access(*CHECKIN_ROLES))
async def checkins(alert_id: IdPath, request: Request, conn: Conn, scope: CurrentScope,
                   principal: CurrentPrincipal) -> dict:
    await visible_alert(conn, scope, principal, alert_id, action="checkin", now=request.app.state.clock())
    rows = await conn.fetch(
        "SELECT id, actor, at, kind, lat, lon, accuracy_m FROM field_checkins WHERE alert_id = $1 ORDER BY at, id",
        alert_id)
    return {"items": [{**dict(r), "kind_zh": "维保到场" if r["kind"] == "arrival" else "到场签到"} for r in rows]}
