"""The texts of the 三色区域预警 (alerting/area_warning.py): one per scope × colour, so each says in
its fixed text what the reader must do at that colour.

* 片 (``township``) to the township's duty room: organise the 排查整治 of the area, urge the
  businesses, report to the 区安委办;
* 线 (``industry``) to the regulating departments (三管三必须): a 专项排查整治 of the industry;
* 点 (``site``) to the business (企业主体责任) and its grid member (网格员): rectify at once.

Variables: ``area`` (the township, the industry or the site, may be shortened), ``change``
(发布红色预警 / 由黄色预警升为红色预警, never cut) and ``why`` (the figures that raised it, may be
shortened). Same review rules as every template (alerting/templates/rules.py); no 回复码 (a warning
is no alarm to acknowledge). Appended after the earlier templates (their codes stay).
"""

from __future__ import annotations

from alerting.templates.rules import SmsTemplate

__all__ = ["area_warning_templates", "area_warning_template", "KIND"]

KIND = "area_warning"
_HEAD = {
    "township": "区域安全风险{zh}预警：{{area}}片区{{change}}，原因：{{why}}。",
    "industry": "行业领域安全风险{zh}预警：全区{{area}}行业{{change}}，原因：{{why}}。",
    "site": "重点点位安全风险{zh}预警：{{area}}（点位）{{change}}，原因：{{why}}。",
}
_TODO = {
    ("township", "red"): "请立即组织辖区全面排查整治，督促相关企业停产整改到位，每日向区安委办报告进展。",
    ("township", "orange"): "请3日内组织辖区重点排查，督促逾期隐患限期整改，并在平台反馈。",
    ("township", "yellow"): "请加强辖区巡查，督促企业落实主体责任，防止风险升级。",
    ("industry", "red"): "请行业主管部门按三管三必须立即部署本行业专项排查整治，每日向区安委办报告进展。",
    ("industry", "orange"): "请行业主管部门3日内组织本行业重点检查，督促隐患限期整改。",
    ("industry", "yellow"): "请行业主管部门加强本行业监管，督促企业落实主体责任。",
    ("site", "red"): "请企业主要负责人立即组织排查整改，必要时停业整改；网格员督促落实并在平台反馈。",
    ("site", "orange"): "请企业3日内完成隐患整改并报告；网格员到场督促。",
    ("site", "yellow"): "请企业加强自查自改，网格员加强巡查。",
}
_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}


def area_warning_template(scope: str, level: str) -> str:
    return f"area_warning.{scope}.{level}"


def area_warning_templates() -> list[SmsTemplate]:
    return [
        SmsTemplate(
            area_warning_template(scope, level),
            KIND,
            _HEAD[scope].format(zh=_ZH[level]) + todo + "中心值班电话{DUTY_PHONE}。",
            ("area", "change", "why"),
            ("why", "area"),
        )
        for (scope, level), todo in _TODO.items()
    ]
