"""现场页 (issue 14): what the phone page of a grid member, a business or a 维保单位 shows —
its open alarms in words (site, address, 镇街/村, what happened) and one alarm's card: where it
is, the latest readings, what to do (the words the SMS templates use: alerting/templates/words.py),
the check-ins and photos so far and what the reader may do next. The actions themselves are the
alert's (确认, 反馈, 维保到场), the check-in's (console/routes/field.py) and the work orders'."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from alerting import queries
from alerting.store.arrival import arrival_of
from alerting.templates.words import what_happened, what_to_do
from console import words
from console.auth import access
from console.board import board_item
from console.routes._common import Conn, CurrentPrincipal, CurrentScope, IdPath
from console.routes.field import CHECKIN_ROLES, visible_alert
from console.scope import Role

__all__ = ["router"]

router = APIRouter(prefix="/api/field", tags=["field"])

_WHERE = """SELECT s.address, coalesce(v.name, '') AS village_name,
                   coalesce(d.location, '') AS device_location, coalesce(dm.name_zh, '') AS domain_zh
            FROM sites s LEFT JOIN villages v ON v.id = s.village_id
            LEFT JOIN devices d ON d.id = $2 LEFT JOIN domains dm ON dm.name = d.domain
            WHERE s.id = $1"""


def _lift_phone(request: Request) -> str:
    return str(request.app.state.settings.lift.emergency_phone)


async def _where(conn: Any, site_id: str, device_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(_WHERE, site_id, device_id)
    return dict(row) if row else {"address": "", "village_name": "", "device_location": "", "domain_zh": ""}


@router.get("/alerts", summary="现场页: the reader's open alarms in words", **access(*CHECKIN_ROLES))
async def field_alerts(conn: Conn, scope: CurrentScope) -> dict:
    page = await queries.list_alerts(conn, scope, queries.AlertFilter(open=True), limit=100, offset=0)
    items = []
    for r in page.rows:
        a = board_item(r)
        where = await _where(conn, a["site_id"], a["device_id"])
        items.append(
            {
                k: a[k]
                for k in (
                    "id",
                    "severity",
                    "phase",
                    "state",
                    "starts_at",
                    "acked_at",
                    "site_name",
                    "township_name",
                    "domain",
                    "summary_zh",
                    "version",
                )
            }
            | {
                "address": where["address"],
                "village_name": where["village_name"],
                "phase_zh": words.PHASE_ZH.get(a["phase"], "处理中"),
            }
        )
    return {"items": items, "total": page.total}


@router.get(
    "/alerts/{alert_id}",
    summary="现场页: one alarm's card (where, readings, what to do)",
    **access(*CHECKIN_ROLES),
)
async def field_alert(
    alert_id: IdPath, request: Request, conn: Conn, scope: CurrentScope, principal: CurrentPrincipal
) -> dict:
    now = request.app.state.clock()
    a = board_item(await visible_alert(conn, scope, principal, alert_id, action="alert", now=now))
    where = await _where(conn, a["site_id"], a["device_id"])
    latest = await conn.fetch(
        "SELECT metric, ts, value, unit FROM latest_readings WHERE device_id = $1 ORDER BY metric",
        a["device_id"],
    )
    checkins = await conn.fetch(
        "SELECT kind, at, accuracy_m, lat IS NOT NULL AS located FROM field_checkins WHERE alert_id = $1"
        " ORDER BY at, id",
        alert_id,
    )
    photos = await conn.fetch(
        "SELECT id, uploaded_at FROM attachments WHERE alert_id = $1 ORDER BY uploaded_at, id", alert_id
    )
    feedback = await queries.latest_feedback(conn, alert_id)
    timer = await arrival_of(conn, alert_id)
    kind = str(a.get("kind") or "")
    return {
        "id": a["id"],
        "version": a["version"],
        "severity": a["severity"],
        "phase": a["phase"],
        "phase_zh": words.PHASE_ZH.get(a["phase"], "处理中"),
        "state": a["state"],
        "verdict": a["verdict"],
        "starts_at": a["starts_at"],
        "acked_at": a["acked_at"],
        "closed_at": a["closed_at"],
        "site_name": a["site_name"],
        "township_name": a["township_name"],
        **where,
        "what_zh": what_happened(kind, a.get("summary_zh") or ""),
        "summary_zh": a["summary_zh"],
        "what_to_do": "请" + what_to_do(kind, _lift_phone(request)),
        "readings": [
            {
                "metric_zh": words.metric_words(r["metric"], r["unit"]),
                "value": r["value"],
                "unit": r["unit"],
                "ts": r["ts"],
            }
            for r in latest
        ],
        "checkins": [
            {
                "kind_zh": "维保到场" if c["kind"] == "arrival" else "到场签到",
                "at": c["at"],
                "accuracy_m": c["accuracy_m"],
                "located": c["located"],
            }
            for c in checkins
        ],
        "photos": [
            {"url": f"/api/attachments/{p['id']}", "attachment_id": p["id"], "at": p["uploaded_at"]}
            for p in photos
        ],
        "feedback": dict(feedback) if feedback else None,
        # 维保到场计时: a 维保单位 records its own arrival at a 困人 alarm (POST …/arrival)
        "arrival": {"due_at": timer["due_at"], "arrived_at": timer["arrived_at"]} if timer else None,
        "may_arrive": bool(
            timer and timer["arrived_at"] is None and scope.role in (Role.MAINTAINER, Role.CENTRE, Role.ADMIN)
        ),
        "may_feedback": a["phase"] in ("dispatched", "handling"),
    }
