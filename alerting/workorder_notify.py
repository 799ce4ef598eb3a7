"""工单's timer pass (the timers loop, beside escalation's and 到场's): tell each new order to its
person, tell a 退回 order's person why, remind the assignee at the deadline, then tell the
centre's duty operator and the alarm's 责任领导 (alerting/workorders.py decides which, when).

Every message goes through the outbox (alerting/outbox.py) on the person's own channels
(:func:`alerting.reach.channel_items`: SMS to a mobile, a unit's group robot; a person no channel
reaches becomes a 未送达 row and a note to the duty operator), each SMS with the recipient's own
回复码 and link (alerting/acks.py: the link opens the alarm for that recipient). Row ids are
deterministic per order and step: a pass replayed after a crash queues nothing twice.

Cheap when nothing is due: one index probe (``work_orders_due``) outside any transaction; only
then a transaction locks the due orders (``SKIP LOCKED``: two alerting processes never take one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from alerting import store
from alerting.compose import ComposeContext, outbox_items, params
from alerting.matrix import resolve
from alerting.outbox import NewNotification, enqueue
from alerting.store import workorders as wstore
from alerting.templates import ACK_TOKEN_LEN, PROVIDERS, format_when, render
from alerting.templates.workorders import ISSUE, KIND, OVERDUE, REMIND, RETURNED
from alerting.workorder_steps import timer_of
from alerting.workorders import due_action, next_due
from hazmon.contracts import Recipient, RecipientRole
from hazmon.logs import kv

__all__ = ["STEP", "notify_due_orders", "order_messages", "run"]

log = logging.getLogger(__name__)

#: the notice step of work-order rows in their ids (alerting/outbox.py notification_id)
STEP = 90
_TEMPLATE = {"issue": ISSUE, "remind": REMIND, "returned": RETURNED, "escalate": OVERDUE}
_NEXT_STEP = {"issue": 1, "remind": 2, "escalate": 3}
#: what a call (a landline duty room) or a robot says is to be done, per step
_TODO = {"issue": "于{deadline}前到场处置，并在监测平台签到、反馈", "remind": "尽快到场处置并反馈，处置时限{deadline}已过",
         "returned": "重新处置并于{deadline}前反馈，上次反馈未通过审核", "escalate": "督促{person}处置，工单已超时未反馈"}
_WORDS = {"issue": "已通知接单人", "remind": "已过处置时限，已提醒接单人", "returned": "已通知接单人退回原因",
          "escalate": "超时未反馈，已通知中心值班员和责任领导"}


def _recipients(row: Mapping[str, Any]) -> list[Recipient]:
    raw = row["recipients"]
    return [Recipient.model_validate(r) for r in (json.loads(raw) if isinstance(raw, str) else raw)]


def order_messages(ctx: ComposeContext, alert: store.AlertRecord, row: Mapping[str, Any], action: str,
                   now: datetime) -> list[NewNotification]:
    """The outbox rows of one step of an order's timers (pure)."""
    p = {**params(ctx, alert, 1), "deadline": format_when(row["deadline"]),
         "person": row["assignee_name"] or row["unit_name"], "why": row["return_reason"] or "未说明"}
    if action == "escalate":
        resp = resolve(ctx.registry, site_id=alert.site_id, domain=alert.domain, device_id=alert.device_id)
        whom = list(resp.for_roles((RecipientRole.LEADER, RecipientRole.DUTY_OPERATOR),
                                   duty_operator=ctx.config.duty_operator))
    else:
        whom = _recipients(row)
    link = bool(ctx.ack_base_url) and PROVIDERS[ctx.provider].var_max >= ACK_TOKEN_LEN
    name = _TEMPLATE[action] + ("_l" if link else "")
    body, sent = render(name, p, sign_name=ctx.sign_name, max_segments=ctx.config.sms_max_segments,
                        provider=ctx.provider, deployment=ctx.deployment)
    extra = {"site": p["unit"], "device": p["loc"], "what": p["what"], "deadline": p["deadline"],
             "order": row["id"], "code": p["code"], "todo": _TODO[action].format(**p)}
    # the key names the order, the step and when: a 退回 may come twice, and gives a new deadline
    # whose reminder and escalation are new ones too
    at = (row["returned_at"] if action == "returned" and row["returned_at"] else row["deadline"]).isoformat()
    tkey = f"{KIND}:{row['id']}:{action}:{at}"
    return outbox_items(ctx, alert.id, whom, ("sms",), STEP, KIND, tkey, body, {**extra, **sent}, None,
                        alert.group_key or "", 1, now)


async def notify_due_orders(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime,
                            on_queued: Callable[[], object] = lambda: None, *, limit: int = 100) -> int:
    """Queue what the orders' timers owe at ``now``; returns the orders handled. ``on_queued``
    wakes the sender once rows were queued (the service's ``send_wake``)."""
    async with pool.acquire() as conn:
        if not await wstore.any_due(conn, now):
            return 0
        handled = queued = 0
        async with conn.transaction():
            for row in await wstore.lock_due(conn, now, limit):
                timer = timer_of(row)
                action = due_action(timer, now)
                alert = await store.fetch_alert(conn, row["alert_id"])
                cols: dict[str, Any] = {}
                if action is not None and alert is not None and alert.phase.value != "closed":
                    items = order_messages(ctx, alert, row, action, now)
                    inserted = await enqueue(conn, items, now=now)
                    queued += len(inserted)
                    whom = sorted({i.request.recipient.unit or i.request.recipient.name for i in items})
                    if action == "returned":
                        cols["return_told_at"] = now
                    else:
                        cols["notify_step"] = _NEXT_STEP[action]
                    if action == "issue":
                        cols["notified_at"] = now
                    merged = {**dict(row), **cols}
                    cols["next_due_at"] = next_due(timer_of(merged))
                    new = await wstore.update_order(conn, row["id"], {**cols, "updated_at": now})
                    step = "notify" if action in ("issue", "returned") else action
                    await wstore.insert_order_transition(
                        conn, row["id"], step, row["state"], row["state"], "applied", "system", now,
                        _WORDS[action], version=new["version"],
                        detail={"notifications": inserted, "recipients": whom, "step": action})
                    handled += 1
                    log.info("work order timer %s", kv(order=row["id"], step=action, queued=len(inserted)))
                else:  # nothing owed (its alarm gone or 办结 meanwhile, or the state moved on): stop the timer
                    live = alert is not None and alert.phase.value != "closed"
                    await wstore.update_order(conn, row["id"],
                                              {"next_due_at": next_due(timer) if live else None})
    if queued:
        on_queued()
    return handled


#: the timers loop's name for the pass (alerting/service.py)
run = notify_due_orders
