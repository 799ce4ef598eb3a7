"""The escalation pass: issue the 四单 notices that fell due (工作提醒单 → 风险警示单 → 问题督办单 →
问责建议单), the I/O around :func:`alerting.escalation.decide`.

Each alert whose timer (``alerts.next_escalation_at``) is due is one transaction: lock it, let
an alert that follows its group's lead take the lead's timer (:func:`~alerting.escalation.follow_lead`:
one ladder per group), else decide the ladder at ``now``, and for each step issued store the
notice in the issuer's name (routes.yaml ``notice_issuer``) with its register rows per unit
(通知单台账, :mod:`alerting.store.notice_register`), queue its texts
(:func:`alerting.compose.notice_message`: never to a business) and audit it. The SQL is
:mod:`alerting.store.escalations`'s; a restart finds every step that fell due meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from alerting import metrics, store
from alerting.compose import ComposeContext, PriorNotice, notice_addressees, notice_message
from alerting.escalation import EscalationState, decide, follow_lead, notice_reason
from alerting.matrix import Responsibility, resolve
from alerting.notify.voice import VOICE_TEMPLATES, render_script, tts_params
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.quiet import hold
from alerting.store import notice_register as register
from alerting.store import voice as voice_store
from alerting.templates import format_when
from hazmon.contracts import NoticeLevel, NotificationRequest, Recipient, RecipientRole
from hazmon.logs import kv

__all__ = ["escalate", "escalate_due", "voice_due", "voice_escalate_due"]

log = logging.getLogger(__name__)


async def escalate(pool: asyncpg.Pool, ctx: ComposeContext, alert_id: str, now: datetime) -> int:
    """The ladder of one alert whose timer fell due, in one transaction. Returns notices issued."""
    async with pool.acquire() as conn, conn.transaction():
        a = await store.lock_due_escalation(conn, alert_id, now)
        if a is None:
            return 0
        led, lead_next_at = await store.group_lead_timer(conn, a)
        if led and a.group_key:  # one ladder per group: it follows the lead's timer
            await store.set_next_escalation(conn, a.id, follow_lead(lead_next_at, now))
            return 0
        # a late or mis-clocked alarm's ladder counts from its report, not its device time
        state = EscalationState(a.starts_at, a.phase, a.acknowledged, a.verdict, a.escalation_step,
                                a.timer_factor, clock_from=a.clock_from)
        d = decide(state, ctx.config.policy(a.severity), now)
        issued = 0
        for _idx, step, deadline in d.issue:
            resp = resolve(ctx.registry, site_id=a.site_id, domain=a.domain)
            recipients, refused = notice_addressees(
                resp.for_roles(step.roles, duty_operator=ctx.config.duty_operator))
            if refused:  # routes.yaml refuses such a ladder; a config built otherwise is logged
                log.warning("notice not sent to a business %s", kv(alert=a.id, level=step.level.value,
                                                                    refused=[r.rule for r in refused]))
            reason = notice_reason(step, a.timer_factor, format_when(a.clock_from))
            nid = await store.insert_notice(conn, a.id, step.level, now=now, deadline=deadline,
                                            recipients=recipients, reason=reason,
                                            issued_by=ctx.config.notice_issuer)
            if nid is None:
                continue  # already issued (a replayed timer)
            township = ctx.registry.townships.get(resp.township_id)
            await register.insert_notice_units(
                conn, nid, register.units_of(recipients, resp.township_id, township.name if township else ""))
            prior = await _prior(conn, ctx, a.id, step.level, resp) \
                if step.level is NoticeLevel.ACCOUNTABILITY else None
            if prior is not None:
                await register.set_concerning(conn, nid, prior[1])
            open_in_group = await store.open_firing_in_group(conn, a.group_key)
            msg = notice_message(ctx, a, step, deadline, recipients, open_in_group, nid, now,
                                 prior[0] if prior else None)
            # 夜间免扰: a yellow or blue alarm's notice waits for the morning digest like its alarm
            quiet = ctx.config.route.match(a.labels)[0].quiet_hours
            inserted = await enqueue(conn, hold(msg.items, quiet, a.severity, now), now=now)
            await store.insert_escalate_transition(conn, a, step.level, now=now, notice_id=nid,
                                                   deadline=deadline, inserted=inserted,
                                                   recipients=recipients)
            metrics.ESCALATIONS.labels(step.level.value).inc()
            log.info("escalated %s", kv(alert=a.id, level=step.level.value, recipients=len(recipients)))
            issued += 1
        await store.set_escalation(conn, a.id, d.escalation_step, d.next_at, now)
        return issued


async def _prior(conn: asyncpg.Connection, ctx: ComposeContext, alert_id: str, level: NoticeLevel,
                 resp: Responsibility) -> tuple[PriorNotice, list[dict[str, str]]]:
    """What a 问责建议单 names: the notice before it and its townships and departments that have
    not had their part closed; when none came before (the lower steps were skipped), the
    alarm's township and departments from the 责任矩阵."""
    found = await register.prior_notice(conn, alert_id, level.step)
    units = found[2] if found else []
    if not units:
        t = ctx.registry.townships.get(resp.township_id)
        units = ([{"kind": "township", "id": t.id, "name": t.name}] if t else []) + [
            {"kind": "department", "id": d, "name": ctx.registry.departments[d].name}
            for d in resp.department_ids if d in ctx.registry.departments]
    failed = "、".join(u["name"] for u in units)
    if found is None:
        return PriorNotice(None, None, failed), units
    return PriorNotice(NoticeLevel(found[0]), found[1], failed), units


async def escalate_due(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, *, concurrency: int = 4,
                       on_issued: Callable[[], object] = lambda: None) -> int:
    """Every alert whose timer fell due by ``now``, ``concurrency`` at a time; one that fails is
    logged and counted, the others go on. ``on_issued`` is called as soon as a transaction that
    issued notices committed (it wakes the sender). Returns notices issued."""
    sem = asyncio.Semaphore(concurrency)
    issued = 0

    async def one(alert_id: str) -> None:
        nonlocal issued
        async with sem:
            try:
                n = await escalate(pool, ctx, alert_id, now)
            except Exception:
                metrics.ERRORS.labels("escalate").inc()
                log.exception("escalation failed %s", kv(alert=alert_id))
                return
            issued += n
            if n:
                on_issued()

    seen: set[str] = set()
    for _ in range(50):
        ids = [i for i in await store.due_escalations(pool, now) if i not in seen]
        if not ids:
            break
        seen.update(ids)
        await asyncio.gather(*(one(i) for i in ids))
    return issued

# --- voice escalation (语音通知): routes.yaml ``voice_after`` and calls that were never answered ---


def voice_due(starts_at: datetime, voice_after: timedelta | None, now: datetime) -> bool:
    """Whether a red alarm still unacknowledged is due its voice calls: its route sets
    ``voice_after`` and that long has passed since it started."""
    return voice_after is not None and now - starts_at >= voice_after


def _voice_item(alert_id: str, recipient: Recipient, template: str, params: dict[str, str], step: int,
                key: str, now: datetime) -> NewNotification:
    tpl = VOICE_TEMPLATES[template]
    body = render_script(tpl, tts_params(tpl, params, "aliyun"))
    req = NotificationRequest(id=notification_id(alert_id, recipient, step, key), alert_id=alert_id,
                              channel="voice", recipient=recipient, template=template, body=body,
                              created_at=now)
    return NewNotification(req, params, priority=1)


async def voice_escalate_due(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, *,
                             on_issued: Callable[[], object] = lambda: None) -> int:
    """Queue the voice calls that fell due, in one transaction: every SMS recipient of a red
    alarm unacknowledged ``voice_after`` after it started (its route's), and the centre's duty
    operator for every call given up ("未接通", alerting/voice_inbound.py) of an alert still
    open. Idempotent (deterministic ids). Returns calls queued."""
    after = {r.id: r.voice_after for r in ctx.config.route.walk() if r.voice_after}
    items: list[NewNotification] = []
    async with pool.acquire() as conn, conn.transaction():
        if after:
            for r in await voice_store.unacked_red_recipients(conn, list(after)):
                if not voice_due(r["starts_at"], after.get(r["route_id"]), now):
                    continue
                who = Recipient(role=RecipientRole(r["recipient_role"]), name=r["recipient_name"],
                                unit=r["recipient_unit"], phone=r["recipient_phone"], rule=r["rule"])
                items.append(_voice_item(r["alert_id"], who, "voice_alarm", _params(r["params"]), 90,
                                         "voice_alarm", now))
        duty = ctx.config.duty_operator
        for f in await voice_store.given_up_calls(conn):
            params = {**_params(f["params"]), "who": f"{f['recipient_unit']}{f['recipient_name']}",
                      "_after": f["id"]}
            items.append(_voice_item(f["alert_id"], duty, "voice_unanswered", params, 91,
                                     f"voice_unanswered|{f['id']}", now))
            log.warning("voice call given up: calling the duty operator %s",
                        kv(alert=f["alert_id"], notification=f["id"], error=f["last_error"][:120]))
        inserted = await enqueue(conn, items, now=now) if items else []
    if inserted:
        log.info("voice escalation queued %s", kv(calls=len(inserted)))
        on_issued()
    return len(inserted)


def _params(raw: object) -> dict[str, str]:
    data = json.loads(raw) if isinstance(raw, str) else dict(raw or {})  # type: ignore[call-overload]
    return {str(k): str(v) for k, v in data.items() if not str(k).startswith("_")}
