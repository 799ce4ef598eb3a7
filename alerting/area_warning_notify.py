"""Who is told of a new or raised 三色区域预警, and what they read (pure): a 片 the township's duty
room, a 线 the departments of the domain's matrix rules (三管三必须; those for every site, or all of
them if none is), a 点 the business and its grid member; the duty desk's console entry. A warning is
a text: a duty room reached by landline only gets a 未送达 row, and the duty operator is told."""

from __future__ import annotations

from datetime import datetime

from alerting.area_warning_eval import LEVEL_ZH, AreaLevel
from alerting.compose import ComposeContext, outbox_items
from alerting.matrix import normalize_phone, resolve
from alerting.outbox import NewNotification
from alerting.templates import render
from alerting.templates.area_warning import KIND, area_warning_template
from hazmon.contracts import ContactChannel, Recipient, RecipientRole
from hazmon.registry import Registry, duty_channels

__all__ = ["recipients", "messages"]

_SENT_ON = ("sms", "wecom", "dingtalk")  # a warning is a text: a landline-only duty room gets a 未送达 row


def _duty(role: RecipientRole, unit: str, name: str, values: object, rule: str) -> Recipient:
    chans = tuple(
        ContactChannel(channel=ch, address=a)  # type: ignore[arg-type]
        for ch, a in duty_channels(
            {f: getattr(values, f, None) for f in ("duty_phone", "duty_mobile", "robot", "robot_url")}
        )
        if ch in _SENT_ON
    )
    mobile = next((c.address for c in chans if c.channel == "sms"), None)
    return Recipient(role=role, name=name or unit, unit=unit, phone=mobile, rule=rule, channels=chans)


def recipients(w: AreaLevel, registry: Registry, duty: Recipient | None) -> list[Recipient]:
    """片: the township's duty room; 线: the departments of the domain's matrix rules (those for
    every site; all of them if none is); 点: the business and its grid member."""
    if w.scope == "township":
        t = registry.townships.get(w.key)
        out = (
            [_duty(RecipientRole.TOWNSHIP, t.name, t.duty_name, t, f"area_warning:township:{t.id}")]
            if t
            else []
        )
    elif w.scope == "industry":
        rules = registry.matrix.get(w.key, ())
        general = [r for r in rules if not r.industries] or list(rules)
        deps = dict.fromkeys(d for r in general for d in r.department_ids if d in registry.departments)
        out = [
            _duty(
                RecipientRole.DEPARTMENT, dep.name, dep.duty_name, dep, f"area_warning:industry:{w.key}:{d}"
            )
            for d in deps
            if (dep := registry.departments[d])
        ]
    else:
        resp = resolve(registry, site_id=w.key, domain=w.domains[0] if w.domains else "")
        out = [r for r in resp.recipients if r.role in (RecipientRole.BUSINESS, RecipientRole.GRID_MEMBER)]
    if not any(r.channels or normalize_phone(r.phone) for r in out) and duty is not None:
        out.append(duty)  # nobody reachable for the area: the centre's duty operator is told
    return out


def _change(action: str, before: str | None, level: str) -> str:
    if action == "raise" and before:
        return f"由{LEVEL_ZH[before]}预警升为{LEVEL_ZH[level]}预警"
    return f"发布{LEVEL_ZH[level]}预警"


def messages(
    ctx: ComposeContext,
    w: AreaLevel,
    action: str,
    before: str | None,
    history_id: int,
    warning_id: int,
    now: datetime,
) -> list[NewNotification]:
    """The outbox rows of a new or raised warning (pure)."""
    values = {"area": w.name, "change": _change(action, before, w.level), "why": "、".join(w.short)}
    body, sent = render(
        area_warning_template(w.scope, w.level),
        values,
        sign_name=ctx.sign_name,
        max_segments=ctx.config.sms_max_segments,
        provider=ctx.provider,
        deployment=ctx.deployment,
    )
    who = recipients(w, ctx.registry, ctx.config.duty_operator)
    return outbox_items(
        ctx,
        "",
        who,
        ("sms", "console"),
        0,
        KIND,
        f"area_warning:{history_id}",
        body,
        sent,
        None,
        f"area_warning:{warning_id}",
        1 if w.level == "red" else 0,
        now,
    )
