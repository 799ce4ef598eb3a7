"""The official 通报's files for a period (alerting/bulletin): DOCX, PDF with charts, XLSX, and
the composed text the page previews — with console/routes/kpis.py's period and role scoping (a
township reads its township's rows, a department its department and domains; the district total,
the site rows and the vendor league are the centre's). A period not begun or without data is
refused in Chinese (422) and no file is made."""

from __future__ import annotations

import asyncio
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from alerting.bulletin import MEDIA_TYPES, compose, load_targets, render
from alerting.bulletin.model import BulletinDoc
from alerting.errors import InvalidAction
from console.auth import access
from console.routes._common import Conn, CurrentScope
from console.routes.kpis import READERS, When, period_bulletin, scoped_bulletin

__all__ = ["router"]

router = APIRouter(prefix="/api/bulletin", tags=["bulletin"])


async def _doc(request: Request, conn: Conn, scope: CurrentScope, when: When) -> BulletinDoc:
    b = scoped_bulletin(await period_bulletin(request, conn, when), scope)
    assert b is not None
    try:
        return compose(b, load_targets())
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/outline", summary="通报: the composed text (title, overview, 存在问题, 下一步工作)", **access(*READERS))
async def outline(request: Request, conn: Conn, scope: CurrentScope, when: When) -> dict:
    doc = await _doc(request, conn, scope, when)
    return {"title": doc.title, "period": doc.period, "opening": doc.opening, "slug": doc.slug,
            "sections": [{"heading": s.heading, "paragraphs": list(s.paragraphs),
                          "tables": [t.title for t in s.tables]} for s in doc.sections]}


@router.get("/files/{fmt}", summary="通报 as DOCX, PDF or XLSX", response_class=Response, **access(*READERS))
async def bulletin_file(request: Request, conn: Conn, scope: CurrentScope, when: When,
                        fmt: Literal["docx", "pdf", "xlsx"]) -> Response:
    doc = await _doc(request, conn, scope, when)
    try:
        data = await asyncio.to_thread(render, doc, fmt)
    except InvalidAction as exc:  # no CJK font on this machine
        raise HTTPException(503, str(exc)) from None
    name = f"{doc.slug}.{fmt}"
    return Response(data, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f"attachment; filename={name}; filename*=UTF-8''{quote(doc.title)}.{fmt}"})
