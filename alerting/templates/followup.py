"""Follow-up texts: the outcome SMS to the business and the morning digest of quiet hours.

* ``outcome.<verdict>`` (alerting/outcome.py): when an alarm is closed (办结), the business reads
  in one short SMS what the centre found (研判: 误报, 测试, 设备故障, 真实警情) and that it is
  closed, with what to do next where there is something (a detector that keeps false-alarming
  is serviced; a test is declared beforehand next time);
* ``undelivered`` / ``undelivered.named`` (alerting/reach.py): the centre's duty operator is told
  who (unit, name, role) did not receive the message about which site, and why — registered like
  every text, so it goes out through 阿里云 and 腾讯云 too; no duty number (it is the duty room);
* ``digest.<n>`` / ``digest.more`` (alerting/digest.py, alerting/quiet.py): one SMS per
  recipient when quiet hours end, naming up to three alarms held in the night (the unit, what,
  the level and whether it has recovered), with the count when there were more.

No reply code and no link: neither asks for an acknowledgement. Same review rules as every
template (alerting/templates/rules.py: no adjacent variables, short variables, the duty number
as fixed text); appended after the earlier templates, so their codes stay; covered by
tests/alerting/test_templates_conformance.py.
"""

from __future__ import annotations

from alerting.templates.rules import SmsTemplate

__all__ = ["OUTCOME_NEXT", "UNDELIVERED", "UNDELIVERED_NAMED", "duty_templates", "followup_templates",
           "outcome_template"]

#: what the business reads after the verdict, per 研判 verdict (hazmon.contracts.Verdict)
OUTCOME_NEXT: dict[str, str] = {
    "false": "经核实为误报，已办结。设备如反复误报，请联系厂家或维保单位检修",
    "test": "经核实为测试，已办结。今后测试请提前向中心报备",
    "fault": "经核实为设备故障，已办结。请尽快维修，修复前加强人工巡查",
    "real": "已处置完毕并办结。请做好后续检查和隐患整改，感谢配合",
}


def outcome_template(verdict: str | None) -> str:
    """The registered template of the outcome SMS for ``verdict`` (none recorded: real)."""
    return f"outcome.{verdict if verdict in OUTCOME_NEXT else 'real'}"


def followup_templates() -> list[SmsTemplate]:
    duty = "中心值班电话{DUTY_PHONE}。"
    out = [SmsTemplate(f"outcome.{v}", "outcome", "{unit}的{loc}的{what}（{when}）" + text + "。" + duty,
                       ("unit", "loc", "what", "when"), ("unit", "loc"))
           for v, text in OUTCOME_NEXT.items()]
    head = "夜间免扰（{span}）期间暂缓发送的报警"
    tail = "。详情请登录监测平台查看，" + duty
    items = ["{u1}：{w1}（{s1}）", "{u2}：{w2}（{s2}）", "{u3}：{w3}（{s3}）"]
    names = [("u1", "w1", "s1"), ("u2", "w2", "s2"), ("u3", "w3", "s3")]
    for n in (1, 2, 3):
        params = ("span", *(p for ps in names[:n] for p in ps))
        shrink = tuple(p for ps in names[:n] for p in ps[:2])
        out.append(SmsTemplate(f"digest.{n}", "digest", head + "：" + "；".join(items[:n]) + tail, params,
                               shrink))
    params = ("span", "n", *(p for ps in names for p in ps))
    out.append(SmsTemplate("digest.more", "digest", head + "共{n}条，其中" + "；".join(items) + "等" + tail,
                           params, tuple(p for ps in names for p in ps[:2])))
    return out


#: the duty operator's note about a recipient not reached (alerting/reach.py ``duty_note``)
UNDELIVERED = "undelivered"
UNDELIVERED_NAMED = "undelivered.named"


def duty_templates() -> list[SmsTemplate]:
    # ``about``: the site the message was about (阿里云 refuses a variable named ``site``)
    tail = "未收到{about}的告警通知，原因：{why}。请值班员电话通知到人。"
    return [SmsTemplate(UNDELIVERED, "undelivered", "未送达：{unit}（{role}）" + tail,
                        ("unit", "role", "about", "why"), ("why", "about", "unit")),
            SmsTemplate(UNDELIVERED_NAMED, "undelivered", "未送达：{unit}的{name}（{role}）" + tail,
                        ("unit", "name", "role", "about", "why"), ("why", "about", "unit", "name"))]
