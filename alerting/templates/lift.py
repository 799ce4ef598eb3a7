"""Lift texts for the 电梯维保单位 (audience ``mnt``) and the missed-arrival escalation.

The maintenance company reads what a rescuer needs: which lift (梯号, 注册代码), what happened,
to go now, and how its arrival (到场) is recorded — at a trapped passenger it replies 到场 to the
SMS (alerting/arrival_reply.py) or phones the centre's duty room, whose operator records it on
the console (alerting/arrival.py) — with the 使用单位's contact on site. A trapped passenger
(困人) is a rescue (TSG T5002: on site within 30 min in a city district); a fault is a repair
with the lift out of use until fixed.

When the company has not arrived in time, the township, the regulator and the centre's duty
operator get ``arrival.overdue``: who, since when, and the lift emergency number
(``{LIFT_PHONE}``, ``lift.emergency_phone``: 96333) as a constant of the registered text.

The answers to a reply 到场 (alerting/arrival_reply.py): ``arrival.confirm`` (which lift the
到场 was recorded for, when, the time taken; ``.more`` when the number has other trapped
alarms waiting, which it must phone in) and ``arrival.refused`` (nothing recorded: no lift alarm
of this number waits for its 到场 — it names no alarm, the number may be anyone's). Appended at
the end of the list: the codes registered before keep theirs.

Same review rules as every template (alerting/templates/rules.py); covered with the others by
tests/alerting/test_templates_conformance.py and on their own by tests/alerting/test_lift_texts.py.
"""

from __future__ import annotations

from alerting.templates.rules import SmsTemplate
from alerting.templates.words import advice_class

__all__ = ["ARRIVAL_CONFIRM", "ARRIVAL_REFUSED", "MNT_TODO", "lift_templates", "lift_variant", "mnt_todo",
           "OVERDUE"]

#: what the 维保单位 does now, per advice class (also its voice script's ``todo``)
MNT_TODO: dict[str, str] = {
    "lift_trapped": "请立即派员到场救援，到场后回复“到场”或致电中心{DUTY_PHONE}",
    "lift_fault": "请尽快派员到场检修，修复前停止使用，到场后致电中心{DUTY_PHONE}",
}
#: the escalation of a missed arrival limit
OVERDUE = "arrival.overdue"
#: the answers to a reply 到场 (alerting/arrival_reply.py)
ARRIVAL_CONFIRM = "arrival.confirm"
ARRIVAL_REFUSED = "arrival.refused"


def mnt_todo(kind: str, duty_phone: str) -> str:
    """What the 维保单位 hears in a call or reads on a robot (the SMS's own words, filled in)."""
    todo = MNT_TODO.get(advice_class(kind), "请尽快派员到场处置并反馈")
    # heard, not read: the word to send back is said as words
    todo = todo.replace("回复“到场”", "短信回复到场二字")
    return todo.removeprefix("请").replace("{DUTY_PHONE}", duty_phone)


def lift_templates() -> list[SmsTemplate]:
    out: list[SmsTemplate] = []
    ack, link = "回复{code}确认", "，或点{ACK_URL}/{token}"
    reg = "（注册代码{regcode}）"
    site = "；使用单位{person}，电话{phone}。"

    def add(name: str, kind: str, text: str, params: tuple[str, ...], shrink: tuple[str, ...]) -> None:
        out.append(SmsTemplate(name, kind, text + ack + "。", (*params, "code"), shrink))
        out.append(SmsTemplate(name + "_l", kind, text + ack + link, (*params, "code", "token"), shrink, True))

    for cls, todo in MNT_TODO.items():
        short = cls.removeprefix("lift_")
        for sfx, at, ap in (("", "", ()), (".reg", reg, ("regcode",))):
            add(f"alarm.mnt.{short}{sfx}", "alarm", "{level}：{unit}的{loc}" + at + "发生{what}（{when}）。" + todo
                + site, ("level", "unit", "loc", *ap, "what", "when", "person", "phone"), ("unit", "loc", "person"))
            add(f"repeat.mnt.{short}{sfx}", "alarm_repeat", "再次提醒：{unit}的{loc}" + at
                + "的{what}仍未解除（{level}，{when}起）。" + todo + site,
                ("unit", "loc", *ap, "what", "level", "when", "person", "phone"), ("unit", "loc", "person"))
    out.append(SmsTemplate("resolved.mnt", "resolved",
                           "{unit}的{loc}的{what}已于{when}解除，请查明原因、做好维保记录并反馈。中心值班电话{DUTY_PHONE}",
                           ("unit", "loc", "what", "when"), ("unit", "loc")))
    add(OVERDUE, "arrival_overdue",
        "到场超时：{unit}的{loc}发生{what}（{when}起），维保单位{company}超过{limit}分钟未到场，"
        "请立即督促到场救援，必要时拨打{LIFT_PHONE}。中心值班电话{DUTY_PHONE}。",
        ("unit", "loc", "what", "when", "company", "limit"), ("company", "unit", "loc"))
    done = "已记录到场：{unit}的{loc}的{what}，{at}到场，用时{minutes}分钟"
    names = ("unit", "loc", "what", "at", "minutes")
    out.append(SmsTemplate(ARRIVAL_CONFIRM, "arrival_confirm", done + "。请尽快救援并反馈处置情况。中心值班电话{DUTY_PHONE}。",
                           names, ("unit", "loc")))
    out.append(SmsTemplate(ARRIVAL_CONFIRM + ".more", "arrival_confirm",
                           done + "；另有{more}条困人报警待到场，请致电中心值班电话{DUTY_PHONE}报到场。",
                           (*names, "more"), ("unit", "loc")))
    out.append(SmsTemplate(ARRIVAL_REFUSED, "arrival_refused",
                           "未记录到场：本号码没有待到场的电梯困人报警，到场由接到困人报警的维保单位回复。"
                           "如有疑问请致电中心值班电话{DUTY_PHONE}。", (), ()))
    return out


def lift_variant(kind: str, event_kind: str, *, link: bool, regcode: bool) -> str | None:
    """The 维保单位's template of a lift message, None for anything else (the supervision text)."""
    cls = advice_class(event_kind)
    if cls not in MNT_TODO:
        return None
    if kind == "resolved":
        return "resolved.mnt"
    if kind not in ("alarm", "alarm_repeat"):
        return None
    pre = "alarm" if kind == "alarm" else "repeat"
    return f"{pre}.mnt.{cls.removeprefix('lift_')}{'.reg' if regcode else ''}{'_l' if link else ''}"
