"""SMS replies (短信回复): the recipient's own 回复码, or a word — 收到, 确认, 1.

A reply with a 6-digit code acknowledges the open alert whose code **that number** holds (a
code someone else holds, from a number never told of that alert, is refused ``non_recipient``).
A reply of a word (:func:`is_ack_word`: 收到 / 确认 / 1 and what people actually type — 好的收到,
收到。, a full-width １, spaces) acknowledges the number's **most recently sent open alert**
(firing, not closed): only that one, even when the number holds several — the outcome and the
audit say how many were open, and the confirmation asks for the others' codes. A word from a
number that holds no open alert is refused ``no_open_alert``; it never acknowledges anyone
else's alert. A reply 到场 (已到场, 到达) is the 维保单位 reporting its arrival at a trapped
lift: :mod:`alerting.arrival_reply` takes it. Any other text is stored (``no_code``) and
acknowledges nothing.

Every reply is an ``sms_replies`` row (number masked); every attempt with a code or a word is
audited (``inbound_audit``). A word that acknowledged — or found a colleague first — gets one
confirmation SMS through the outbox (template ``ack_confirm``: 已确认收到：<单位>的<报警>（<时间>）…),
at most one per recipient and alert (its outbox id is deterministic): the replier must learn
which alarm the word was taken for. A code names its alarm already, so its reply gets none: every
SMS counts against the providers' per-number limits (腾讯云: 10 a day), which an alarm may need.
Refusals get no SMS (a stranger is never told about an alarm).

The rules shared with the short link (limits, the alert's lock, the audit) are
:mod:`alerting.acks`'s; the flow: docs/delivery.md, *Acknowledgement*.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from alerting.acks import (
    DEFAULT_LIMITS,
    AckLimits,
    AckOutcome,
    ack_outcome,
    acknowledge_grant,
    audit,
    mask_phone,
    observe_time_to_ack,
    take_limit,
    who,
)
from alerting.arrival_reply import handle_arrival, is_arrival_word
from alerting.lifecycle import record_refused_acknowledgement
from alerting.matrix import normalize_phone
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.store import acks as store
from alerting.templates import KIND_ZH, Deployment, format_when, render
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole

__all__ = ["ReplyConfirm", "CONFIRM_TEMPLATE", "parse_replies", "is_ack_word", "handle_reply", "confirmation"]

_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
#: 收到 / 确认 / 1 as typed: a polite lead (好的, 嗯, OK), 已, the word, a trailing 了/啦/谢谢 —
#: after NFKC (full-width １ → 1) and without spaces and punctuation
_WORD = re.compile(r"(?:好的|好|嗯|ok)?(?:已)?(?:收到确认|确认收到|收到|确认|1)(?:了|啦|谢谢)?",
                   re.IGNORECASE)
_NOISE = re.compile(r"[\s\u3000,.!?;:~，。！？；：、～…·\"'“”‘’()（）\[\]【】]+")
CONFIRM_TEMPLATE = "ack_confirm"


def parse_replies(provider: str, data: Any) -> list[tuple[str, str]]:
    """``(phone, text)`` per reply of a callback body: 阿里云 SmsUp list, 腾讯云 reply object,
    the webhook gateway's object or list (items that are not objects are left out)."""
    items = data if isinstance(data, list) else [data]
    out = []
    for d in (d for d in items if isinstance(d, dict)):
        if provider == "aliyun":
            out.append((str(d.get("phone_number", "")), str(d.get("content", ""))))
        elif provider == "tencent":
            out.append((str(d.get("mobile", "")), str(d.get("text", ""))))
        else:
            out.append((str(d.get("phone", "")), str(d.get("text", ""))))
    return out


def is_ack_word(text: str) -> bool:
    """Whether a reply without a code is an acknowledgement (收到, 确认, 1, 好的收到, 收到。, １ …)."""
    t = _NOISE.sub("", unicodedata.normalize("NFKC", text))
    return bool(t) and _WORD.fullmatch(t) is not None


@dataclass(frozen=True, slots=True)
class ReplyConfirm:
    """The confirmation SMS of a reply that acknowledged (off: ``enabled=False``); the sender
    name and the centre's duty number are the deployment's (``sms.sign_name``, ``sms.duty_phone``)."""

    enabled: bool = True
    sign_name: str = "区应急指挥中心"
    duty_phone: str = Deployment().duty_phone
    provider: str = "webhook"
    max_segments: int = 3


async def handle_reply(conn: asyncpg.Connection, *, provider: str, phone: str, text: str, now: datetime,
                       limits: AckLimits = DEFAULT_LIMITS, ip: str = "", confirm: ReplyConfirm | None = None
                       ) -> AckOutcome:
    """An SMS sent back: a code acknowledges the open alert whose 回复码 this number holds; a word
    (收到, 确认, 1) the number's most recently sent open alert.

    Stored in ``sms_replies`` (number masked) whatever the outcome; an attempt with a code or a
    word is audited. Order: the number's limit (taken before looking: guesses cannot race it),
    then the number's own grants, then whether the code is someone else's (non-recipient)."""
    norm = normalize_phone(phone) or phone.strip()
    m = _CODE.search(text)
    if m is None and is_arrival_word(text):  # 到场: the 维保单位 is at the lift
        return await handle_arrival(conn, provider=provider, phone=norm, text=text, now=now, limits=limits,
                                    ip=ip, confirm=confirm or ReplyConfirm(provider=provider))
    rid = ""
    grant: Mapping[str, Any] | None = None
    more = 0
    if m is not None:
        out, grant = await _reply_code(conn, provider=provider, phone=norm, code=m.group(1), now=now,
                                       limits=limits)
    elif is_ack_word(text):
        out, grant, more = await _reply_word(conn, provider=provider, phone=norm, text=text, now=now,
                                             limits=limits)
    else:
        out = ack_outcome("no_code")
    if grant is not None:
        rid = str(grant["recipient_id"])
    if out.outcome != "no_code":
        detail: dict[str, Any] = {"message": out.message, "by": "code" if m is not None else "word"}
        if m is None and grant is not None:
            detail.update(open_alerts=more + 1, latest_only=more > 0)
        await audit(conn, at=now, channel="sms_reply", provider=provider, outcome=out.outcome, ip=ip,
                    phone=norm, recipient=rid, alert_id=out.alert_id, detail=detail)
    await store.insert_sms_reply(conn, provider=provider, phone_masked=mask_phone(norm),
                                 text_masked=mask_phone(text[:500]), at=now, alert_id=out.alert_id,
                                 outcome=out.outcome, recipient=rid)
    observe_time_to_ack(out)
    if m is None and grant is not None and out.outcome in ("acknowledged", "already_acknowledged") and \
            (confirm is None or confirm.enabled):  # a word: say which alarm it was taken for
        await confirmation(conn, grant, more=more, now=now,
                           confirm=confirm or ReplyConfirm(provider=provider))
    return out


async def _reply_code(conn: asyncpg.Connection, *, provider: str, phone: str, code: str, now: datetime,
                      limits: AckLimits) -> tuple[AckOutcome, Mapping[str, Any] | None]:
    phone_key = f"phone:{phone}"
    if not await take_limit(conn, phone_key, limits.per_phone_failures, window_s=limits.window_s, now=now):
        return ack_outcome("rate_limited"), None
    g = await store.grant_by_code(conn, phone, code)
    if g is None:
        other = await store.other_holder(conn, code, phone)
        if other is None:
            return ack_outcome("unknown_code"), None
        await take_limit(conn, f"alert:{other}", limits.per_alert_attempts, window_s=limits.window_s, now=now)
        await record_refused_acknowledgement(
            conn, other, actor="sms_reply:non_recipient", now=now, via="sms_reply",
            problem="该号码未收到此报警", detail={"phone": mask_phone(phone), "provider": provider})
        return ack_outcome("non_recipient", alert_id=other), None
    out = await acknowledge_grant(conn, g, via="sms_reply", now=now, limits=limits, release=phone_key,
                                  detail={"phone": mask_phone(phone), "provider": provider,
                                          "recipient": who(g)})
    return out, g


async def _reply_word(conn: asyncpg.Connection, *, provider: str, phone: str, text: str, now: datetime,
                      limits: AckLimits) -> tuple[AckOutcome, Mapping[str, Any] | None, int]:
    """收到 / 确认 / 1: the most recently sent open alert of the number; (outcome, its grant, how
    many other open alerts the number holds)."""
    phone_key = f"phone:{phone}"
    if not await take_limit(conn, phone_key, limits.per_phone_failures, window_s=limits.window_s, now=now):
        return ack_outcome("rate_limited"), None, 0
    held = await store.open_grants_of_phone(conn, phone)
    if not held:
        return ack_outcome("no_open_alert"), None, 0
    g, others = held[0], [str(h["alert_id"]) for h in held[1:]]
    detail: dict[str, Any] = {"phone": mask_phone(phone), "provider": provider, "recipient": who(g),
                              "word": text.strip()[:20]}
    if others:  # only the most recent: the others keep waiting for their own code
        detail.update(latest_of=len(held), others=others)
    reason = "回复收到确认最近一条" + (f"（共{len(held)}条未办结）" if others else "")
    out = await acknowledge_grant(conn, g, via="sms_reply", now=now, limits=limits, release=phone_key,
                                  detail=detail, reason=reason)
    if out.outcome in ("acknowledged", "already_acknowledged"):  # say which alarm the word was taken for
        rest = (f"另有{len(others)}条报警未确认，请按各条短信中的回复码回复。" if others
                else "请尽快处置并反馈。")
        out = replace(out, message=f"已确认最近一条报警：{out.site}的{out.summary}。{rest}")
    return out, g, len(others)


async def confirmation(conn: asyncpg.Connection, g: Mapping[str, Any], *, more: int, now: datetime,
                       confirm: ReplyConfirm) -> list[str]:
    """Queue the confirmation SMS to the recipient of grant ``g`` (once per recipient and alert);
    the outbox sends it like every SMS. Returns the ids queued (none when already sent)."""
    alert_id = str(g["alert_id"])
    brief = await store.alert_brief(conn, alert_id)
    if brief is None:
        return []
    params = {"unit": str(brief["site"]), "what": KIND_ZH.get(str(brief["kind"]), "报警"),
              "when": format_when(brief["starts_at"]), "more": str(more)}
    name = f"{CONFIRM_TEMPLATE}.more" if more else CONFIRM_TEMPLATE
    body, sent = render(name, params, sign_name=confirm.sign_name, max_segments=confirm.max_segments,
                        provider=confirm.provider, deployment=Deployment(duty_phone=confirm.duty_phone))
    try:
        role = RecipientRole(str(g["recipient_role"]))
    except ValueError:
        role = RecipientRole.BUSINESS
    r = Recipient(role=role, name=str(g["recipient_name"]), unit=str(g["recipient_unit"]),
                  phone=str(g["phone"]), rule=str(g["recipient_id"]))
    req = NotificationRequest(id=notification_id(alert_id, r, 0, f"sms:{CONFIRM_TEMPLATE}"),
                              alert_id=alert_id, channel="sms", recipient=r, template=CONFIRM_TEMPLATE,
                              body=body, created_at=now)
    return await enqueue(conn, [NewNotification(req, sent)], now=now)
