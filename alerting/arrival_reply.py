"""维保单位报到场 by SMS: a reply 到场 (已到场, 到达 …) records the lift company's arrival.

The 维保单位's trapped-passenger SMS says 到场后回复“到场” (alerting/templates/lift.py). A reply
that is such a word (:func:`is_arrival_word`) from a number that received a lift alarm **as its
维保单位** (its 回复码 grant has role ``maintainer``) records 到场 for that number's **most
recently sent open** alarm with a 到场 timer (alerting/arrival.py :func:`record_arrival`): the
actor is ``sms_arrival:<recipient>`` — the matrix rule that chose them, which the console names
短信报到场（姓名·单位） — the timer stops, the timeline says how long it took, and the number's
grants of that alarm count as acknowledged (it was read: no more reminders to it). Only the most
recent: a company at two trapped lifts phones the centre for the other, and its confirmation
says so (``arrival.confirm.more``).

Answers: ``arrived`` / ``already_arrived`` (recorded before, by this SMS or by the centre) get
the confirmation SMS ``arrival.confirm`` — which lift, when, the time taken — at most once per
number and alarm (its outbox id is deterministic). Refusals: ``not_maintainer`` (the number was
told of the alarm, but not as its 维保单位: a 使用单位 cannot report the company's arrival),
``no_open_lift_alarm`` (no open alarm of this number has a 到场 timer: none, closed, a lift
fault), ``arrival_refused`` (:func:`record_arrival` refused, e.g. closed meanwhile) and
``rate_limited``: each an ``inbound_audit`` row (channel ``sms_reply``, ``by: arrival_word``) and
a Chinese message to the gateway. A refused number that hazmon has sent a 回复码 before gets
``arrival.refused`` (nothing recorded; it names no alarm), at most once a day; a stranger's
number gets no SMS. A refusal counts against the number's reply limit, an arrival does not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from alerting.acks import AckLimits, AckOutcome, ack_outcome, audit, give_back, mask_phone, take_limit, who
from alerting.arrival import record_arrival
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.store import acks as ack_store
from alerting.store import arrival as store
from alerting.templates import CST, KIND_ZH, TEMPLATES, Deployment, format_when, render
from alerting.templates.lift import ARRIVAL_CONFIRM, ARRIVAL_REFUSED
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole

if TYPE_CHECKING:
    from alerting.ack_reply import ReplyConfirm

__all__ = ["ACTOR", "MESSAGES", "is_arrival_word", "handle_arrival"]

#: the actor prefix of a 到场 reported by SMS (console/actors.py: 短信报到场)
ACTOR = "sms_arrival"
#: 到场 / 已到场 / 到达 as typed: a polite lead, 我/我们, 已(经), the word, 现场, a trailing 了/啦 —
#: after NFKC and without spaces and punctuation (never 未到场, 没到, 到场超时)
_WORD = re.compile(r"(?:好的|好|嗯|ok)?(?:我|我们|维保)?(?:已经|已)?(?:到场|到达现场|到达|到现场)(?:了|啦)?",
                   re.IGNORECASE)
_NOISE = re.compile(r"[\s\u3000,.!?;:~，。！？；：、～…·\"'“”‘’()（）\[\]【】]+")
MESSAGES: dict[str, tuple[int, str]] = {
    "not_maintainer": (403, "到场由维保单位回复，本号码不是该报警的维保单位，未记录到场。"),
    "no_open_lift_alarm": (404, "该号码没有待到场的电梯困人报警，未记录到场。"),
}


def is_arrival_word(text: str) -> bool:
    """Whether a reply without a code reports the 维保单位's arrival (到场, 已到场, 到达, 到场了 …)."""
    t = _NOISE.sub("", unicodedata.normalize("NFKC", text))
    return bool(t) and _WORD.fullmatch(t) is not None


def _outcome(name: str, **kw: Any) -> AckOutcome:
    status, message = MESSAGES[name]
    return AckOutcome(name, status, message, **kw)


async def handle_arrival(conn: asyncpg.Connection, *, provider: str, phone: str, text: str, now: datetime,
                         limits: AckLimits, ip: str, confirm: ReplyConfirm) -> AckOutcome:
    """A reply 到场 from ``phone`` (normalized): record, audit, store the reply, answer by SMS."""
    key = f"phone:{phone}"
    grant: Mapping[str, Any] | None = None
    more = 0
    detail: dict[str, Any] = {"by": "arrival_word", "word": text.strip()[:20]}
    if not await take_limit(conn, key, limits.per_phone_failures, window_s=limits.window_s, now=now):
        out = ack_outcome("rate_limited")
    else:
        held = await store.timed_grants_of_phone(conn, phone)
        mine = [g for g in held if g["recipient_role"] == RecipientRole.MAINTAINER.value]
        if mine:
            grant, more = mine[0], len(mine) - 1
            out = await _record(conn, grant, now=now, word=detail["word"])
            if more:
                detail.update(latest_of=len(mine), others=[str(g["alert_id"]) for g in mine[1:]])
        elif held:
            grant = held[0]
            out = _outcome("not_maintainer", alert_id=str(grant["alert_id"]))
        else:
            out = _outcome("no_open_lift_alarm")
        if grant is not None:
            detail["recipient"] = who(grant)
        if out.outcome in ("arrived", "already_arrived"):
            await give_back(conn, key, window_s=limits.window_s, now=now)
    rid = str(grant["recipient_id"]) if grant is not None else ""
    await audit(conn, at=now, channel="sms_reply", provider=provider, outcome=out.outcome, ip=ip, phone=phone,
                recipient=rid, alert_id=out.alert_id, detail={"message": out.message, **detail})
    await ack_store.insert_sms_reply(conn, provider=provider, phone_masked=mask_phone(phone),
                                     text_masked=mask_phone(text[:500]), at=now, alert_id=out.alert_id,
                                     outcome=out.outcome, recipient=rid)
    if not confirm.enabled or out.outcome == "rate_limited":
        return out
    if out.outcome in ("arrived", "already_arrived") and grant is not None:
        await _confirmation(conn, grant, more=more, now=now, confirm=confirm)
    elif (told := grant or await store.latest_grant_of_phone(conn, phone)) is not None:
        await _refusal(conn, told, now=now, confirm=confirm)
    return out


async def _record(conn: asyncpg.Connection, g: Mapping[str, Any], *, now: datetime, word: str) -> AckOutcome:
    alert_id = str(g["alert_id"])
    site, what = str(g["site"]), KIND_ZH.get(str(g["kind"]), "电梯困人")
    if g["arrived_at"] is not None:
        return AckOutcome("already_arrived", 200, f"{site}的{g['loc']}的维保到场已于{format_when(g['arrived_at'])}"
                          "记录，无需重复回复。", alert_id=alert_id, site=site, summary=what)
    person = "·".join(x for x in (str(g["recipient_name"]), str(g["recipient_unit"])) if x)
    res = await record_arrival(conn, alert_id, actor=f"{ACTOR}:{g['recipient_id']}", now=now,
                               note=f"短信回复“{word}”（{person}）")
    if not res.applied:
        return AckOutcome("arrival_refused", 409, f"未记录到场：{res.problem}。", alert_id=alert_id, result=res,
                          site=site, summary=what)
    await ack_store.mark_grants_acked(conn, alert_id, str(g["phone"]), via=ACTOR, at=now)
    minutes = int((now - g["started_at"]).total_seconds() // 60)
    return AckOutcome("arrived", 200, f"已记录维保单位到场：{site}的{g['loc']}，用时{minutes}分钟。",
                      alert_id=alert_id, result=res, site=site, summary=what)


def _recipient(g: Mapping[str, Any]) -> Recipient:
    try:
        role = RecipientRole(str(g["recipient_role"]))
    except ValueError:
        role = RecipientRole.BUSINESS
    return Recipient(role=role, name=str(g["recipient_name"]), unit=str(g["recipient_unit"]),
                     phone=str(g["phone"]), rule=str(g["recipient_id"]))


async def _send(conn: asyncpg.Connection, name: str, params: Mapping[str, str], *, alert_id: str, key: str,
                r: Recipient, now: datetime, confirm: ReplyConfirm) -> list[str]:
    """Queue one answer; ``key`` makes its outbox id (the same key, the same row: sent once).
    ``alert_id`` "" for an answer about no alarm (stored NULL, as a broadcast's)."""
    body, sent = render(name, params, sign_name=confirm.sign_name, max_segments=confirm.max_segments,
                        provider=confirm.provider, deployment=Deployment(duty_phone=confirm.duty_phone))
    req = NotificationRequest(id=notification_id(alert_id or key, r, 0, f"sms:{key}"), alert_id=alert_id,
                              channel="sms", recipient=r, template=TEMPLATES[name].kind, body=body,
                              created_at=now)
    return await enqueue(conn, [NewNotification(req, sent)], now=now)


async def _confirmation(conn: asyncpg.Connection, g: Mapping[str, Any], *, more: int, now: datetime,
                        confirm: ReplyConfirm) -> list[str]:
    """``arrival.confirm`` to the 维保单位, once per number and alarm; the arrival's own time and
    minutes (recorded by this reply, or before it by the centre)."""
    timer = await store.arrival_of(conn, str(g["alert_id"]))
    if timer is None or timer["arrived_at"] is None:
        return []
    at = timer["arrived_at"]
    params = {"unit": str(g["site"]), "loc": str(g["loc"]), "what": KIND_ZH.get(str(g["kind"]), "电梯困人"),
              "at": format_when(at), "minutes": str(int((at - timer["started_at"]).total_seconds() // 60)),
              "more": str(more)}
    name = f"{ARRIVAL_CONFIRM}.more" if more else ARRIVAL_CONFIRM
    return await _send(conn, name, params, alert_id=str(g["alert_id"]), r=_recipient(g), key=ARRIVAL_CONFIRM,
                       now=now, confirm=confirm)


async def _refusal(conn: asyncpg.Connection, g: Mapping[str, Any], *, now: datetime, confirm: ReplyConfirm
                   ) -> list[str]:
    """``arrival.refused`` to a number hazmon has told before, at most once a day (CST)."""
    day = now.astimezone(CST).date().isoformat()
    return await _send(conn, ARRIVAL_REFUSED, {}, alert_id="", r=_recipient(g),
                       key=f"{ARRIVAL_REFUSED}:{day}", now=now, confirm=confirm)
