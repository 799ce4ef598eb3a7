"""Every party reached, or loudly not (未送达): a message's rows on each recipient's channels.

A message to a recipient goes out on every channel its contacts give
(:func:`alerting.matrix.deliveries`): an SMS to a mobile, a voice call (语音通知) to a landline,
the unit's group robot (``wecom`` / ``dingtalk``). A recipient no channel reaches is not dropped
with a log line: it gets an ``undeliverable`` (未送达) row on the alert with the reason — the
console's alert page lists it — and the centre's duty operator (routes.yaml ``duty_operator``)
gets an SMS naming who was not reached and why, so someone phones them. The outbox does the
same at send time when a channel has no notifier configured (:func:`duty_note`).

The functions are pure; the duty note's text is fixed here (template ``undelivered``, its one
variable part each capped like any template variable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from alerting.matrix import deliveries
from alerting.notify.base import OutgoingMessage
from alerting.notify.robot import robot_markdown
from alerting.notify.voice import render_script, tts_params, voice_template
from alerting.outbox import UNDELIVERABLE, NewNotification, notification_id
from alerting.templates import render
from alerting.templates.followup import UNDELIVERED, UNDELIVERED_NAMED
from hazmon.contracts import NoticeLevel, NotificationRequest, Recipient, RecipientRole

__all__ = ["UNDELIVERABLE", "CALL_KINDS", "DUTY_TEMPLATE", "ROLE_ZH", "channel_items", "dial", "duty_note",
           "undelivered_text"]

#: the template of the duty operator's note about a recipient not reached
DUTY_TEMPLATE = "undelivered"

ROLE_ZH: dict[str, str] = {
    RecipientRole.BUSINESS.value: "企业",
    RecipientRole.GRID_MEMBER.value: "网格员",
    RecipientRole.TOWNSHIP.value: "镇街值班",
    RecipientRole.DEPARTMENT.value: "行业监管部门",
    RecipientRole.LEADER.value: "责任领导",
    RecipientRole.COVERING_LEADER.value: "包保领导",
    RecipientRole.MAINTAINER.value: "维保单位",
    RecipientRole.DUTY_OPERATOR.value: "中心值班员",
}
#: the messages a voice call carries (alerting/notify/voice.py): a resolved text, an outcome or a
#: broadcast is not a call, so a landline gets no row for them (the console shows the resolution)
CALL_KINDS = frozenset({"alarm", "alarm_repeat", "notice", "arrival_overdue", "workorder"})
_CAP = 35  # a template variable's cap (阿里云; the longest our providers accept)


def _cap(value: str) -> str:
    value = value.replace("【", "").replace("】", "").strip() or "无"
    return value if len(value) <= _CAP else value[: _CAP - 1] + "…"


def undelivered_text(who: Recipient, reason: str, about: str) -> tuple[str, dict[str, str]]:
    """The duty operator's note: who (unit, role) did not receive the message about ``about``
    (the site), why, and what to do. Returns (body, params)."""
    name = who.name if who.name and who.name != who.unit else ""
    params = {"unit": _cap(who.unit or who.name), "name": _cap(name) if name else "",
              "role": ROLE_ZH.get(who.role.value, who.role.value), "site": _cap(about), "about": _cap(about),
              "why": _cap(reason)}
    # a registered template (templates/followup.py), so the cloud providers send it too
    body, sent = render(UNDELIVERED_NAMED if name else UNDELIVERED, params)
    return body, {**params, **sent}


def dial(number: str) -> str:
    """The number a voice call dials: a landline as area code + number without separators
    (``0571-86010002`` → ``057186010002``; an extension cannot be dialled and is left off)."""
    if number.startswith("0") and "-" in number:
        return "".join(number.split("-")[:2])
    return number


@dataclass(frozen=True, slots=True)
class _Msg:
    alert_id: str
    step: int
    template: str
    tkey: str
    body: str
    params: Mapping[str, str]
    level: NoticeLevel | None
    gkey: str
    priority: int
    now: datetime
    notice_id: int | None


def channel_body(channel: str, template: str, sms_body: str, params: Mapping[str, str], alert_id: str = "") -> str:
    """What a row of ``channel`` says, as its channel will say it (the alert page and the demo's
    summary show this, not the SMS text with its token placeholder): a call its spoken script
    (as 阿里云, the landline provider, caps it), a robot its markdown (without the console link,
    which the notifier adds), an SMS its text."""
    if channel == "voice":
        script = voice_template(template)
        return render_script(script, tts_params(script, params, "aliyun"))
    if channel in ("wecom", "dingtalk"):
        msg = OutgoingMessage(id="", channel=channel, body=sms_body, template=template, params=params,
                              alert_id=alert_id)
        return robot_markdown(msg, "")[1]
    return sms_body


def _item(m: _Msg, channel: str, r: Recipient, body: str, template: str, params: Mapping[str, str],
          key: str, *, status: str = "pending", error: str = "", url: str = "",
          priority: int | None = None) -> NewNotification:
    body = channel_body(channel, template, body, params, m.alert_id)
    req = NotificationRequest(id=notification_id(m.alert_id, r, m.step, key), alert_id=m.alert_id,
                              channel=channel, recipient=r, notice_level=m.level,  # type: ignore[arg-type]
                              template=template, body=body, created_at=m.now)
    prio = m.priority if priority is None else priority
    return NewNotification(req, params, m.gkey, m.notice_id, None, prio, url, status=status, error=error)


def duty_note(duty: Recipient, who: Recipient, reason: str, *, alert_id: str | None, about: str, key: str,
              now: datetime, group_key: str = "", notice_id: int | None = None) -> NewNotification:
    """The SMS telling the centre's duty operator that ``who`` was not reached (priority: it
    stands in for an alarm that did not arrive)."""
    body, params = undelivered_text(who, reason, about)
    req = NotificationRequest(id=notification_id(alert_id, duty, 0, f"{DUTY_TEMPLATE}:{key}"),
                              alert_id=alert_id or "", channel="sms", recipient=duty, template=DUTY_TEMPLATE,
                              body=body, created_at=now)
    return NewNotification(req, params, group_key, notice_id, None, 1)


def channel_items(duty: Recipient, recipients: Sequence[Recipient], *, alert_id: str, step: int,
                  template: str, tkey: str, body: str, params: Mapping[str, str], level: NoticeLevel | None,
                  gkey: str,
                  priority: int, now: datetime, notice_id: int | None = None) -> list[NewNotification]:
    """The rows of one message to ``recipients`` on their own channels: ``sms`` rows keep the
    message's id key (``sms:<tkey>``), the others are keyed by their channel; a recipient no
    channel reaches gets an ``undeliverable`` row (channel ``sms``, the reason as its error) and
    the duty operator an SMS saying so. Voice rows only for the messages that are calls
    (:data:`CALL_KINDS`)."""
    m = _Msg(alert_id, step, template, tkey, body, params, level, gkey, priority, now, notice_id)
    out: list[NewNotification] = []
    about = str(params.get("unit") or params.get("site") or "")
    for r in recipients:
        channels, reason = deliveries(r)
        if not channels:
            out.append(_item(m, "sms", r, body, template, params, f"sms:{tkey}", status=UNDELIVERABLE,
                             error=reason))
            if r.role is not RecipientRole.DUTY_OPERATOR:
                out.append(duty_note(duty, r, reason, alert_id=alert_id, about=about,
                                     key=f"{tkey}:{step}:{r.role.value}:{r.rule}", now=now, group_key=gkey,
                                     notice_id=notice_id))
            continue
        for c in channels:
            if c.channel == "sms":
                who = r if r.phone == c.address else r.model_copy(update={"phone": c.address})
                out.append(_item(m, "sms", who, body, template, params, f"sms:{tkey}"))
            elif c.channel == "voice":  # the number to call is the row's recipient_phone
                if template not in CALL_KINDS:
                    continue
                who = r.model_copy(update={"phone": dial(c.address)})
                out.append(_item(m, "voice", who, body, template, params, f"voice:{tkey}"))
            else:  # a group robot: its webhook URL goes with the row (钉钉's secret stays in the
                # registry: the robot notifier looks it up by the URL's token, alerting/notify/robot.py)
                out.append(_item(m, c.channel, r, body, template, params, f"{c.channel}:{tkey}",
                                 url=c.address))
    return out
