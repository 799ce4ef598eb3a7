"""到场: the 维保单位's time to arrival at a trapped-passenger alarm, and what a missed limit does.

TSG T5002-2017 (电梯维护保养规则): on a report of trapped passengers the maintenance company's
people reach the lift within 30 minutes in a city district (设区的市). hazmon tracks it:

* **start** — when a trapped-passenger alarm (``elevator.trapped``) is first told to the lift's
  维保单位 (its ``maintainer`` notification is queued), a timer starts, due ``lift.arrival_limit_min``
  later (:func:`start_timers`). The timer is a row of ``lift_arrivals`` (alerting/store/arrival.py):
  a restart of alerting neither loses nor moves it.
* **到场** — the company replies 到场 to its SMS (alerting/arrival_reply.py, actor
  ``sms_arrival:<recipient>``), or phones the centre's duty room and the duty operator records
  it on the console (``POST /api/alerts/{id}/arrival``, button 维保到场): :func:`record_arrival`,
  an ``arrival`` entry on the alert's timeline naming who recorded it and the time taken; a
  second one is refused and recorded.
* **missed** — a timer past due with no 到场 while the alarm still fires escalates once
  (:func:`escalate_overdue`): an SMS (and a call to a landline, the robots of a unit) to the
  township's duty room (属地), the regulator (行业监管, 市监) and the centre's duty operator — text
  ``arrival.overdue`` naming the company and the limit, with the lift emergency number — and an
  ``arrival_overdue`` entry on the timeline. A resolved alarm (困人解除) no longer escalates.

:func:`overdue` is the pure decision; the rest is its I/O, each pass in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from alerting import store
from alerting.compose import ComposeContext, info, outbox_items, params
from alerting.errors import NotFound
from alerting.lifecycle import TransitionResult
from alerting.matrix import resolve
from alerting.outbox import NewNotification, enqueue
from alerting.store import arrival as arrival_store
from alerting.templates import ACK_TOKEN_LEN, PROVIDERS, format_when, render
from alerting.templates.lift import OVERDUE
from hazmon.contracts import RecipientRole
from hazmon.logs import kv

__all__ = ["ArrivalPolicy", "KIND", "STEP", "overdue", "start_timers", "record_arrival", "escalate_overdue",
           "overdue_message"]

log = logging.getLogger(__name__)

#: the outbox kind (``notifications.template``) of the escalation, and its step in the ids
KIND = "arrival_overdue"
STEP = 80
#: who hears of a missed arrival: 属地, 行业监管 and the centre's duty operator
ESCALATE_TO = (RecipientRole.TOWNSHIP, RecipientRole.DEPARTMENT, RecipientRole.DUTY_OPERATOR)


@dataclass(frozen=True, slots=True)
class ArrivalPolicy:
    """``limit``: the 维保单位 is on site within this long (``lift.arrival_limit_min``, 30 min)."""

    limit: timedelta = timedelta(minutes=30)

    @property
    def minutes(self) -> int:
        return int(self.limit.total_seconds() // 60)


def _by(actor: str) -> str:
    """Who recorded a 到场, for a refusal's words: the company's own SMS in words, else the actor."""
    return "维保单位短信回复" if actor.startswith("sms_arrival:") else actor


def overdue(due_at: datetime, arrived_at: datetime | None, escalated_at: datetime | None, now: datetime) -> bool:
    """Whether a timer escalates now: past due, nobody arrived, not escalated yet."""
    return arrived_at is None and escalated_at is None and now >= due_at


async def start_timers(conn: asyncpg.Connection, policy: ArrivalPolicy) -> int:
    """Start the timer of every trapped-passenger alarm told to its 维保单位 (idempotent)."""
    n = await arrival_store.start_arrival_timers(conn, policy.limit)
    if n:
        log.info("lift arrival timers started %s", kv(timers=n, limit_min=policy.minutes))
    return n


async def record_arrival(conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime,
                         expected_version: int | None = None, note: str = "") -> TransitionResult:
    """维保到场, recorded by ``actor`` (the centre's duty operator on the console, or the company's
    own SMS reply ``sms_arrival:<recipient>``): stops the timer,
    an ``arrival`` entry on the timeline with the time taken. Refused (and recorded) when the alert
    has no timer, the company's arrival is recorded already, or the alert is closed."""
    async with conn.transaction():
        row = await store.lock_alert(conn, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id!r}")
        timer = await arrival_store.lock_arrival(conn, alert_id)
        problem = ""
        if expected_version is not None and expected_version != row["version"]:
            problem = f"报警已被他人更新（版本 {row['version']}），请刷新后再记录"
        elif timer is None:
            problem = "该报警没有维保到场计时（不是已通知维保单位的电梯困人报警）"
        elif timer["arrived_at"] is not None:
            problem = f"维保到场已由{_by(timer['arrived_by'])}于{format_when(timer['arrived_at'])}记录"
        elif row["phase"] == "closed":
            problem = "报警已办结"
        if problem:
            tid = await store.insert_transition(conn, alert_id, "arrival", row["phase"], row["phase"], "rejected",
                                                actor, now, problem, version=row["version"], note=note,
                                                detail={"problem": problem})
            return TransitionResult(False, store.AlertRecord.from_row(row), tid, problem)
        assert timer is not None
        await arrival_store.mark_arrived(conn, alert_id, now, actor)
        new = await store.update_alert(conn, alert_id, {"updated_at": now})  # a new version: pages re-render
        taken = int((now - timer["started_at"]).total_seconds() // 60)
        late = now > timer["due_at"]
        limit = int((timer["due_at"] - timer["started_at"]).total_seconds() // 60)
        reason = (f"维保单位到场，用时{taken}分钟" + (f"，超过{limit}分钟时限" if late else f"（{limit}分钟时限内）"))
        tid = await store.insert_transition(
            conn, alert_id, "arrival", row["phase"], row["phase"], "applied", actor, now, reason,
            version=new["version"], note=note,
            detail={"maintainer_id": timer["maintainer_id"], "minutes": taken, "limit_min": limit, "late": late})
        log.info("lift arrival recorded %s", kv(alert=alert_id, actor=actor, minutes=taken, late=late))
        return TransitionResult(True, store.AlertRecord.from_row(new), tid)


def overdue_message(ctx: ComposeContext, alert: store.AlertRecord, company: str, limit_min: int,
                    now: datetime) -> list[NewNotification]:
    """The rows of one missed-arrival escalation: the SMS (with the link where the provider takes
    it) on every channel of the township, the regulator and the duty operator, and the duty
    desk's console entry."""
    resp = resolve(ctx.registry, site_id=alert.site_id, domain=alert.domain, device_id=alert.device_id)
    recipients = resp.for_roles(ESCALATE_TO, duty_operator=ctx.config.duty_operator)
    p = {**params(ctx, alert, 1), "company": company, "limit": str(limit_min)}
    todo = f"督促维保单位{company}立即到场救援，已超过{limit_min}分钟未到场"
    extra = {**info(ctx, alert, p, "sup"), "todo": todo}
    link_ok = bool(ctx.ack_base_url) and PROVIDERS[ctx.provider].var_max >= ACK_TOKEN_LEN
    items: list[NewNotification] = []
    for link in (link_ok, False):
        body, sent = render(OVERDUE + ("_l" if link else ""), p, sign_name=ctx.sign_name,
                            max_segments=ctx.config.sms_max_segments, provider=ctx.provider,
                            deployment=ctx.deployment)
        items += outbox_items(ctx, alert.id, recipients, ("sms", "console"), STEP, KIND, KIND, body,
                              {**extra, **sent}, None, alert.group_key, 1, now, sms=link is link_ok,
                              others=not link, other_params=extra)
        if not link_ok:
            break
    return items


async def escalate_overdue(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, policy: ArrivalPolicy, *,
                           on_issued: Callable[[], object] = lambda: None) -> int:
    """Start the timers due to start, then escalate every one past its limit, in one
    transaction: queue :func:`overdue_message`, mark it escalated, and put ``arrival_overdue`` on
    the alert's timeline. Returns escalations issued."""
    issued = 0
    async with pool.acquire() as conn, conn.transaction():
        await start_timers(conn, policy)
        for row in await arrival_store.overdue_arrivals(conn, now):
            if not overdue(row["due_at"], None, None, now):
                continue
            alert = store.AlertRecord.from_row(row)
            company = ctx.registry.maintainers.get(row["maintainer_id"])
            name = company.name if company else row["maintainer_id"]
            limit_min = int((row["due_at"] - row["started_at"]).total_seconds() // 60)
            items = overdue_message(ctx, alert, name, limit_min, now)
            inserted = await enqueue(conn, items, now=now)
            await arrival_store.mark_arrival_escalated(conn, alert.id, now)
            new = await store.update_alert(conn, alert.id, {"updated_at": now})  # the board and page refresh
            reason = f"维保单位{name}超过{limit_min}分钟未到场，已通知属地镇街、行业监管部门和中心值班员"
            whom = sorted({f"{i.request.recipient.unit or i.request.recipient.name}" for i in items})
            await store.insert_transition(conn, alert.id, KIND, alert.phase.value, alert.phase.value, "applied",
                                          "system", now, reason, version=new["version"],
                                          detail={"maintainer_id": row["maintainer_id"], "limit_min": limit_min,
                                                  "notifications": inserted, "recipients": whom})
            log.warning("lift arrival overdue %s", kv(alert=alert.id, maintainer=row["maintainer_id"],
                                                      limit_min=limit_min, queued=len(inserted)))
            issued += 1
    if issued:
        on_issued()
    return issued
