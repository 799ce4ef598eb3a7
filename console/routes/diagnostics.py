"""Vendor ingest diagnostics (接入诊断): recent rejected payloads with reasons, per vendor.

A vendor sees only its own rejections; the centre sees all. The raw bytes are returned as a
short, escaped preview so a vendor engineer can recognise the payload."""

from __future__ import annotations

from fastapi import APIRouter

from console.auth import access
from console.routes._common import (
    Conn,
    CurrentScope,
    IdFilter,
    PageParams,
    Since,
    Until,
    check_range,
    equal,
    fetch_page,
    in_range,
    page_of,
)
from console.scope import Params, Role
from console.words import DEADLETTER_ZH
from hazmon.contracts import DeadLetterReason

__all__ = ["router"]

router = APIRouter(prefix="/api/diagnostics", tags=["diagnostics"])
DIAG_READERS = (Role.CENTRE, Role.ADMIN, Role.VENDOR)
PREVIEW_BYTES = 200


@router.get("/deadletters", summary="被拒报文 (recent rejections with reasons)", **access(*DIAG_READERS))
async def deadletters(
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    vendor: IdFilter = None,
    device_id: IdFilter = None,
    reason: DeadLetterReason | None = None,
    since: Since = None,
    until: Until = None,
) -> dict:
    check_range(since, until)
    p = Params()
    where = [scope.vendors_sql(p, "dl.vendor"), *equal(p, ("dl.vendor", vendor), ("dl.device_id", device_id),
                                                       ("dl.reason", reason.value if reason else None))]
    where += in_range(p, "dl.received_at", since, until)
    total, rows = await fetch_page(
        conn, p, paging, source=f"deadletters dl WHERE {' AND '.join(where)}",
        order_by="dl.received_at DESC, dl.id",
        columns=f"""dl.id, dl.stage, dl.source, dl.vendor, dl.device_id, dl.reason, dl.detail, dl.received_at,
                    (SELECT v.name FROM vendors v WHERE v.id = dl.vendor) AS vendor_name,
                    substring(dl.raw from 1 for {PREVIEW_BYTES}) AS raw_head, length(dl.raw) AS raw_bytes""",
    )
    items = []
    for r in rows:
        d = dict(r)
        d["raw_preview"] = bytes(d.pop("raw_head") or b"").decode("utf-8", errors="backslashreplace")
        d["reason_zh"] = DEADLETTER_ZH.get(d["reason"], "其他原因")
        items.append(d)
    return page_of(items, total, paging)


@router.get("/summary", summary="拒收统计 (counts per vendor and reason)", **access(*DIAG_READERS))
async def summary(conn: Conn, scope: CurrentScope, since: Since = None, until: Until = None) -> dict:
    check_range(since, until)
    p = Params()
    where = [scope.vendors_sql(p, "dl.vendor"), *in_range(p, "dl.received_at", since, until)]
    rows = await conn.fetch(
        f"""SELECT dl.vendor, (SELECT v.name FROM vendors v WHERE v.id = dl.vendor) AS vendor_name, dl.reason,
                   count(*) AS n, max(dl.received_at) AS last_at
            FROM deadletters dl WHERE {' AND '.join(where)} GROUP BY dl.vendor, dl.reason ORDER BY dl.vendor, n DESC""",
        *p.values,
    )
    return {"items": [{**dict(r), "reason_zh": DEADLETTER_ZH.get(r["reason"], "其他原因")} for r in rows]}
