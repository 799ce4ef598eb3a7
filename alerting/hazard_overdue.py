"""The overdue pass of the hazards ledger (隐患逾期): a hazard past its 整改期限 and not reported
rectified is told, then escalated — 限期销号 as the seeds mean it.

* at the deadline, 逾期提醒 (``hazard.overdue``) to those who rectify: the business and the
  territory (the township's duty room, the grid member) of the hazard's site;
* :attr:`HazardOverduePolicy.escalate_after` later, still not rectified, 逾期升级
  (``hazard.escalate``) to those who supervise: the hazard's departments and the responsible
  leader (责任矩阵 for its site and domain), and the duty desk's console entry.

Each is an SMS through the outbox (registered templates, the providers' limits and receipts),
audited as a hazard transition (``overdue_notify`` / ``overdue_escalate``, the people told in
its detail). The pass is one indexed query when nothing is due (``overdue_due_at``, partial
index of migration 031) and locks what it takes (``SKIP LOCKED``: two timers never tell twice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from alerting import store
from alerting.compose import ComposeContext, outbox_items
from alerting.matrix import resolve
from alerting.outbox import NewNotification, enqueue
from alerting.store import HazardRecord
from alerting.templates import format_when, render
from alerting.templates.hazards import ESCALATE, OVERDUE
from hazmon.contracts import RecipientRole
from hazmon.logs import kv

__all__ = ["HazardOverduePolicy", "notify_overdue_hazards", "SYSTEM_ACTOR"]

log = logging.getLogger(__name__)

#: who the audit names for the timer's steps
SYSTEM_ACTOR = "system:hazard_overdue"
_RECTIFY = (RecipientRole.BUSINESS, RecipientRole.TOWNSHIP, RecipientRole.GRID_MEMBER)
_SUPERVISE = (RecipientRole.DEPARTMENT, RecipientRole.LEADER)


@dataclass(frozen=True, slots=True)
class HazardOverduePolicy:
    #: 逾期升级 this long after the deadline when still not rectified
    escalate_after: timedelta = timedelta(days=1)
    #: hazards taken per pass (the rest the next pass)
    batch: int = 200


def _items(
    ctx: ComposeContext, h: HazardRecord, level: int, site_name: str, now: datetime
) -> list[NewNotification]:
    resp = resolve(ctx.registry, site_id=h.site_id, domain=h.domain)
    roles = _RECTIFY if level == 1 else _SUPERVISE
    recipients = [r for r in resp.for_roles(roles, duty_operator=ctx.config.duty_operator) if r.role in roles]
    overdue_days = max(1, (now - h.deadline).days) if h.deadline else 1
    values = {
        "unit": site_name,
        "title": h.title,
        "grade": "重大隐患" if h.grade == "major" else "一般隐患",
        "deadline": format_when(h.deadline) if h.deadline else "无",
        "days": str(overdue_days),
        "owner": h.owner or "未落实",
    }
    name = OVERDUE if level == 1 else ESCALATE
    body, sent = render(
        name,
        values,
        sign_name=ctx.sign_name,
        max_segments=ctx.config.sms_max_segments,
        provider=ctx.provider,
        deployment=ctx.deployment,
    )
    kind = "hazard_overdue" if level == 1 else "hazard_escalate"
    return outbox_items(
        ctx,
        "",
        recipients,
        ("sms", "console"),
        level,
        kind,
        f"hazard:{h.id}:{kind}",
        body,
        sent,
        None,
        f"hazard:{h.id}",
        1 if h.grade == "major" else 0,
        now,
    )


async def notify_overdue_hazards(
    pool: asyncpg.Pool,
    ctx: ComposeContext,
    now: datetime,
    policy: HazardOverduePolicy = HazardOverduePolicy(),
) -> int:
    """Tell and escalate the hazards due at ``now`` (one transaction); returns rows queued."""
    async with pool.acquire() as conn:
        if not await store.hazard_due(conn, now):  # the timers tick every second: no transaction then
            return 0
        async with conn.transaction():
            due = await store.lock_due_hazards(conn, now, policy.batch)
            if not due:
                return 0
            names = dict(
                await conn.fetch(
                    "SELECT id, name FROM sites WHERE id = ANY($1::text[])", list({h.site_id for h in due})
                )
            )
            queued = 0
            for h in due:
                if h.phase not in ("registered", "supervised") or h.deadline is None or h.overdue_level >= 2:
                    await store.set_overdue(conn, h.id, h.overdue_level, None)  # nothing more to tell
                    continue
                level = h.overdue_level + 1
                items = _items(ctx, h, level, names.get(h.site_id, h.site_id), now)
                inserted = await enqueue(conn, items, now=now)
                queued += len(inserted)
                nxt = h.deadline + policy.escalate_after if level == 1 else None
                await store.set_overdue(conn, h.id, level, max(nxt, now) if nxt else None)
                told = sorted(
                    {
                        f"{i.request.recipient.name}（{i.request.recipient.unit}）"
                        for i in items
                        if i.request.channel == "sms"
                    }
                )
                action = "overdue_notify" if level == 1 else "overdue_escalate"
                await store.insert_hazard_transition(
                    conn,
                    h.id,
                    action,
                    h.phase,
                    h.phase,
                    "applied",
                    SYSTEM_ACTOR,
                    now,
                    "整改期限已过，尚未整改完成",
                    version=h.version,
                    detail={"level": level, "told": told, "notifications": [i.request.id for i in items]},
                )
    log.info("overdue hazards told %s", kv(hazards=len(due), rows=queued))
    return queued
