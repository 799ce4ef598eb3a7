"""The texts of the hazards ledger's overdue pass (alerting/hazard_overdue.py).

* ``hazard.overdue`` 逾期提醒, at the deadline, to those who rectify — the business (企业主体责任)
  and the territory (属地: the township's duty room and the grid member): the hazard, its grade,
  its deadline, and what to do (落实整改, then 报告整改情况、申请复查 on the platform);
* ``hazard.escalate`` 逾期升级, a day later and still not rectified, to those who supervise —
  the departments (三管三必须) and the responsible leader: how long overdue, the 责任人 of the
  五落实, and the ask (督促责任单位限期整改到位). Not a task to go and check a site.

Same review rules as every template (alerting/templates/rules.py): no adjacent variables, short
variables (the unit and the hazard's name may be shortened), the duty number as fixed text.
Appended after the earlier templates (their codes stay).
"""

from __future__ import annotations

from alerting.templates.rules import SmsTemplate

__all__ = ["hazard_templates", "OVERDUE", "ESCALATE"]

OVERDUE = "hazard.overdue"
ESCALATE = "hazard.escalate"


def hazard_templates() -> list[SmsTemplate]:
    return [
        SmsTemplate(
            OVERDUE,
            "hazard_overdue",
            "隐患整改逾期提醒：{unit}的隐患{title}（{grade}）整改期限为{deadline}，至今未报告整改完成。"
            "请按挂牌督办要求落实整改，完成后在平台报告整改情况并申请复查。中心值班电话{DUTY_PHONE}。",
            ("unit", "title", "grade", "deadline"),
            ("title", "unit"),
        ),
        SmsTemplate(
            ESCALATE,
            "hazard_escalate",
            "隐患逾期升级：{unit}的隐患{title}（{grade}）整改期限为{deadline}，已逾期{days}天仍未整改完成，"
            "责任人{owner}。请督促责任单位限期整改到位。中心值班电话{DUTY_PHONE}。",
            ("unit", "title", "grade", "deadline", "days", "owner"),
            ("title", "unit", "owner"),
        ),
    ]
