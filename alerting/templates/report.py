"""报备结束提醒: when a 维保/测试 报备 (alerting/report.py) ends, whoever filed it reads in one SMS
that the window is over and which alarms were held (暂缓通知) during it — none, one, two, or the
count with the first two — each with whether it is still going on.

Kind ``digest`` (a digest of held alarms, like the morning one of quiet hours) and its variable
names (``span``, ``n``, ``w1``/``s1`` …), so the conformance test renders these too; no reply
code and no link (nothing to acknowledge), the duty number as fixed text.
"""

from __future__ import annotations

from alerting.templates.rules import SmsTemplate

__all__ = ["REPORT_SLOTS", "report_end_templates", "report_end_template"]

#: how many held alarms the reminder names (the rest are counted)
REPORT_SLOTS = 2


def report_end_template(held: int) -> str:
    """The registered template of the reminder naming ``held`` alarms."""
    return f"report_end.{held}" if held <= REPORT_SLOTS else "report_end.more"


def report_end_templates() -> list[SmsTemplate]:
    head = "{unit}的{what}报备（{span}）已结束"
    tail = "。请核实现场，详情请登录监测平台查看，中心值班电话{DUTY_PHONE}。"
    items = ["{w1}（{s1}）", "{w2}（{s2}）"]
    out = [SmsTemplate("report_end.0", "digest",
                       head + "，期间没有报警被暂缓通知，设备已恢复正常监测。中心值班电话{DUTY_PHONE}。",
                       ("unit", "what", "span"), ("unit",))]
    for n in (1, 2):
        params = ("unit", "what", "span", *(p for i in range(1, n + 1) for p in (f"w{i}", f"s{i}")))
        out.append(SmsTemplate(f"report_end.{n}", "digest", head + "，期间暂缓通知的报警：" + "；".join(items[:n]) + tail,
                               params, ("unit", "w1", "w2")[: n + 1]))
    out.append(SmsTemplate("report_end.more", "digest",
                           head + "，期间暂缓通知的报警共{n}条，其中" + "；".join(items) + "等" + tail,
                           ("unit", "what", "span", "n", "w1", "s1", "w2", "s2"), ("unit", "w1", "w2")))
    return out
