"""Acknowledgement by SMS reply code (回复码) and by short link, per recipient.

Why per recipient: a 6-digit code shared by everyone told about an alert can be guessed (10⁶
codes) and says nothing about who answered. So each SMS recipient of an alert gets

* a **回复码** of their own, accepted only in a reply *from their number* and only while the
  alert is open (a reply from a number that never received the alert is refused, whatever
  the code);
* a **link token** of 128 random bits (22 URL-safe characters) in the short link; only its
  SHA-256 is stored. A GET of the link only shows a page with a button; the POST of that
  button acknowledges.

Both live in ``alert_ack_grants`` (one row per SMS notification), written by
:func:`personalize` / :func:`record_grants` when the outbox row is queued: the text rendered
once per group message carries the alert's placeholder code and a link placeholder of the
token's length (:func:`alerting.templates.ack_placeholder`), replaced per recipient, so the text's
length — and its segment count — does not change.

Every attempt is audited (``inbound_audit``; a refused one that names an alert also as a
rejected ``acknowledge`` transition on the alert) with the number masked; ``acked_by`` is
``sms_reply:<recipient id>`` or ``link:<recipient id>`` — the matrix rule that chose the
recipient — never a number. Limits (fixed windows in ``inbound_limits``) are taken atomically
in one statement each: per number (reply attempts that did not acknowledge), per alert (every
attempt) and per client address (forged callbacks, unknown link tokens). A valid link token is
never held back by its address's failures: users behind one carrier NAT are not blocked by
someone else's guessing.

The SQL is :mod:`alerting.store.acks`'s. The short link is served by the console
(console/routes/ack.py), replies by alerting's inbound HTTP; the flow: docs/delivery.md,
*Acknowledgement*.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from alerting import metrics
from alerting.lifecycle import TransitionResult, acknowledge, record_refused_acknowledgement
from alerting.matrix import normalize_phone
from alerting.store import ACK_CODE_ALPHABET
from alerting.store import acks as store
from alerting.templates import ACK_TOKEN_LEN, KIND_ZH
from hazmon.logs import kv

if TYPE_CHECKING:
    from alerting.outbox import NewNotification

__all__ = [
    "AckLimits",
    "AckOutcome",
    "Grant",
    "mask_phone",
    "recipient_id",
    "new_token",
    "token_hash",
    "personalize",
    "record_grants",
    "take_limit",
    "give_back",
    "count_failure",
    "prune_limits",
    "audit",
    "handle_reply",
    "view_link",
    "confirm_link",
    "link_page",
    "link_result_page",
]

log = logging.getLogger(__name__)
_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
_MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True, slots=True)
class AckLimits:
    """Attempts per fixed window (``hazmon.settings.InboundSettings`` has the defaults)."""

    window_s: int = 15 * 60
    per_ip_failures: int = 30
    per_phone_failures: int = 5
    per_alert_attempts: int = 30

    @classmethod
    def from_settings(cls, inbound: Any) -> AckLimits:
        """From ``hazmon.settings.InboundSettings`` (alerting's inbound HTTP and the console's link)."""
        return cls(inbound.window_s, inbound.per_ip_failures, inbound.per_phone_failures,
                   inbound.per_alert_attempts)


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """What an attempt did: ``outcome`` as audited, ``status`` the HTTP status to answer,
    ``message`` the Chinese text for the person (or gateway) who tried."""

    outcome: str
    status: int
    message: str
    alert_id: str | None = None
    result: TransitionResult | None = None
    site: str = ""
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Grant:
    notification_id: str
    alert_id: str
    recipient_id: str
    role: str
    name: str
    unit: str
    phone: str
    code: str
    token_hash: str


_MESSAGES = {
    "acknowledged": (200, "已确认收到报警，请尽快处置并反馈。"),
    "already_acknowledged": (200, "该报警此前已确认，谢谢。"),
    "no_code": (200, "未识别到回复码，已记录。"),
    "unknown_code": (404, "回复码无效。"),
    "unknown_token": (404, "确认链接无效或已过期。"),
    "non_recipient": (403, "该号码未收到此报警，不能确认。"),
    "closed_alert": (409, "该报警已办结，回复码和链接已失效。"),
    "rate_limited": (429, "尝试次数过多，请稍后再试。"),
}


def _outcome(outcome: str, **kw: Any) -> AckOutcome:
    status, message = _MESSAGES[outcome]
    return AckOutcome(outcome, status, message, **kw)


def mask_phone(value: str | None) -> str:
    """``13812345678`` → ``138****5678`` (every mainland mobile in ``value``); anything else
    with 7+ digits keeps its first 3 and last 4 digits."""
    if not value:
        return ""
    if _MOBILE.search(value):
        return _MOBILE.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:], value)
    digits = [c for c in value if c.isdigit()]
    if len(digits) < 7:
        return "*" * len(value)
    n, seen, out = len(digits), 0, []
    for ch in value:
        if ch.isdigit():
            out.append(ch if seen < 3 or seen >= n - 4 else "*")
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


def recipient_id(role: str, rule: str) -> str:
    """Who a recipient is, for ``acked_by`` and the audit: the matrix rule that chose them
    (``site:S6:contact``, ``village:V1:grid_member``, …), never their number."""
    return rule or role


def new_token() -> str:
    token = secrets.token_urlsafe(16)
    assert len(token) == ACK_TOKEN_LEN
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _draw(taken: set[str]) -> str:
    for _ in range(100):
        code = "".join(secrets.choice(ACK_CODE_ALPHABET) for _ in range(6))
        if code not in taken:
            return code
    raise RuntimeError("no free 回复码 for this number")  # 100 misses in 10⁶: not a district's scale


async def personalize(conn: asyncpg.Connection, items: Sequence[NewNotification], *, now: datetime
                      ) -> tuple[list[NewNotification], list[Grant]]:
    """Give each SMS item with a 回复码 its recipient's own code and link token.

    A recipient keeps the code they already hold for the alert (reminders and notices repeat
    it); a new one is drawn unlike every code the number holds for open alerts (one query for
    the batch). Items without a code (broadcasts, resolved texts) pass unchanged."""
    todo = [i for i, it in enumerate(items) if it.request.channel == "sms" and it.request.recipient.phone
            and it.params.get("code") and it.request.alert_id]
    if not todo:
        return list(items), []
    phones = sorted({str(items[i].request.recipient.phone) for i in todo})
    rows = await store.held_codes(conn, phones)
    held: dict[tuple[str, str], str] = {(r["alert_id"], r["phone"]): r["code"] for r in rows}
    taken: dict[str, set[str]] = {}
    for r in rows:
        taken.setdefault(r["phone"], set()).add(r["code"])
    out = list(items)
    grants: list[Grant] = []
    for i in todo:
        it = items[i]
        req = it.request
        phone, alert_id = str(req.recipient.phone), str(req.alert_id)
        code = held.get((alert_id, phone))
        if code is None:
            code = _draw(taken.setdefault(phone, set()))
            taken[phone].add(code)
            held[(alert_id, phone)] = code
        token = new_token()
        # the template's fixed text holds the link's base; only its token varies (alerting/templates/)
        old_code, old_token = str(it.params["code"]), str(it.params.get("token", ""))
        if f"回复{old_code}确认" not in req.body:
            log.warning("sms text has no 回复码 to personalise %s",
                        kv(notification=req.id, template=req.template))
            continue
        body = req.body.replace(f"回复{old_code}确认", f"回复{code}确认", 1)
        if old_token and old_token in body:
            body = body.replace(old_token, token, 1)
        params = {**it.params, "code": code, **({"token": token} if "token" in it.params else {})}
        out[i] = replace(it, request=req.model_copy(update={"body": body}), params=params)
        r = req.recipient
        grants.append(Grant(req.id, alert_id, recipient_id(r.role.value, r.rule), r.role.value, r.name,
                            r.unit, phone, code, token_hash(token)))
    return out, grants


async def record_grants(conn: asyncpg.Connection, grants: Sequence[Grant], inserted: Sequence[str], *,
                        now: datetime) -> None:
    """Store the grants of the notifications actually inserted (a replayed one keeps its own)."""
    new = set(inserted)
    mine = []
    for g in grants:  # a list naming one notification twice: its first text is the one stored
        if g.notification_id in new:
            new.discard(g.notification_id)
            mine.append(g)
    if mine:
        await store.insert_grants(conn, mine, now=now)


# --- limits and audit --------------------------------------------------------------------------


def _window(now: datetime, window_s: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, now.tzinfo)


async def take_limit(conn: asyncpg.Connection, key: str, limit: int, *, window_s: int, now: datetime) -> bool:
    """Take one attempt of ``key``'s window; False when ``limit`` are already taken. One
    statement: concurrent callers cannot both take the last one."""
    return await store.take_window(conn, key, _window(now, window_s), limit)


async def give_back(conn: asyncpg.Connection, key: str, *, window_s: int, now: datetime) -> None:
    """Return an attempt taken by :func:`take_limit` (it acknowledged: not a failure)."""
    await store.give_back_window(conn, key, _window(now, window_s))


async def count_failure(conn: asyncpg.Connection, key: str, limit: int, *, window_s: int, now: datetime
                        ) -> bool:
    """Count a failure of ``key``; True when it was over ``limit`` (answer 429)."""
    return not await take_limit(conn, key, limit, window_s=window_s, now=now)


async def audit(conn: asyncpg.Connection, *, at: datetime, channel: str, outcome: str, provider: str = "",
                ip: str = "", phone: str | None = None, recipient: str = "", alert_id: str | None = None,
                detail: Mapping[str, Any] | None = None) -> None:
    """One ``inbound_audit`` row and one log line, the number masked in both."""
    masked = mask_phone(phone)
    await store.insert_inbound_audit(conn, at=at, channel=channel, provider=provider, outcome=outcome, ip=ip,
                                     phone_masked=masked, recipient=recipient, alert_id=alert_id,
                                     detail=dict(detail or {}))
    quiet = ("acknowledged", "already_acknowledged", "get_no_ack")
    level = logging.INFO if outcome in quiet else logging.WARNING
    log.log(level, "inbound %s %s", outcome, kv(channel=channel, provider=provider, ip=ip, phone=masked,
                                                 recipient=recipient, alert=alert_id or ""))


# --- SMS replies -------------------------------------------------------------------------------


async def handle_reply(conn: asyncpg.Connection, *, provider: str, phone: str, text: str, now: datetime,
                       limits: AckLimits = AckLimits(), ip: str = "") -> AckOutcome:
    """An SMS sent back: acknowledge the open alert whose 回复码 this number holds.

    Stored in ``sms_replies`` (number masked) whatever the outcome; an attempt with a code is
    audited. Order: the number's limit (taken before looking: guesses cannot race it), then the
    number's own grants, then whether the code is someone else's (non-recipient)."""
    norm = normalize_phone(phone) or phone.strip()
    m = _CODE.search(text)
    rid = ""
    if m is None:
        out = _outcome("no_code")
    else:
        code = m.group(1)
        out, rid = await _reply_code(conn, provider=provider, phone=norm, code=code, now=now, limits=limits,
                                     ip=ip)
        await audit(conn, at=now, channel="sms_reply", provider=provider, outcome=out.outcome, ip=ip,
                    phone=norm, recipient=rid, alert_id=out.alert_id, detail={"message": out.message})
    await store.insert_sms_reply(conn, provider=provider, phone_masked=mask_phone(norm),
                                 text_masked=mask_phone(text[:500]), at=now, alert_id=out.alert_id,
                                 outcome=out.outcome, recipient=rid)
    if out.result is not None and out.result.applied and out.result.alert.acked_at is not None:
        a = out.result.alert
        metrics.TIME_TO_ACK.observe(max((a.acked_at - a.starts_at).total_seconds(), 0.0))  # type: ignore[operator]
    return out


async def _reply_code(conn: asyncpg.Connection, *, provider: str, phone: str, code: str, now: datetime,
                      limits: AckLimits, ip: str) -> tuple[AckOutcome, str]:
    phone_key = f"phone:{phone}"
    if not await take_limit(conn, phone_key, limits.per_phone_failures, window_s=limits.window_s, now=now):
        return _outcome("rate_limited"), ""
    g = await store.grant_by_code(conn, phone, code)
    if g is None:
        other = await store.other_holder(conn, code, phone)
        if other is None:
            return _outcome("unknown_code"), ""
        await take_limit(conn, f"alert:{other}", limits.per_alert_attempts, window_s=limits.window_s, now=now)
        await record_refused_acknowledgement(
            conn, other, actor="sms_reply:non_recipient", now=now, via="sms_reply",
            problem="该号码未收到此报警", detail={"phone": mask_phone(phone), "provider": provider})
        return _outcome("non_recipient", alert_id=other), ""
    rid = str(g["recipient_id"])
    return await _acknowledge_grant(conn, g, via="sms_reply", now=now, limits=limits, release=phone_key,
                                    detail={"phone": mask_phone(phone), "provider": provider,
                                            "recipient": _who(g)}), rid


def _who(g: Mapping[str, Any]) -> dict[str, str]:
    return {"id": str(g["recipient_id"]), "role": str(g["recipient_role"]), "name": str(g["recipient_name"]),
            "unit": str(g["recipient_unit"]), "phone": mask_phone(str(g["phone"]))}


async def _acknowledge_grant(conn: asyncpg.Connection, g: Mapping[str, Any], *, via: str, now: datetime,
                             limits: AckLimits, release: str | None, detail: Mapping[str, Any]) -> AckOutcome:
    alert_id = str(g["alert_id"])
    if not await take_limit(conn, f"alert:{alert_id}", limits.per_alert_attempts, window_s=limits.window_s,
                            now=now):
        return _outcome("rate_limited", alert_id=alert_id)
    result = await acknowledge(conn, alert_id, actor=f"{via}:{g['recipient_id']}", now=now, via=via,
                               reason="回复码确认" if via == "sms_reply" else "短链接确认", detail=detail)
    info = await store.alert_kind_site(conn, alert_id)
    # what happened in the operators' words (电梯困人), not the detector's summary ("设备上报 trapped")
    site, summary = (info[1], KIND_ZH.get(info[0], "报警")) if info else ("", "")
    if result.applied:
        if release:
            await give_back(conn, release, window_s=limits.window_s, now=now)
        return _outcome("acknowledged", alert_id=alert_id, result=result, site=site, summary=summary)
    if result.alert.phase.value == "closed":
        return _outcome("closed_alert", alert_id=alert_id, result=result)
    if release:  # the recipient answered twice, or a colleague was first: not a guess
        await give_back(conn, release, window_s=limits.window_s, now=now)
    return _outcome("already_acknowledged", alert_id=alert_id, result=result, site=site, summary=summary)


# --- the short link ----------------------------------------------------------------------------


async def _grant_by_token(conn: asyncpg.Connection, token: str) -> asyncpg.Record | None:
    if not re.fullmatch(r"[0-9A-Za-z_-]{16,64}", token):
        return None
    return await store.grant_by_token_hash(conn, token_hash(token))


async def view_link(conn: asyncpg.Connection, token: str, *, now: datetime, ip: str = "") -> None:
    """A GET of the link: nothing is acknowledged (link previews fetch it); audited."""
    g = await _grant_by_token(conn, token)
    await audit(conn, at=now, channel="link", outcome="get_no_ack", ip=ip,
                recipient=str(g["recipient_id"]) if g else "", alert_id=str(g["alert_id"]) if g else None,
                detail={"known": g is not None})


async def confirm_link(conn: asyncpg.Connection, token: str, *, now: datetime, ip: str = "",
                       limits: AckLimits = AckLimits()) -> AckOutcome:
    """The POST of the link's button: acknowledge as the recipient the token was sent to."""
    g = await _grant_by_token(conn, token)
    if g is None:
        over = await count_failure(conn, f"ip:{ip}", limits.per_ip_failures, window_s=limits.window_s,
                                   now=now)
        out = _outcome("rate_limited" if over else "unknown_token")
        await audit(conn, at=now, channel="link", outcome=out.outcome, ip=ip,
                    detail={"token_chars": len(token)})
        return out
    out = await _acknowledge_grant(conn, g, via="link", now=now, limits=limits, release=None,
                                   detail={"ip": ip, "recipient": _who(g)})
    await audit(conn, at=now, channel="link", outcome=out.outcome, ip=ip, phone=str(g["phone"]),
                recipient=str(g["recipient_id"]), alert_id=out.alert_id)
    if out.result is not None and out.result.applied and out.result.alert.acked_at is not None:
        a = out.result.alert
        metrics.TIME_TO_ACK.observe(max((a.acked_at - a.starts_at).total_seconds(), 0.0))  # type: ignore[operator]
    return out


def link_page(title: str, text: str = "", *, button: bool = False, status: int = 200) -> tuple[str, int]:
    """The link's page: Chinese, one column, large button, readable on a phone; self-contained
    (no script, no external style), so it works from any SMS app's browser."""
    form = ('<form method="post"><button type="submit">确认收到</button></form>'
            '<p class="hint">点击即表示您已收到报警短信，并将尽快处置。</p>') if button else ""
    body = f"<p>{html.escape(text)}</p>" if text else ""
    return (f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{html.escape(title)}</title><style>
body{{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:24px;
background:#f5f6f8;color:#1f2329}}main{{max-width:480px;margin:0 auto;background:#fff;border-radius:12px;
padding:24px}}h1{{font-size:1.3rem}}button{{width:100%;font-size:1.2rem;padding:16px;border:0;border-radius:8px;
background:#d4380d;color:#fff}}.hint{{color:#646a73;font-size:.9rem}}</style></head>
<body><main><h1>{html.escape(title)}</h1>{body}{form}</main></body></html>""", status)


LINK_TITLES = {
    "acknowledged": "已确认收到，谢谢",
    "already_acknowledged": "该报警此前已确认",
    "unknown_token": "链接无效",
    "closed_alert": "该报警已办结",
    "rate_limited": "尝试次数过多",
}


def link_result_page(out: AckOutcome) -> tuple[str, int]:
    """The page after the POST; the site and what happened only once acknowledged."""
    text = out.message
    if out.outcome in ("acknowledged", "already_acknowledged") and out.site:
        text = f"{out.site}：{out.summary}。{out.message}"
    return link_page(LINK_TITLES.get(out.outcome, "确认失败"), text, status=out.status)


def prune_before(now: datetime, window_s: int) -> datetime:
    """Limit windows older than this are of no use (see :func:`prune_limits`)."""
    return now - timedelta(seconds=2 * window_s)


async def prune_limits(conn: asyncpg.Connection, *, now: datetime, window_s: int) -> int:
    return await store.delete_limits_before(conn, prune_before(now, window_s))
