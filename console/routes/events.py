"""Detector events (异常事件) with filters and paging."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from console.auth import access
from console.routes._common import (
    Conn,
    CurrentScope,
    DomainFilter,
    IdFilter,
    IdPath,
    PageParams,
    Since,
    Until,
    check_range,
    equal,
    fetch_page,
    in_range,
    in_township,
    not_found,
    page_of,
)
from console.routes.registry import SITE_READERS
from console.scope import Params
from hazmon.contracts import Severity

__all__ = ["router"]

router = APIRouter(prefix="/api/events", tags=["events"])

_COLUMNS = """e.id, e.kind, e.domain, e.severity, e.state, e.device_id, e.site_id, e.component, e.zone,
              e.starts_at, e.ends_at, e.detected_at, e.summary"""


@router.get("", summary="事件列表 (filters, paging)", **access(*SITE_READERS))
async def list_events(
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    state: Literal["firing", "resolved"] | None = None,
    severity: Annotated[list[Severity] | None, Query(description="repeat for several")] = None,
    domain: DomainFilter = None,
    site_id: IdFilter = None,
    device_id: IdFilter = None,
    township_id: IdFilter = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]+\.[a-z0-9_.]+$", max_length=64)] = None,
    since: Since = None,
    until: Until = None,
) -> dict:
    check_range(since, until)
    p = Params()
    where = [scope.events_sql(p)]
    if state:
        where.append(f"e.state = {p(state)}")
    if severity:
        where.append(f"e.severity = ANY({p([s.value for s in severity])}::text[])")
    where += equal(p, ("e.domain", domain), ("e.site_id", site_id), ("e.device_id", device_id))
    where += in_township(p, "e.site_id", township_id)
    where += equal(p, ("e.kind", kind))
    where += in_range(p, "e.starts_at", since, until)
    total, rows = await fetch_page(conn, p, paging, columns=_COLUMNS, order_by="e.starts_at DESC, e.id",
                                   source=f"events e WHERE {' AND '.join(where)}")
    return page_of([dict(r) for r in rows], total, paging)


@router.get("/{event_id}", summary="事件详情 (with evidence)", **access(*SITE_READERS))
async def get_event(event_id: IdPath, conn: Conn, scope: CurrentScope) -> dict:
    p = Params()
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, e.evidence, e.labels FROM events e WHERE e.id = {p(event_id)} AND {scope.events_sql(p)}",
        *p.values,
    )
    if row is None:
        raise not_found("event", event_id)
    return dict(row)
