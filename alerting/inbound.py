"""Inbound HTTP for alerting: delivery receipts (回执), SMS replies (回复码) and the short
acknowledgement link.

* ``POST /sms/receipt/{provider}`` — receipts in the provider's callback shape (阿里云 SmsReport
  list, 腾讯云 status-report list, the webhook gateway's object);
* ``POST /sms/reply/{provider}`` — an SMS sent back by a business (阿里云 SmsUp list, 腾讯云 reply
  object, webhook object): a 6-digit 回复码 in the text acknowledges that alert;
* ``GET /ack/{code}`` — the short link in the SMS: acknowledges and shows a one-line page.

Every reply is stored in ``sms_replies`` whether or not it matched an alert. The console may
mount :func:`build_app` or link to its ``/ack`` path.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from alerting import metrics
from alerting.clock import Clock
from alerting.lifecycle import TransitionResult, acknowledge_by_code
from alerting.matrix import normalize_phone
from alerting.outbox import record_receipt
from hazmon.logs import kv

__all__ = ["build_app", "handle_reply", "parse_receipts", "parse_replies"]

log = logging.getLogger(__name__)
_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def _items(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        yield from (d for d in data if isinstance(d, dict))
    elif isinstance(data, dict):
        yield data


def parse_receipts(provider: str, data: Any) -> list[tuple[str, bool, str, str]]:
    """``(provider message id, delivered?, error, our notification id or "")`` per receipt."""
    out = []
    for d in _items(data):
        if provider == "aliyun":
            out.append((str(d.get("biz_id", "")), bool(d.get("success")), str(d.get("err_code", "")),
                        str(d.get("out_id", ""))))
        elif provider == "tencent":
            out.append((str(d.get("sid", "")), d.get("report_status") == "SUCCESS", str(d.get("errmsg", "")), ""))
        else:
            out.append((str(d.get("message_id", "")), d.get("status") == "delivered", str(d.get("error", "")),
                        str(d.get("id", ""))))
    return out


def parse_replies(provider: str, data: Any) -> list[tuple[str, str]]:
    """``(phone, text)`` per reply."""
    out = []
    for d in _items(data):
        if provider == "aliyun":
            out.append((str(d.get("phone_number", "")), str(d.get("content", ""))))
        elif provider == "tencent":
            out.append((str(d.get("mobile", "")), str(d.get("text", ""))))
        else:
            out.append((str(d.get("phone", "")), str(d.get("text", ""))))
    return out


async def handle_reply(conn: asyncpg.Connection, *, provider: str, phone: str, text: str,
                       now: datetime) -> TransitionResult | None:
    """Store the reply; acknowledge the alert whose 回复码 it carries."""
    m = _CODE.search(text)
    result = None
    if m:
        result = await acknowledge_by_code(conn, m.group(1), phone=normalize_phone(phone) or phone, now=now,
                                           via="sms_reply")
    outcome = "no code" if not m else "unknown code" if result is None else \
        "acknowledged" if result.applied else f"refused: {result.problem}"
    await conn.execute(
        "INSERT INTO sms_replies (provider, phone, text, received_at, alert_id, outcome) VALUES ($1,$2,$3,$4,$5,$6)",
        provider, phone, text[:500], now, result.alert.id if result else None, outcome)
    if result is not None and result.applied and result.alert.acked_at is not None:
        metrics.TIME_TO_ACK.observe(max((result.alert.acked_at - result.alert.starts_at).total_seconds(), 0.0))
    log.info("sms reply %s", kv(provider=provider, outcome=outcome))
    return result


def build_app(pool: asyncpg.Pool, clock: Clock) -> Starlette:
    async def receipt(request: Request) -> Response:
        provider = request.path_params["provider"]
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected JSON"}, status_code=400)
        matched = 0
        async with pool.acquire() as conn:
            for mid, ok, err, ours in parse_receipts(provider, data):
                for wait in (0.0, 0.1, 0.3, 1.0):  # a receipt may overtake the write of the send result
                    await asyncio.sleep(wait)
                    if (mid or ours) and await record_receipt(conn, provider=provider, message_id=mid, delivered=ok,
                                                              at=clock.now(), error=err, notification=ours):
                        matched += 1
                        break
                else:
                    log.warning("receipt for an unknown message %s", kv(provider=provider, message_id=mid))
        # the providers expect this exact acknowledgement
        if provider == "aliyun":
            return JSONResponse({"code": 0, "msg": "成功"})
        if provider == "tencent":
            return JSONResponse({"result": 0, "errmsg": "OK"})
        return JSONResponse({"ok": True, "matched": matched})

    async def reply(request: Request) -> Response:
        provider = request.path_params["provider"]
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected JSON"}, status_code=400)
        async with pool.acquire() as conn:
            for phone, text in parse_replies(provider, data):
                await handle_reply(conn, provider=provider, phone=phone, text=text, now=clock.now())
        if provider == "aliyun":
            return JSONResponse({"code": 0, "msg": "成功"})
        if provider == "tencent":
            return JSONResponse({"result": 0, "errmsg": "OK"})
        return JSONResponse({"ok": True})

    async def ack_link(request: Request) -> Response:
        code = request.path_params["code"]
        async with pool.acquire() as conn:
            result = await acknowledge_by_code(conn, code, phone="link", now=clock.now(), via="link")
        if result is None:
            return HTMLResponse("<p>确认码无效或已过期。</p>", status_code=404)
        if result.applied and result.alert.acked_at is not None:
            metrics.TIME_TO_ACK.observe(max((result.alert.acked_at - result.alert.starts_at).total_seconds(), 0.0))
        return HTMLResponse("<p>已确认收到报警，请尽快处置并反馈。</p>" if result.applied else
                            "<p>该报警此前已确认，谢谢。</p>")

    return Starlette(routes=[
        Route("/sms/receipt/{provider}", receipt, methods=["POST"]),
        Route("/sms/reply/{provider}", reply, methods=["POST"]),
        Route("/ack/{code}", ack_link, methods=["GET"]),
    ])
