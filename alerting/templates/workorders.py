"""工单 texts (alerting/workorder_notify.py): the order to its person, the reminder at its
deadline, the 退回, and the escalation to the duty operator and the leader.

Each names where (the unit and where the device is), what happened, the deadline, and carries
the recipient's own 回复码 and link (alerting/acks.py): the link opens the alarm for that
recipient (登录查看报警详情, then the order's steps on the console's phone pages). Same review
rules as every template (alerting/templates/rules.py): short variables, no adjacent ones, the
duty number and the link's base as fixed text, the link last; appended after the earlier
templates, so their codes stay; covered by tests/alerting/test_templates_conformance.py.
"""

from __future__ import annotations

from alerting.templates.rules import SmsTemplate

__all__ = ["ISSUE", "REMIND", "RETURNED", "OVERDUE", "KIND", "workorder_templates"]

KIND = "workorder"
ISSUE = "workorder.issue"
REMIND = "workorder.remind"
RETURNED = "workorder.returned"
OVERDUE = "workorder.overdue"


def workorder_templates() -> list[SmsTemplate]:
    ack, link = "回复{code}确认", "，或点{ACK_URL}/{token}"
    duty = "中心值班电话{DUTY_PHONE}。"
    where = ("unit", "loc", "what")
    texts = {
        ISSUE: ("工单：{unit}的{loc}发生{what}（{level}），请于{deadline}前到场处置，并在平台签到、反馈。" + duty,
                (*where[:2], "what", "level", "deadline"), ("unit", "loc")),
        REMIND: ("工单超时提醒：{unit}的{loc}的{what}已过处置时限{deadline}，请尽快到场处置并在平台反馈。" + duty,
                 (*where, "deadline"), ("unit", "loc")),
        RETURNED: ("工单退回：{unit}的{loc}的{what}的反馈未通过审核（{why}），请于{deadline}前重新处置并反馈。"
                   + duty, (*where, "why", "deadline"), ("why", "unit", "loc")),
        OVERDUE: ("工单超时：{unit}的{loc}的{what}，派给{person}的工单已过时限{deadline}仍未反馈，请督促处置。" + duty,
                  (*where, "person", "deadline"), ("unit", "loc", "person")),
    }
    out: list[SmsTemplate] = []
    for name, (text, params, shrink) in texts.items():
        out.append(SmsTemplate(name, KIND, text + ack + "。", (*params, "code"), shrink))
        out.append(SmsTemplate(name + "_l", KIND, text + ack + link, (*params, "code", "token"), shrink,
                               True))
    return out
