"""Message composition: what a group flush or a 四单 notice says, and the outbox rows it makes.

Pure: the registry, the routes, the sender's name and the deployment's constants come in a
:class:`ComposeContext`, ``now`` is an argument, nothing here does I/O. The flush
(:mod:`alerting.flush`) and the escalation pass (:mod:`alerting.notices`) write what these
functions return.

A text per role: the business reads what happened at its own site and what to do now; the grid
member, the township, the department and the leaders read a supervision text (到场核实、督促处置)
with the business's name and contact. Both name the device by where it is (:func:`where`).

* :func:`group_message_choice` — which alert leads a group's message, its kind and dedup key;
* :func:`params` — the template variables of an alert (unit, where, what, reading, level, when…);
* :func:`group_message` / :func:`notice_message` — the rendered rows and their recipients;
* :func:`outbox_items` — one row per channel and recipient, ids deterministic (a replay queues nothing new).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alerting.ack_stops import DEFAULT_ACK_STOPS, RecipientAck, still_reminded
from alerting.config import AlertingConfig, Receiver
from alerting.escalation import EscalationStep, unmet
from alerting.group import FlushPlan
from alerting.matrix import normalize_phone, resolve
from alerting.outbox import NewNotification, notification_id
from alerting.reach import channel_items
from alerting.store import AlertRecord
from alerting.templates import (
    ACK_TOKEN_LEN,
    PROVIDERS,
    Deployment,
    ack_placeholder,
    format_when,
    render,
    severity_words,
    variant,
    what_happened,
    what_to_do,
)
from alerting.templates.lift import mnt_todo
from alerting.templates.notices import notice_todo
from alerting.templates.words import system_class
from hazmon.contracts import NoticeLevel, NotificationRequest, Recipient, RecipientRole, Severity
from hazmon.registry import Registry

__all__ = [
    "ComposeContext",
    "ComposedMessage",
    "audience",
    "where",
    "reading",
    "regcode",
    "group_message_choice",
    "params",
    "rendered",
    "group_message",
    "notice_message",
    "notice_addressees",
    "PriorNotice",
    "outbox_items",
    "notify_detail",
]


@dataclass(frozen=True, slots=True)
class ComposeContext:
    """What composition reads: the registry (names, the 责任矩阵), the routes' config, the
    registered SMS signature, the acknowledgement link's base URL, the SMS provider (its
    variable caps) and the centre's duty number."""

    registry: Registry
    config: AlertingConfig
    sign_name: str = "区应急指挥中心"
    ack_base_url: str = ""
    provider: str = "webhook"
    duty_phone: str = field(default_factory=lambda: Deployment().duty_phone)
    lift_phone: str = field(default_factory=lambda: Deployment().lift_phone)  # lift.emergency_phone

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.ack_base_url.rstrip("/"), self.duty_phone, self.lift_phone)


@dataclass(frozen=True, slots=True)
class ComposedMessage:
    """One composed message: about ``lead`` (``count`` alerts), its outbox rows and recipients."""

    lead: AlertRecord
    template: str
    count: int
    items: tuple[NewNotification, ...]
    recipients: tuple[Recipient, ...]
    #: a reminder's recipients left out: they or their unit acknowledged (alerting/ack_stops.py)
    ack_stopped: tuple[Recipient, ...] = ()


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


_READING = re.compile(r"(\d+(?:\.\d+)?)\s*%LEL")


def audience(role: RecipientRole | str) -> str:
    """``biz`` for the business itself; ``mnt`` for a lift's 维保单位 (alerting/templates/lift.py);
    ``sup`` (supervision) for the grid member, township, department, leaders and the duty desk."""
    r = RecipientRole(role)
    return "biz" if r is RecipientRole.BUSINESS else "mnt" if r is RecipientRole.MAINTAINER else "sup"


def where(ctx: ComposeContext, alert: AlertRecord) -> str:
    """Where the device is, as a person finds it: a fire point by its zone (the frame's, else
    the registry's location) and point number; a lift by its 梯号 (the 注册代码 is its own
    variable, :func:`regcode`: a code is never cut); any other
    device by its installation location; the model and id only when the registry has none."""
    dev = ctx.registry.devices.get(alert.device_id)
    location = str(getattr(dev, "location", "") or "").strip()
    if dev is None and (alert.component or "").strip():
        return alert.component.strip()  # not a registered device (an Alertmanager alert): its part
    fallback = f"{dev.model if dev and dev.model else '设备'} {alert.device_id}"
    if alert.domain == "fire":
        # a GB/T 26875.3 part address (系统-回路/部件 "1-1/40/1-023") is read by its last number
        point = re.split(r"[/-]", (alert.component or "").strip())[-1]
        zone = (alert.zone or "").strip()
        if point and not zone and dev and dev.parent_id is None:
            zone = "火灾报警控制器"  # a panel's point the frame gave no zone for: not the panel's room
        place = zone or location
        if point and point not in place:
            place = f"{place} {point}号点位".strip()
        return place or fallback
    return location or fallback


def regcode(ctx: ComposeContext, alert: AlertRecord) -> str:
    """A lift's 特种设备注册代码 from the registry, '' when unknown or not a lift."""
    dev = ctx.registry.devices.get(alert.device_id)
    return str(getattr(dev, "reg_code", "") or "") if alert.domain == "elevator" else ""


def reading(alert: AlertRecord) -> str:
    """The reading an alarm carries (``23%LEL``), '' when it has none."""
    m = _READING.search(alert.summary or "")
    return f"{float(m.group(1)):g}%LEL" if m else ""


def _contact(ctx: ComposeContext, site_id: str) -> tuple[str, str]:
    """The business's contact for a supervision text: a name and a number, a mobile first."""
    site = ctx.registry.sites.get(site_id)
    contacts = sorted(site.contacts if site else (), key=lambda c: normalize_phone(c.phone) is None)
    for c in contacts:
        if c.phone:
            return c.name, c.phone
    return "中心值班室", ctx.duty_phone


def _time_flag(alert: AlertRecord) -> str:
    """Late data (alerting/late.py): ``late``, ``clock_*`` or '' on time."""
    return str(getattr(alert, "time_flag", "") or "")


def params(ctx: ComposeContext, alert: AlertRecord, count: int) -> dict[str, str]:
    """The template variables of ``alert`` (``count`` > 1: "…等N处"). A late alarm's ``when``
    is when hazmon learned of it and ``occurred`` the device's time (alerting/late.py)."""
    site = ctx.registry.sites.get(alert.site_id)
    loc = where(ctx, alert)
    if count > 1:
        loc += f"等{count}处"
    name, phone = _contact(ctx, alert.site_id)
    clock_from = getattr(alert, "clock_from", None) or alert.starts_at
    return {
        "unit": site.name if site else alert.site_id,
        "loc": loc,
        "what": what_happened(alert.kind, alert.summary),
        "reading": reading(alert),
        "regcode": regcode(ctx, alert),
        "level": severity_words(Severity(alert.severity).zh),
        "when": format_when(clock_from),
        "occurred": format_when(alert.starts_at),
        "person": name,
        "phone": phone,
        "code": alert.ack_code,
        "token": ack_placeholder(),  # per-recipient token put in by the outbox (alerting/acks.py)
    }


def info(ctx: ComposeContext, alert: AlertRecord, p: Mapping[str, str], aud: str = "biz") -> dict[str, str]:
    """What the other channels (voice scripts, group robots, the console) read, in their keys;
    ``todo`` is the audience's own: the business's advice, or for everyone supervising it the
    supervision with the business's contact (a township duty room hears whom to call)."""
    if aud == "biz" or system_class(alert.kind) is not None:  # a system alarm: the duty operator's job
        todo = what_to_do(alert.kind, ctx.lift_phone)
    elif aud == "mnt":  # a lift's 维保单位: the rescue or repair is its own job
        todo = mnt_todo(alert.kind, ctx.duty_phone)
    else:
        todo = "立即到场核实、督促企业处置" + (f"，企业联系人{p['person']}，电话{p['phone']}" if p["phone"] else "")
    return {"site": p["unit"], "device": p["loc"], "what": p["what"], "reading": p.get("reading", ""),
            "sev": Severity(alert.severity).zh, "when": p["when"], "todo": todo,
            "business": p["unit"], "contact": f"{p['person']} {p['phone']}".strip(), "code": p["code"]}


def _link(ctx: ComposeContext) -> bool:
    """Whether texts carry the short link: a base URL is set and the provider's variable cap
    takes the whole token (a cut link is worse than none: the reply code stays)."""
    return bool(ctx.ack_base_url) and PROVIDERS[ctx.provider].var_max >= ACK_TOKEN_LEN


def rendered(ctx: ComposeContext, kind: str, aud: str, alert: AlertRecord, p: Mapping[str, str],
             *, link: bool = True, notice: str = "", prior: bool = True) -> tuple[str, dict[str, str]]:
    """The text of message ``kind`` for audience ``aud`` and the row's parameters (``notice``,
    ``prior``: a 四单's level and whether a notice came before, :func:`alerting.templates.variant`)."""
    rules = PROVIDERS[ctx.provider]
    code = str(p.get("regcode", ""))
    name = variant(kind, aud, alert.kind, link=link and _link(ctx), reading=bool(p.get("reading")),
                   late=_time_flag(alert), regcode=bool(code) and len(code) <= rules.var_max, notice=notice,
                   prior=prior)
    body, sent = render(name, p, sign_name=ctx.sign_name, max_segments=ctx.config.sms_max_segments,
                        provider=ctx.provider, deployment=ctx.deployment)
    # the row also carries what voice scripts and robots read; the provider gets only the
    # template's variables (alerting.templates.provider_params)
    return body, {**info(ctx, alert, p, aud), **sent}


def outbox_items(ctx: ComposeContext, alert_id: str, recipients: Sequence[Recipient], channels: Sequence[str],
                 step: int, template: str, tkey: str, body: str, params: Mapping[str, str],
                 level: NoticeLevel | None, gkey: str, priority: int, now: datetime, webhook_url: str = "",
                 notice_id: int | None = None, sms: bool = True, others: bool = True,
                 other_params: Mapping[str, str] | None = None) -> list[NewNotification]:
    """The outbox rows of one message: per SMS recipient with a phone (``sms``), one
    console/webhook entry addressed to the duty desk (``others``, with ``other_params``)."""
    duty = ctx.config.duty_operator
    items: list[NewNotification] = []
    for ch in channels:
        targets: Sequence[Recipient]
        if ch == "sms":
            if not sms:
                continue
            # each recipient on its own channels, or a 未送达 row and the duty operator told
            items += channel_items(duty, recipients, alert_id=alert_id, step=step, template=template, tkey=tkey,
                                   body=body, params=params, level=level, gkey=gkey, priority=priority,
                                   now=now, notice_id=notice_id)
            continue
        else:  # one console/webhook entry per message, addressed to the duty desk
            if not others:
                continue
            targets = [duty.model_copy(update={"rule": ";".join(sorted({r.rule for r in recipients}))[:500]
                                               or duty.rule})]
        for r in targets:
            req = NotificationRequest(
                id=notification_id(alert_id, r, step, f"{ch}:{tkey}"), alert_id=alert_id, channel=ch,  # type: ignore[arg-type]
                recipient=r, notice_level=level, template=template, body=body, created_at=now)
            row_params = params if ch == "sms" or other_params is None else {**other_params, **params}
            items.append(NewNotification(req, row_params, gkey, notice_id, None, priority, webhook_url))
    return items


def group_message(ctx: ComposeContext, plan: FlushPlan, alerts: Sequence[AlertRecord], receiver: Receiver,
                  gkey: str, now: datetime, acks: Mapping[str, Sequence[RecipientAck]] | None = None,
                  ack_stops: str = DEFAULT_ACK_STOPS) -> ComposedMessage:
    """The message of a group flush that notifies (``plan.notify``), to ``receiver``'s roles:
    the business's text to the business, the supervision text to everyone else (and the duty desk).
    A reminder leaves out whom the acknowledgements of its firing alerts (``acks``, by alert)
    stop under the route's ``ack_stops``."""
    lead, template, tkey, count = group_message_choice(plan, alerts, now)
    resp = resolve(ctx.registry, site_id=lead.site_id, domain=lead.domain, device_id=lead.device_id)
    recipients = resp.for_roles(receiver.roles, duty_operator=ctx.config.duty_operator)
    stopped: tuple[Recipient, ...] = ()
    if template == "alarm_repeat":
        firing = set(plan.firing)
        recipients, stopped = still_reminded(
            recipients, [x for i in plan.firing for x in (acks or {}).get(i, ())], ack_stops,
            alert_acked=any(a.acked_at is not None for a in alerts if a.id in firing))
    p = params(ctx, lead, count)
    if template == "resolved":
        p["when"] = format_when(lead.ends_at or now)
    p["asof"] = format_when(now)  # a reminder's "截至…": when it was written
    extra = info(ctx, lead, p)
    priority = 1 if lead.severity == Severity.RED.value else 0
    items: list[NewNotification] = []
    for aud in ("biz", "sup", "mnt"):
        mine = [r for r in recipients if audience(r.role) == aud]
        if aud == "mnt" and not mine:
            continue
        body, sp = rendered(ctx, template, aud, lead, p)
        items += outbox_items(ctx, lead.id, mine, receiver.channels, 0, template, tkey, body, sp, None, gkey,
                              priority, now, receiver.webhook_url, others=False)
        if aud == "sup" and recipients:  # the duty desk's console/webhook entry: supervision text, no link
            body, sp = rendered(ctx, template, aud, lead, p, link=False)
            items += outbox_items(ctx, lead.id, recipients, receiver.channels, 0, template, tkey, body, sp,
                                  None, gkey, priority, now, receiver.webhook_url, sms=False,
                                  other_params=extra)
    return ComposedMessage(lead, template, count, tuple(items), tuple(recipients), stopped)


def notice_addressees(recipients: Sequence[Recipient]) -> tuple[tuple[Recipient, ...], tuple[Recipient, ...]]:
    """A notice's recipients and those it must not reach: the 区安委办 writes to townships,
    departments and leaders, never to a business or a 维保单位 (routes.yaml refuses such a
    ladder at load; this keeps a notice off a business's phone whatever the config says)."""
    keep = tuple(r for r in recipients if audience(r.role) == "sup")
    return keep, tuple(r for r in recipients if audience(r.role) != "sup")


@dataclass(frozen=True, slots=True)
class PriorNotice:
    """What a 问责建议单 names: the notice before it (its level and deadline) and the units it was
    addressed to that failed to act (``failed``, as written: 东城街道、区住建局)."""

    level: NoticeLevel | None
    deadline: datetime | None
    failed: str


def notice_message(ctx: ComposeContext, alert: AlertRecord, step: EscalationStep, deadline: datetime,
                   recipients: Sequence[Recipient], open_in_group: int, notice_id: int, now: datetime,
                   prior: PriorNotice | None = None) -> ComposedMessage:
    """The 四单 notice of ``step`` for ``alert`` in the issuer's name (SMS and console, always
    priority): its level's text to the townships and departments (templates/notices.py), the
    问责建议单 as a record naming ``prior`` to the leaders. Never to a business
    (:func:`notice_addressees`)."""
    recipients, _ = notice_addressees(recipients)
    level = step.level.value
    p = params(ctx, alert, max(open_in_group, 1))
    p.update(notice=step.level.zh, unmet=unmet(step.stop_when), deadline=format_when(deadline),
             issuer=ctx.config.notice_issuer, failed=(prior.failed if prior else "") or "属地和行业部门")
    before = False
    if prior is not None and prior.level is not None and prior.deadline is not None:
        p.update(prev=prior.level.zh, due=format_when(prior.deadline))
        before = True
    todo = notice_todo(level, p["deadline"])
    items: list[NewNotification] = []
    for link in (True, False):  # the SMS with the link; the console entry without (nobody's token)
        body, sp = rendered(ctx, "notice", "sup", alert, p, link=link, notice=level, prior=before)
        sp["todo"] = todo  # what a call or a robot reads: the notice's ask, not "到场核实"
        items += outbox_items(ctx, alert.id, recipients, ("sms", "console"), step.level.step, "notice",
                              f"notice:{step.level.value}", body, sp, step.level, alert.group_key, 1, now,
                              notice_id=notice_id, sms=link, others=not link)
    return ComposedMessage(alert, "notice", 1, tuple(items), tuple(recipients))


def notify_detail(count: int, inserted: Sequence[str], recipients: Sequence[Recipient],
                  ack_stopped: Sequence[Recipient] = ()) -> str:
    """The ``detail`` of a ``notify`` transition: what was queued, for how many alerts, to whom
    (and whom a reminder left out: they or their unit acknowledged)."""
    detail = {"notifications": list(inserted), "count": count,
              "recipients": [r.model_dump(mode="json") for r in recipients]}
    if ack_stopped:
        detail["ack_stopped"] = [{"role": r.role.value, "name": r.name, "unit": r.unit, "rule": r.rule}
                                 for r in ack_stopped]
    return json.dumps(detail, ensure_ascii=False)
