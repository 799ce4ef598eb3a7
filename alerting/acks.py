"""Acknowledgement per recipient: the 回复码 and link token each SMS recipient gets, the limits
against guessing, the audit, and the one way an attempt acknowledges (:func:`acknowledge_grant`).

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
length — and its segment count — does not change. A recipient's acknowledgement is kept on
their grants (``acked_at``, migration 021) even when a colleague was first: the flush sends
them no more reminders (:mod:`alerting.ack_stops`).

Open means firing and not closed: the device's 恢复 wins over an acknowledgement that races it
(the alert's row is locked for the decision, as the resolve locks it), and a closed (办结)
alert's codes and links are void.

Every attempt is audited (``inbound_audit``; a refused one that names an alert also as a
rejected ``acknowledge`` transition on the alert) with the number masked; ``acked_by`` is
``sms_reply:<recipient id>`` or ``link:<recipient id>`` — the matrix rule that chose the
recipient — never a number. Limits (fixed windows in ``inbound_limits``) are taken atomically
in one statement each: per number (reply attempts that did not acknowledge), per alert (every
attempt) and per client address (forged callbacks, unknown link tokens). A valid link token is
never held back by its address's failures: users behind one carrier NAT are not blocked by
someone else's guessing.

The SQL is :mod:`alerting.store.acks`'s. Replies (the code, or 收到/确认/1) are
:mod:`alerting.ack_reply`'s, the short link's page :mod:`alerting.ack_link`'s (served by the
console, console/routes/ack.py); the flow: docs/delivery.md, *Acknowledgement*.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from alerting import metrics
from alerting import store as alerts_store
from alerting.ack_stops import RecipientAck
from alerting.lifecycle import TransitionResult, acknowledge, record_refused_acknowledgement
from alerting.store import ACK_CODE_ALPHABET
from alerting.store import acks as store
from alerting.templates import ACK_TOKEN_LEN, KIND_ZH
from hazmon.logs import kv

if TYPE_CHECKING:
    from alerting.outbox import NewNotification

__all__ = [
    "AckLimits",
    "DEFAULT_LIMITS",
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
    "ack_outcome",
    "who",
    "acknowledge_open",
    "acknowledge_grant",
    "observe_time_to_ack",
    "recipient_acks",
]

log = logging.getLogger(__name__)
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


#: the limits when the caller names none (the settings' defaults)
DEFAULT_LIMITS = AckLimits()


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
    "no_open_alert": (404, "该号码没有待确认的报警，未作确认。"),
    "unknown_token": (404, "确认链接无效或已过期。"),
    "non_recipient": (403, "该号码未收到此报警，不能确认。"),
    "closed_alert": (409, "该报警已办结，回复码和链接已失效。"),
    "resolved_alert": (409, "该报警已恢复，无需再确认；如有疑问请致电中心值班室。"),
    "rate_limited": (429, "尝试次数过多，请稍后再试。"),
}


def ack_outcome(name: str, **kw: Any) -> AckOutcome:
    """The :class:`AckOutcome` ``name`` with its status and Chinese message."""
    status, message = _MESSAGES[name]
    return AckOutcome(name, status, message, **kw)


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


# --- acknowledging ------------------------------------------------------------------------------


def who(g: Mapping[str, Any]) -> dict[str, str]:
    """The recipient of a grant as the audit and the transition name them (number masked)."""
    return {"id": str(g["recipient_id"]), "role": str(g["recipient_role"]), "name": str(g["recipient_name"]),
            "unit": str(g["recipient_unit"]), "phone": mask_phone(str(g["phone"]))}


def observe_time_to_ack(out: AckOutcome) -> None:
    """The alarm → acknowledgement time of an attempt that acknowledged the alert."""
    if out.result is not None and out.result.applied and out.result.alert.acked_at is not None:
        a = out.result.alert
        metrics.TIME_TO_ACK.observe(max((a.acked_at - a.starts_at).total_seconds(), 0.0))  # type: ignore[operator]


async def acknowledge_open(conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, via: str,
                           reason: str, detail: Mapping[str, Any]) -> tuple[str, TransitionResult | None]:
    """Acknowledge ``alert_id`` only while it is open, deciding with its row locked (inside the
    caller's transaction): ``resolved_alert`` (a rejected transition, reason 报警已恢复, no
    result) once the device recovered, else what :func:`alerting.lifecycle.acknowledge` did —
    ``acknowledged``, ``already_acknowledged`` or ``closed_alert``. Every way of acknowledging
    as a recipient goes through here (reply, link, a call's key 1), so the 恢复 wins each race."""
    row = await alerts_store.lock_alert(conn, alert_id)
    if row is not None and row["state"] != "firing" and row["phase"] != "closed":
        await record_refused_acknowledgement(conn, alert_id, actor=actor, now=now, via=via,
                                             problem="报警已恢复", detail=detail)
        return "resolved_alert", None
    result = await acknowledge(conn, alert_id, actor=actor, now=now, via=via, reason=reason, detail=detail)
    if result.alert.phase.value == "closed":
        return "closed_alert", result
    return ("acknowledged" if result.applied else "already_acknowledged"), result


async def acknowledge_grant(conn: asyncpg.Connection, g: Mapping[str, Any], *, via: str, now: datetime,
                            limits: AckLimits, release: str | None, detail: Mapping[str, Any],
                            reason: str = "") -> AckOutcome:
    """Acknowledge the alert of grant ``g`` as its recipient (``{via}:{recipient id}``).

    One transaction with the alert's row locked for the decision, as the resolve (the device's
    恢复, :func:`alerting.store.record_events`) and the close lock it: whichever comes first
    wins, so an acknowledgement that arrives after the 恢复 is refused (``resolved_alert``), one
    after the 办结 too (``closed_alert``), each a rejected ``acknowledge`` transition. Applied,
    or a colleague was first: the recipient's grants of the alert are marked acknowledged (no
    more reminders to them, :mod:`alerting.ack_stops`) and ``release`` — the number's attempt —
    is given back."""
    alert_id = str(g["alert_id"])
    if not await take_limit(conn, f"alert:{alert_id}", limits.per_alert_attempts, window_s=limits.window_s,
                            now=now):
        return ack_outcome("rate_limited", alert_id=alert_id)
    actor = f"{via}:{g['recipient_id']}"
    reason = reason or ("回复码确认" if via == "sms_reply" else "短链接确认")
    async with conn.transaction():
        name, result = await acknowledge_open(conn, alert_id, actor=actor, now=now, via=via, reason=reason,
                                              detail=detail)
        if result is None or name == "closed_alert":
            return ack_outcome(name, alert_id=alert_id, result=result)
        await store.mark_grants_acked(conn, alert_id, str(g["phone"]), via=via, at=now)
    if release:  # acknowledged, or the recipient answered twice, or a colleague was first: not a guess
        await give_back(conn, release, window_s=limits.window_s, now=now)
    info = await store.alert_kind_site(conn, alert_id)
    # what happened in the operators' words (电梯困人), not the detector's summary ("设备上报 trapped")
    site, summary = (info[1], KIND_ZH.get(info[0], "报警")) if info else ("", "")
    name = "acknowledged" if result.applied else "already_acknowledged"
    return ack_outcome(name, alert_id=alert_id, result=result, site=site, summary=summary)


async def recipient_acks(conn: asyncpg.Connection, alert_ids: Sequence[str]) -> dict[str, list[RecipientAck]]:
    """Who acknowledged which of ``alert_ids`` (by alert): what stops their reminders
    (:mod:`alerting.ack_stops`)."""
    out: dict[str, list[RecipientAck]] = {}
    for r in await store.recipient_acks(conn, alert_ids):
        out.setdefault(str(r["alert_id"]), []).append(RecipientAck(
            str(r["alert_id"]), str(r["recipient_id"]), str(r["recipient_role"]), str(r["recipient_unit"]),
            str(r["phone"]), r["acked_at"], str(r["acked_via"] or "")))
    return out


def prune_before(now: datetime, window_s: int) -> datetime:
    """Limit windows older than this are of no use (see :func:`prune_limits`)."""
    return now - timedelta(seconds=2 * window_s)


async def prune_limits(conn: asyncpg.Connection, *, now: datetime, window_s: int) -> int:
    return await store.delete_limits_before(conn, prune_before(now, window_s))
