"""Message composition: what a group flush or a 四单 notice says, and the outbox rows it makes.

Pure: the registry, the routes and the sender's name come in a :class:`ComposeContext`,
``now`` is an argument, nothing here does I/O. The flush (:mod:`alerting.flush`) and the
escalation pass (:mod:`alerting.service`) write what these functions return.

* :func:`group_message_choice` — which alert leads a group's message, its template and dedup key;
* :func:`params` — the template parameters of an alert (site, device, what, when, what to do…);
* :func:`group_message` / :func:`notice_message` — the rendered rows and their recipients;
* :func:`outbox_items` — one row per channel and recipient, ids deterministic (a replay queues nothing new).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from alerting.config import AlertingConfig, Receiver
from alerting.escalation import EscalationStep, unmet
from alerting.group import FlushPlan
from alerting.late import late_phrase
from alerting.matrix import resolve
from alerting.outbox import NewNotification, notification_id
from alerting.reach import channel_items
from alerting.store import AlertRecord
from alerting.templates import ack_link, format_when, render, what_happened, what_to_do
from hazmon.contracts import NoticeLevel, NotificationRequest, Recipient, Severity
from hazmon.registry import Registry

__all__ = [
    "ComposeContext",
    "ComposedMessage",
    "group_message_choice",
    "params",
    "group_message",
    "notice_message",
    "outbox_items",
    "notify_detail",
]


@dataclass(frozen=True, slots=True)
class ComposeContext:
    """What composition reads: the registry (names, the 责任矩阵), the routes' config, the
    SMS signature and the acknowledgement link's base URL."""

    registry: Registry
    config: AlertingConfig
    sign_name: str = "区应急指挥中心"
    ack_base_url: str = ""


@dataclass(frozen=True, slots=True)
class ComposedMessage:
    """One composed message: about ``lead`` (``count`` alerts), its outbox rows and recipients."""

    lead: AlertRecord
    template: str
    count: int
    items: tuple[NewNotification, ...]
    recipients: tuple[Recipient, ...]


def group_message_choice(
    plan: FlushPlan, alerts: Sequence[AlertRecord], now: datetime
) -> tuple[AlertRecord, str, str, int]:
    """What a group's notification is about: its lead alert, template, dedup key and count.

    A repeat carries the flush time in its key, so each repeat interval sends anew while a
    replay of the same flush stays one message."""
    by_id = {a.id: a for a in alerts}
    if plan.reason == "new":
        return by_id[plan.new_firing[0]], "alarm", "alarm", len(plan.new_firing)
    if plan.reason == "repeat":
        return by_id[plan.firing[0]], "alarm_repeat", f"alarm_repeat@{now.isoformat()}", len(plan.firing)
    return by_id[plan.resolved[0]], "resolved", "resolved", len(plan.resolved)


def params(ctx: ComposeContext, alert: AlertRecord, count: int) -> dict[str, str]:
    """The template parameters of ``alert`` (``count`` > 1: "…等N处")."""
    site = ctx.registry.sites.get(alert.site_id)
    dev = ctx.registry.devices.get(alert.device_id)
    device = (dev.model if dev and dev.model else alert.device_id)
    if alert.component:
        device += alert.component
    if count > 1:
        device += f"等{count}处"
    return {
        "site": site.name if site else alert.site_id,
        "device": device,
        "what": what_happened(alert.kind, alert.summary),
        "sev": Severity(alert.severity).zh,
        # a late or mis-clocked alarm: when hazmon learned of it, and the device's time in ``late``
        "when": format_when(alert.clock_from),
        "late": late_phrase(alert.time_flag, alert.starts_at),
        "todo": what_to_do(alert.kind),
        "code": alert.ack_code,
        "link": ack_link(ctx.ack_base_url),  # per-recipient token put in by the outbox (alerting/acks.py)
    }


def outbox_items(ctx: ComposeContext, alert_id: str, recipients: Sequence[Recipient], channels: Sequence[str],
                 step: int, template: str, tkey: str, body: str, params: Mapping[str, str],
                 level: NoticeLevel | None, gkey: str, priority: int, now: datetime, webhook_url: str = "",
                 notice_id: int | None = None) -> list[NewNotification]:
    """The outbox rows of one message: per SMS recipient with a phone, one console/webhook
    entry addressed to the duty desk."""
    duty = ctx.config.duty_operator
    items: list[NewNotification] = []
    for ch in channels:
        targets: Sequence[Recipient]
        if ch == "sms":  # each recipient on its own channels, or a 未送达 row and the duty operator told
            items += channel_items(duty, recipients, alert_id=alert_id, step=step, template=template, tkey=tkey,
                                   body=body, params=params, level=level, gkey=gkey, priority=priority,
                                   now=now, notice_id=notice_id)
            continue
        else:  # one console/webhook entry per message, addressed to the duty desk
            targets = [duty.model_copy(update={"rule": ";".join(sorted({r.rule for r in recipients}))[:500]
                                               or duty.rule})]
        for r in targets:
            req = NotificationRequest(
                id=notification_id(alert_id, r, step, f"{ch}:{tkey}"), alert_id=alert_id, channel=ch,  # type: ignore[arg-type]
                recipient=r, notice_level=level, template=template, body=body, created_at=now)
            items.append(NewNotification(req, params, gkey, notice_id, None, priority, webhook_url))
    return items


def group_message(ctx: ComposeContext, plan: FlushPlan, alerts: Sequence[AlertRecord], receiver: Receiver,
                  gkey: str, now: datetime) -> ComposedMessage:
    """The message of a group flush that notifies (``plan.notify``), to ``receiver``'s roles."""
    lead, template, tkey, count = group_message_choice(plan, alerts, now)
    resp = resolve(ctx.registry, site_id=lead.site_id, domain=lead.domain)
    recipients = resp.for_roles(receiver.roles, duty_operator=ctx.config.duty_operator)
    p = params(ctx, lead, count)
    if template == "resolved":
        p["when"] = format_when(lead.ends_at or now)
    body, p = render(template, p, sign_name=ctx.sign_name, max_segments=ctx.config.sms_max_segments)
    priority = 1 if lead.severity == Severity.RED.value else 0
    items = outbox_items(ctx, lead.id, recipients, receiver.channels, 0, template, tkey, body, p, None, gkey,
                         priority, now, receiver.webhook_url)
    return ComposedMessage(lead, template, count, tuple(items), tuple(recipients))


def notice_message(ctx: ComposeContext, alert: AlertRecord, step: EscalationStep, deadline: datetime,
                   recipients: Sequence[Recipient], open_in_group: int, notice_id: int, now: datetime
                   ) -> ComposedMessage:
    """The 四单 notice of ``step`` for ``alert`` (SMS and console, always priority)."""
    p = params(ctx, alert, max(open_in_group, 1))
    p.update(level=step.level.zh, unmet=unmet(step.stop_when), deadline=format_when(deadline))
    body, p = render("notice", p, sign_name=ctx.sign_name, max_segments=ctx.config.sms_max_segments)
    items = outbox_items(ctx, alert.id, recipients, ("sms", "console"), step.level.step, "notice",
                         f"notice:{step.level.value}", body, p, step.level, alert.group_key, 1, now,
                         notice_id=notice_id)
    return ComposedMessage(alert, "notice", 1, tuple(items), tuple(recipients))


def notify_detail(count: int, inserted: Sequence[str], recipients: Sequence[Recipient]) -> str:
    """The ``detail`` of a ``notify`` transition: what was queued, for how many alerts, to whom."""
    return json.dumps({"notifications": list(inserted), "count": count,
                       "recipients": [r.model_dump(mode="json") for r in recipients]}, ensure_ascii=False)
