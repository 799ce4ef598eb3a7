"""The 四单 texts per level (四单工作法, seed 000: 由区安委办向各街道、区各有关部门下发工作提醒单、
风险警示单、问题督办单、问责建议单).

Each notice is a document in the name of the issuer (``notice_issuer`` in routes.yaml, default
区安委办: the ``issuer`` variable, at most 12 characters so every provider takes it whole) to the
units that failed to act — the township (and its grid member) and the department — never to the
business, which gets the alarm and its reminders. What each asks, by a deadline that reads as a
deadline (``于…前``, never "请于…前立即…"):

* ``notice.reminder`` 工作提醒单: 督促企业处置, 于{deadline}前反馈处置情况;
* ``notice.warning`` 风险警示单: 核实现场情况、督促整改, 于{deadline}前反馈核实结果;
* ``notice.supervision`` 问题督办单: 挂牌督办, 限{deadline}前处置到位, the written reply expected
  (处置措施、责任人、整改结果);
* ``notice.accountability`` 问责建议单: an internal record for the leaders who decide 问责 — who
  failed to act (``failed``: the units of the notice before), since when (``prev`` issued,
  its deadline ``due``), the recommendation — no reply code, no link, no task to go and verify;
  ``notice.accountability.first`` when no notice came before (the lower steps were skipped).

Same review rules as every template (alerting/templates/rules.py): no adjacent variables, short
variables, the duty number as fixed text. Appended after the earlier templates (their codes
stay); tests/alerting/test_templates_conformance.py renders each for every provider.
"""

from __future__ import annotations

from alerting.templates.rules import SmsTemplate

__all__ = ["NOTICE_LEVELS", "notice_templates", "notice_todo"]

#: the levels with a text of their own (hazmon.contracts.NoticeLevel values)
NOTICE_LEVELS = ("reminder", "warning", "supervision", "accountability")

_HEAD = "{issuer}{name}：{unit}的{what}（{level}）自{when}起{unmet}"
_HEAD_PARAMS = ("issuer", "unit", "what", "level", "when", "unmet")
#: what each level asks the unit, by its deadline
_ASK = {
    "reminder": ("工作提醒单", "。请督促企业处置，于{deadline}前反馈处置情况。"),
    "warning": ("风险警示单", "，风险未消除。请核实现场情况并督促企业整改，于{deadline}前反馈核实结果。"),
    "supervision": ("问题督办单",
                    "，现予挂牌督办。限{deadline}前处置到位，并书面回复处置措施、责任人和整改结果。"),
}
#: what a voice call or a group robot reads as the notice's "what to do" (``todo``)
_TODO = {
    "reminder": "督促企业处置，于{deadline}前反馈处置情况",
    "warning": "核实现场情况并督促企业整改，于{deadline}前反馈核实结果",
    "supervision": "限{deadline}前处置到位，书面回复处置措施、责任人和整改结果",
    "accountability": "问责建议单为内部记录，请阅示，无需到场",
}
_DUTY = "中心值班电话{DUTY_PHONE}。"
_ADVISE = "建议按规定启动问责程序，供领导决策，请阅示。"


def notice_todo(level: str, deadline: str) -> str:
    """What a notice of ``level`` asks, as a voice script or a robot reads it."""
    return _TODO[level].format(deadline=deadline)


def notice_templates() -> list[SmsTemplate]:
    out: list[SmsTemplate] = []
    shrink = ("unit",)
    for level, (name, ask) in _ASK.items():
        text = _HEAD.replace("{name}", name) + ask + _DUTY + "回复{code}确认"
        params = (*_HEAD_PARAMS, "deadline", "code")
        out.append(SmsTemplate(f"notice.{level}", "notice", text + "。", params, shrink))
        out.append(SmsTemplate(f"notice.{level}_l", "notice", text + "，或点{ACK_URL}/{token}",
                               (*params, "token"), shrink, True))
    head = _HEAD.replace("{name}", "问责建议单（内部记录）")
    out.append(SmsTemplate(
        "notice.accountability", "notice",
        head + "，{failed}收到{prev}后逾期未办结（期限{due}）。" + _ADVISE + _DUTY,
        (*_HEAD_PARAMS, "failed", "prev", "due"), ("unit", "failed")))
    out.append(SmsTemplate(
        "notice.accountability.first", "notice",
        head + "，{failed}未按要求督促处置。" + _ADVISE + _DUTY,
        (*_HEAD_PARAMS, "failed"), ("unit", "failed")))
    return out
