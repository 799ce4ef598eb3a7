"""现场照片 (issue 14): the photos people upload on site as the evidence of a 反馈 or an 整改.

An upload is trusted for nothing: its type is sniffed by Pillow from the bytes (the file name
and the declared content type are ignored), its size and pixel count are bounded before it is
decoded, and every image is decoded and re-encoded to JPEG — EXIF (with any GPS position of the
phone) and every other metadata are gone, the camera's orientation applied to the pixels. The
stored bytes are what the sha256 is of. A photo belongs to one alert or one hazard, and whoever
may not see that alert or hazard may neither upload to it nor read it (console/scope.py).

:func:`check_attachments` is what the work-order and hazard routes call to validate the
``attachment_ids`` of a 反馈 or 整改: unknown ids and ids of another alert or hazard are refused
in Chinese (:class:`AttachmentRefused`, an HTTP 4xx the console's handlers pass on as it is).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException
from PIL import Image, ImageOps

from hazmon.errors import HazmonError
from hazmon.logs import kv

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "AttachmentRefused",
    "Processed",
    "process_image",
    "store_attachment",
    "check_attachments",
    "audit_refusal",
]

log = logging.getLogger(__name__)

#: the raw upload: a phone's photo is 2–6 MB; 10 MB leaves room without letting a video in
MAX_BYTES = 10 * 1024 * 1024
#: 40 megapixels: beyond any phone camera; a small file claiming more is a decompression bomb
MAX_PIXELS = 40_000_000
#: the longest side kept: evidence must be readable, not a print master
MAX_SIDE = 2560
MAX_PER_ACTION = 10
#: sniffed formats accepted (HEIC, the iPhone's default, is refused: its browsers upload JPEG)
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class AttachmentRefused(HazmonError, HTTPException):
    """An upload or an ``attachment_ids`` list refused: ``detail`` in Chinese, ``reason`` a code
    for the audit row."""

    def __init__(self, status: int, detail: str, reason: str) -> None:
        super().__init__(status, detail)
        self.reason = reason


@dataclass(frozen=True)
class Processed:
    """An image as it will be stored: re-encoded JPEG bytes and what was learned of the source."""

    data: bytes
    width: int
    height: int
    sha256: str
    source_format: str
    source_bytes: int


def _refuse_size(n: int) -> AttachmentRefused:
    return AttachmentRefused(413, f"照片太大（{n / 1048576:.1f}MB），单张不能超过10MB", "too_large")


def process_image(raw: bytes) -> Processed:
    """Decode ``raw`` (any name, any declared type) and re-encode it; :class:`AttachmentRefused`
    for what is not a whole image of an accepted type and size. CPU-bound: run it in a thread."""
    if not raw:
        raise AttachmentRefused(400, "未收到照片内容，请重新选择照片", "empty")
    if len(raw) > MAX_BYTES:
        raise _refuse_size(len(raw))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            fmt = img.format or ""
            if fmt not in _FORMATS:
                raise AttachmentRefused(415, "不支持的文件类型：请上传手机拍摄的照片（常见图片格式）", "not_image")
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise AttachmentRefused(413, f"照片像素太多（{w}×{h}），不能超过4000万像素", "too_many_pixels")
            img.load()  # a truncated file fails here, not half-way through the encoder
    except AttachmentRefused:
        raise
    except Image.UnidentifiedImageError:
        raise AttachmentRefused(415, "不支持的文件类型：请上传手机拍摄的照片（常见图片格式）", "not_image") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        log.info("image refused %s", kv(error=repr(exc)[:200]))
        raise AttachmentRefused(400, "照片文件不完整或已损坏，请重新拍摄或选择照片", "broken") from None
    pic: Image.Image = ImageOps.exif_transpose(img) or img  # the pixels as the camera was held
    if pic.mode in ("RGBA", "LA", "P", "PA"):
        rgba = pic.convert("RGBA")
        pic = Image.new("RGB", rgba.size, (255, 255, 255))
        pic.paste(rgba, mask=rgba.getchannel("A"))
    elif pic.mode != "RGB":
        pic = pic.convert("RGB")
    pic.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    pic.save(out, "JPEG", quality=85, optimize=True)  # no exif=, no icc_profile=: no metadata
    data = out.getvalue()
    return Processed(data, pic.width, pic.height, hashlib.sha256(data).hexdigest(), fmt, len(raw))


def new_id() -> str:
    return "att-" + secrets.token_urlsafe(16)


async def store_attachment(conn: Any, p: Processed, *, alert_id: str | None, hazard_id: str | None,
                           actor: str, now: datetime) -> dict[str, Any]:
    """One row, in one statement (nothing half-written), and its audit row."""
    att = new_id()
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO attachments (id, alert_id, hazard_id, uploaded_by, uploaded_at, content_type, bytes,
                                        width, height, sha256, source_format, source_bytes, data)
               VALUES ($1, $2, $3, $4, $5, 'image/jpeg', $6, $7, $8, $9, $10, $11, $12)""",
            att, alert_id, hazard_id, actor, now, len(p.data), p.width, p.height, p.sha256, p.source_format,
            p.source_bytes, p.data,
        )
        await conn.execute(
            "INSERT INTO console_audit (at, actor, action, target, detail) VALUES ($1, $2, 'attachment.upload', $3,"
            " $4::jsonb)", now, actor, att,
            json.dumps({"alert_id": alert_id, "hazard_id": hazard_id, "sha256": p.sha256, "bytes": len(p.data),
                        "source_format": p.source_format, "source_bytes": p.source_bytes}))
    log.info("attachment stored %s", kv(id=att, alert=alert_id, hazard=hazard_id, bytes=len(p.data)))
    return {"attachment_id": att, "sha256": p.sha256, "bytes": len(p.data), "width": p.width,
            "height": p.height, "content_type": "image/jpeg"}


async def audit_refusal(conn: Any, actor: str, target: str, refusal: AttachmentRefused, *, now: datetime,
                        **detail: Any) -> None:
    """The ``attachment.refused`` row of a refused upload or read (its Chinese message with it)."""
    await conn.execute(
        "INSERT INTO console_audit (at, actor, action, target, detail) VALUES ($1, $2, 'attachment.refused', $3,"
        " $4::jsonb)", now, actor, target,
        json.dumps({"reason": refusal.reason, "message": refusal.detail, **detail}, ensure_ascii=False, default=str))


async def check_attachments(conn: Any, ids: Sequence[str], *, alert_id: str | None = None,
                            hazard_id: str | None = None) -> list[str]:
    """``ids`` without repeats, in order, once each is known and belongs to ``alert_id`` (or
    ``hazard_id``); else :class:`AttachmentRefused` (422, Chinese). The caller has checked that
    its user may see that alert or hazard."""
    if (alert_id is None) == (hazard_id is None):
        raise ValueError("check_attachments needs exactly one of alert_id, hazard_id")
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > MAX_PER_ACTION:
        raise AttachmentRefused(422, f"照片最多{MAX_PER_ACTION}张", "too_many")
    if not wanted:
        return []
    rows = await conn.fetch("SELECT id, alert_id, hazard_id FROM attachments WHERE id = ANY($1::text[])", wanted)
    found = {r["id"]: r for r in rows}
    for i, att in enumerate(wanted, 1):
        r = found.get(att)
        if r is None:
            raise AttachmentRefused(422, f"第{i}张照片不存在，请重新上传", "unknown")
        if (alert_id is not None and r["alert_id"] != alert_id) or (
                hazard_id is not None and r["hazard_id"] != hazard_id):
            what = "报警" if alert_id is not None else "隐患"
            raise AttachmentRefused(422, f"第{i}张照片不属于该{what}，请在本页重新上传", "other_owner")
    return wanted
