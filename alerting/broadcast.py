"""安全公益短信: a safety broadcast to a set of businesses (before 春节, a typhoon, 汛期 …).

One ``broadcasts`` row is the audit record (who, when, why, to whom, how many); each business
contact gets one outbox row (deterministic id: broadcast id + phone, so re-running the same
broadcast queues nothing new). Broadcast rows have no priority: the outbox's per-phone rate
limit applies and alarms go first. The SQL is :mod:`alerting.store.broadcasts`'s.

From the console (issue 14) a broadcast is a **draft** first (:func:`draft`, after :func:`preview`
found nothing the providers' review refuses), **approved** or rejected by another user
(:func:`approve`: the author's own approval is refused and audited), then **sent**
(:func:`send_approved`); every step is a ``broadcast_audit`` row (migration 032).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alerting.errors import InvalidAction, NotFound
from alerting.matrix import normalize_phone
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.store import broadcasts as store
from alerting.templates import PROVIDERS, render, sms_segments
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole

__all__ = ["BroadcastResult", "BroadcastPreview", "broadcast", "preview", "draft", "approve", "send_approved"]


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    id: str
    recipients: int
    queued: int
    skipped_invalid: int


async def broadcast(
    conn: asyncpg.Connection, *, actor: str, now: datetime, broadcast_id: str, body: str, reason: str,
    township_ids: Sequence[str] = (), industries: Sequence[str] = (), domains: Sequence[str] = (),
    key_period_id: str | None = None, sign_name: str = "", max_segments: int = 3,
) -> BroadcastResult:
    if not body.strip() or not reason.strip() or not actor:
        raise InvalidAction("a broadcast needs a body, a reason and its author")
    text, params = render("broadcast", {"body": body}, sign_name=sign_name, max_segments=max_segments)
    rows = await store.broadcast_audience(conn, township_ids=township_ids, industries=industries,
                                          domains=domains)
    async with conn.transaction():
        await store.insert_broadcast(conn, broadcast_id, key_period_id=key_period_id, body=text,
                                     township_ids=township_ids, industries=industries, domains=domains,
                                     actor=actor, now=now, reason=reason, recipients=len(rows))
        items, seen, invalid = [], set(), 0
        for r in rows:
            phone = normalize_phone(r["phone"])
            if phone is None:
                invalid += 1
                continue
            if phone in seen:
                continue
            seen.add(phone)
            rcpt = Recipient(role=RecipientRole.BUSINESS, name=r["contact"], unit=r["name"], phone=phone,
                             rule=f"broadcast:{broadcast_id}")
            req = NotificationRequest(id=notification_id(f"broadcast:{broadcast_id}", rcpt, 0, "broadcast"),
                                      alert_id="", channel="sms", recipient=rcpt, template="broadcast",
                                      body=text, created_at=now)
            items.append(NewNotification(req, params, broadcast_id=broadcast_id))
        inserted = await enqueue(conn, items, now=now)
    return BroadcastResult(broadcast_id, len(seen), len(inserted), invalid)


# --- the form: preview against the providers' review, draft → approval → send ----------------------

_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_PHONE = re.compile(r"1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|400-?\d{3}-?\d{4}")
_SPECIAL = re.compile(r"[¥★※✓☞『』〖〗#&]|\^_\^")
_PREFIX = "安全提示："  # the registered template's fixed text (alerting/templates/catalogue.py)


@dataclass(frozen=True, slots=True)
class BroadcastPreview:
    """What the recipient reads (``full``: with the signature), its length and SMS segments, and
    why the provider's review would refuse it (Chinese; empty: it may be sent)."""

    text: str
    full: str
    chars: int
    segments: int
    problems: tuple[str, ...]


def preview(body: str, *, sign_name: str = "", provider: str = "webhook", max_segments: int = 3
            ) -> BroadcastPreview:
    """The text as rendered for ``provider`` and the review rules it breaks (alerting/templates/
    rules.py and docs/delivery.md, *Texts*): no 【】, no link, no contact number in a variable, no
    special symbols, within the provider's total and the configured segments."""
    rules = PROVIDERS[provider]
    problems = []
    raw = body.strip()
    if not raw:
        problems.append("请填写短信正文")
    if re.search(r"[【】\[\]]", raw):
        problems.append("正文不能含【】或方括号：服务商会当作签名，审核不通过")
    if _URL.search(raw):
        problems.append("正文不能含网址链接：服务商审核不允许在变量中放链接")
    if _PHONE.search(raw):
        problems.append("正文不能含手机号或固定电话：服务商审核不允许在变量中放联系电话（119、110等急救号码除外）")
    if _SPECIAL.search(raw):
        problems.append("正文不能含特殊符号（¥★※✓☞#&等）")
    text, _ = render("broadcast", {"body": raw or "无"}, sign_name=sign_name, max_segments=max_segments,
                     provider=provider)
    full = (f"【{sign_name}】" if sign_name else "") + text
    if raw and text.rstrip("…") != _PREFIX + raw and "…" in text:
        most = max_segments * 67 - len(full) + len(text) - len(_PREFIX)
        problems.append(f"正文过长：最多{max_segments}条短信，正文请控制在{most}字以内")
    if len(full) > rules.total_max:
        problems.append(f"短信总长超过服务商上限（{rules.total_max}字）")
    return BroadcastPreview(text, full, len(full), sms_segments(full), tuple(problems))


async def draft(conn: asyncpg.Connection, *, actor: str, now: datetime, body: str, reason: str,
                township_ids: Sequence[str], industries: Sequence[str], text: str, recipients: int) -> str:
    """A draft (audited); the caller has previewed ``text`` without problems."""
    if not reason.strip():
        raise InvalidAction("请填写发送原因（例如：春节前燃气安全提示）")
    bid = f"bc-{now:%Y%m%d}-{secrets.token_hex(4)}"
    async with conn.transaction():
        await store.insert_draft(conn, bid, raw_body=body.strip(), body=text, township_ids=township_ids,
                                 industries=industries, actor=actor, now=now, reason=reason,
                                 recipients=recipients)
        await store.insert_audit(conn, bid, "draft", actor, now, reason, {"recipients": recipients})
    return bid


async def approve(conn: asyncpg.Connection, broadcast_id: str, *, actor: str, now: datetime, reason: str = "",
                  reject: bool = False) -> None:
    """Approve (or reject) a draft: never by its author — a refusal is audited and raised."""
    async with conn.transaction():
        row = await store.lock_broadcast(conn, broadcast_id)
        if row is None:
            raise NotFound(f"no broadcast {broadcast_id!r}")
        problem = ("不能审批自己起草的短信，请由另一位有审批权限的人员审批" if row["created_by"] == actor
                   else "" if row["status"] == "draft" else "该短信不在待审批状态")
        if problem:
            await store.insert_audit(conn, broadcast_id, "refused", actor, now, reason,
                                     {"tried": "reject" if reject else "approve", "problem": problem})
    if problem:
        raise InvalidAction(problem)
    async with conn.transaction():
        await store.set_status(conn, broadcast_id, "rejected" if reject else "approved", actor=actor, now=now)
        action = "reject" if reject else "approve"
        await store.insert_audit(conn, broadcast_id, action, actor, now, reason, {})


async def send_approved(conn: asyncpg.Connection, broadcast_id: str, *, actor: str, now: datetime,
                        sign_name: str = "", max_segments: int = 3) -> BroadcastResult:
    """Send an approved broadcast: its outbox rows (:func:`broadcast`), status ``sent``, audited."""
    async with conn.transaction():
        row = await store.lock_broadcast(conn, broadcast_id)
        if row is None:
            raise NotFound(f"no broadcast {broadcast_id!r}")
        if row["status"] != "approved":
            problem = "该短信已发送" if row["status"] == "sent" else "该短信尚未通过审批，不能发送"
            await store.insert_audit(conn, broadcast_id, "refused", actor, now, "",
                                     {"tried": "send", "problem": problem})
            refused = problem
        else:
            refused = ""
            aud = row["audience"]
            aud = json.loads(aud) if isinstance(aud, str) else dict(aud or {})
            res = await broadcast(conn, actor=row["created_by"], now=now, broadcast_id=broadcast_id,
                                  body=row["raw_body"], reason=row["reason"],
                                  township_ids=aud.get("township_ids", ()),
                                  industries=aud.get("industries", ()),
                                  sign_name=sign_name, max_segments=max_segments)
            await store.mark_sent(conn, broadcast_id, actor=actor, now=now, recipients=res.recipients)
            await store.insert_audit(conn, broadcast_id, "send", actor, now, "",
                                     {"queued": res.queued, "recipients": res.recipients})
    if refused:
        raise InvalidAction(refused)
    return res
