"""现场照片 over HTTP (issue 14): POST /api/attachments (multipart: ``file`` and ``alert_id`` or
``hazard_id``), GET /api/attachments/{id} (the re-encoded JPEG, to those who may see its alert or
hazard) and GET /api/alerts/{id}/attachments. The rules are console/attachments.py's.

The body is read here with its own cap before any parsing, so neither a declared nor an
undeclared (chunked) 1 GB upload is spooled to disk; a body cut short (the phone lost its signal)
or without its closing boundary is refused as incomplete. Every refusal — no session, another
village's alarm, too large, not an image, incomplete — is a Chinese error and an
``attachment.refused`` audit row, and nothing is stored."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from alerting import queries
from console.attachments import MAX_BYTES, AttachmentRefused, audit_refusal, process_image, store_attachment
from console.auth import access, authenticate
from console.pool import acquire
from console.refusals import problem_zh
from console.routes._common import ID_PATTERN, Conn, CurrentPrincipal, CurrentScope, IdPath
from console.routes.field import NOT_YOURS, visible_alert
from console.scope import Principal, Role, Scope, build_scope
from hazmon.logs import kv

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["attachments"])

UPLOADERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER,
             Role.MAINTAINER)
#: multipart headers and the alert id around the file
_OVERHEAD = 64 * 1024
_ID = re.compile(ID_PATTERN)
_NOT_FOUND = "未找到该照片（不存在或不在您的查看范围内）"


_GUARD = access(*UPLOADERS)["dependencies"][0].dependency


async def _uploader(request: Request) -> Principal:
    """access(*UPLOADERS), with the refusal of a forged or expired session (or a CSRF failure)
    audited before it answers."""
    principal: Principal | None = None
    try:
        principal = await authenticate(request)
        guarded: Principal = await _GUARD(request, principal)
        return guarded
    except HTTPException as exc:
        async with acquire(request.app) as conn:
            refusal = AttachmentRefused(exc.status_code, problem_zh(str(exc.detail)),
                                        "role" if principal else "session")
            await audit_refusal(conn, principal.actor if principal else "anonymous", "", refusal,
                                now=request.app.state.clock(), path=request.url.path)
        raise


Uploader = Annotated[Principal, Depends(_uploader)]
#: the multipart body, declared for the spec (the route reads it itself: its own cap, its own refusals)
_UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "照片（JPEG、PNG、WEBP）"},
                   "alert_id": {"type": "string", "pattern": ID_PATTERN},
                   "hazard_id": {"type": "string", "pattern": ID_PATTERN}}}}}}
_UPLOAD_ACCESS: dict[str, Any] = {"dependencies": [Depends(_uploader)],
                                  "openapi_extra": {"x-roles": sorted(r.value for r in UPLOADERS),
                                                    "requestBody": _UPLOAD_BODY}}


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BYTES + _OVERHEAD:
        raise AttachmentRefused(413, f"照片太大（{int(declared) / 1048576:.1f}MB），单张不能超过10MB", "too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BYTES + _OVERHEAD:
                raise AttachmentRefused(413, "照片太大，单张不能超过10MB", "too_large")
            chunks.append(chunk)
    except ClientDisconnect:
        raise AttachmentRefused(400, "上传中断：照片未传完，请在信号良好时重新上传", "interrupted") from None
    return b"".join(chunks)


async def _form(request: Request) -> tuple[bytes, str | None, str | None]:
    """(the file's bytes, alert_id, hazard_id) of a whole multipart body."""
    ctype = request.headers.get("content-type", "")
    m = re.search(r"boundary=\"?([^\";]+)\"?", ctype)
    if not ctype.startswith("multipart/form-data") or not m:
        raise AttachmentRefused(415, "请以表单方式上传照片", "not_multipart")
    body = await _read_body(request)
    if b"--" + m[1].encode("latin-1") + b"--" not in body[-(len(m[1]) + 64):]:
        raise AttachmentRefused(400, "上传不完整：照片未传完，请重新上传", "incomplete")
    request._body = body  # the form parser reads the buffered body (Request.stream)
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=1024)
    except HTTPException:
        raise AttachmentRefused(400, "上传内容格式错误，请重新选择照片上传", "bad_form") from None
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise AttachmentRefused(422, "请选择要上传的照片", "no_file")
    ids = []
    for key in ("alert_id", "hazard_id"):
        v = form.get(key)
        if v is not None and not (isinstance(v, str) and _ID.fullmatch(v)):
            raise AttachmentRefused(422, "报警或隐患编号格式错误", "bad_id")
        ids.append(v or None)
    if (ids[0] is None) == (ids[1] is None):
        raise AttachmentRefused(422, "请指明照片所属的报警或隐患（二选一）", "no_owner")
    return await file.read(), ids[0], ids[1]


async def _hazard_visible(conn: Any, scope: Scope, hazard_id: str) -> bool:
    return scope.role is not Role.MAINTAINER and await queries.hazard_in_scope(conn, scope, hazard_id) is not None


@router.post("/api/attachments", summary="上传现场照片 (multipart: file + alert_id or hazard_id)",
             status_code=201, **_UPLOAD_ACCESS)
async def upload(request: Request, principal: Uploader) -> Any:
    now = request.app.state.clock()
    target = ""
    try:
        raw, alert_id, hazard_id = await _form(request)
        target = alert_id or hazard_id or ""
        async with acquire(request.app) as conn:
            scope = await build_scope(conn, principal)
            if alert_id:
                try:
                    await visible_alert(conn, scope, principal, alert_id, action="attachment", now=now)
                except HTTPException as exc:  # audited there already: say it for an upload
                    words = "无权上传：" + NOT_YOURS[scope.role].split("：", 1)[1] if exc.status_code == 403 else ""
                    raise HTTPException(exc.status_code, words or exc.detail) from None
            elif hazard_id and not await _hazard_visible(conn, scope, hazard_id):
                raise AttachmentRefused(404, "未找到该隐患（不存在或不在您的查看范围内）", "out_of_scope")
        processed = await asyncio.to_thread(process_image, raw)
        async with acquire(request.app) as conn:
            out = await store_attachment(conn, processed, alert_id=alert_id, hazard_id=hazard_id,
                                         actor=principal.actor, now=now)
    except AttachmentRefused as refusal:
        log.info("upload refused %s", kv(actor=principal.actor, reason=refusal.reason, target=target))
        async with acquire(request.app) as conn:
            await audit_refusal(conn, principal.actor, target, refusal, now=now)
        raise
    return JSONResponse(out, status_code=201)


async def _readable(conn: Any, scope: Scope, principal: Principal, att: str, now: Any) -> Any:
    row = await conn.fetchrow(
        "SELECT id, alert_id, hazard_id, sha256, bytes, data, uploaded_at FROM attachments WHERE id = $1", att)
    ok = row is not None and (
        (row["alert_id"] and await queries.alert_detail(conn, scope, row["alert_id"]) is not None)
        or (row["hazard_id"] and await _hazard_visible(conn, scope, row["hazard_id"])))
    if not ok:
        refusal = AttachmentRefused(404, _NOT_FOUND, "unknown" if row is None else "out_of_scope")
        await audit_refusal(conn, principal.actor, att, refusal, now=now)
        raise refusal
    return row


@router.get("/api/attachments/{attachment_id}", summary="现场照片 (image/jpeg)", response_class=Response,
            **access(*UPLOADERS))
async def get_attachment(attachment_id: IdPath, request: Request, conn: Conn, scope: CurrentScope,
                         principal: CurrentPrincipal) -> Response:
    row = await _readable(conn, scope, principal, attachment_id, request.app.state.clock())
    return Response(bytes(row["data"]), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600", "ETag": f'"{row["sha256"]}"',
                             "X-Content-Type-Options": "nosniff"})


@router.get("/api/alerts/{alert_id}/attachments", summary="现场照片 of an alert", **access(*UPLOADERS))
async def alert_attachments(alert_id: IdPath, request: Request, conn: Conn, scope: CurrentScope,
                            principal: CurrentPrincipal) -> dict:
    await visible_alert(conn, scope, principal, alert_id, action="attachment", now=request.app.state.clock())
    rows = await conn.fetch(
        """SELECT a.id, a.uploaded_at, a.bytes, a.width, a.height, a.sha256,
                  coalesce(nullif(u.display_name, ''), '现场人员') AS uploaded_by_zh
           FROM attachments a LEFT JOIN console_users u ON a.uploaded_by = u.role || ':' || u.username
           WHERE a.alert_id = $1 ORDER BY a.uploaded_at, a.id""", alert_id)
    return {"items": [{"attachment_id": r["id"], "url": f"/api/attachments/{r['id']}", **{
        k: r[k] for k in ("uploaded_at", "bytes", "width", "height", "sha256", "uploaded_by_zh")}} for r in rows]}
