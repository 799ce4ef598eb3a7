"""The board's other views for a long shift (issue 14 item 7): the history of 办结 alarms with
its search (报警历史), and the wall screen's summary (大屏). Reads through
alerting/queries_board.py; scope as everywhere (console/scope.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from alerting import queries_board
from console.auth import access
from console.board import board_item
from console.routes._common import (
    Conn,
    CurrentScope,
    DomainFilter,
    IdFilter,
    PageParams,
    Since,
    Until,
    check_range,
    page_of,
)
from console.routes.registry import SITE_READERS
from console.scope import Role
from console.words import DOMAIN_ZH

__all__ = ["router", "WALL_READERS"]

router = APIRouter(prefix="/api", tags=["board"])
#: who has a wall screen: the centre's and the townships' and departments' duty rooms
WALL_READERS = (Role.CENTRE, Role.ADMIN, Role.TOWNSHIP, Role.DEPARTMENT)
_SEVERITIES = ("red", "orange", "yellow", "blue")


@router.get("/board/history", summary="报警历史 (办结 alarms: search by site, device, dates, verdict; paging)",
            **access(*SITE_READERS))
async def history(
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    q: Annotated[str | None, Query(max_length=64, description="场所名称或编号、设备编号（包含即可）")] = None,
    device_id: Annotated[str | None, Query(max_length=128, description="设备编号（包含即可）")] = None,
    township_id: IdFilter = None,
    domain: DomainFilter = None,
    verdict: Literal["real", "false", "test", "fault"] | None = None,
    since: Since = None,
    until: Until = None,
) -> dict:
    check_range(since, until)
    f = queries_board.HistoryFilter(text=(q or "").strip() or None,
                                    device_id=(device_id or "").strip() or None,
                                    township_id=township_id, domain=domain, verdict=verdict,
                                    since=since, until=until)
    page = await queries_board.closed_history(conn, scope, f, limit=paging.page_size, offset=paging.offset)
    return page_of([board_item(r) for r in page.rows], page.total, paging)


@router.get("/wall", summary="大屏 (open alarms by colour and domain, newest red, township ranking)",
            **access(*WALL_READERS))
async def wall(conn: Conn, scope: CurrentScope) -> dict:
    s = await queries_board.wall_summary(conn, scope)
    counts = {sev: 0 for sev in _SEVERITIES}
    domains: dict[str, dict[str, int]] = {}
    for r in s.by_domain:
        counts[r["severity"]] = counts.get(r["severity"], 0) + r["n"]
        row = domains.setdefault(r["domain"], {sev: 0 for sev in _SEVERITIES})
        row[r["severity"]] = row.get(r["severity"], 0) + r["n"]
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "escalated": s.escalated,
        "domains": [{"domain": d, "domain_zh": DOMAIN_ZH.get(d, "其他领域"), "counts": c, "total": sum(c.values())}
                    for d, c in sorted(domains.items(), key=lambda kv: -sum(kv[1].values()))],
        "townships": [{"township_id": r["township_id"], "township_name": r["township_name"], "open": r["n"],
                       "red": r["red"]} for r in s.townships],
        "newest_red": [board_item(r) for r in s.newest_red],
    }
