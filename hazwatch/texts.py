"""What the duty operator reads and hears from the watchdog: one entry per problem it pages
(:data:`PROBLEMS`), the two SMS templates (the page and its 恢复) and the call script.

The SMS templates follow the providers' review rules as alerting's do (docs/delivery.md,
*Texts*): fixed text around short variables, none adjacent, none over 腾讯云's 12 characters
(so one registered text serves every provider), no 【】, no link, no number. They are the
watchdog's own, registered under their own codes (:data:`SMS_TEMPLATE_CODES`), and sent through
alerting's provider adapters exactly as alerting sends its texts. The call is the ``voice_watchdog``
script of :mod:`alerting.notify.voice` (no "按1确认": nothing answers a key while alerting is down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["Problem", "PROBLEMS", "SmsText", "PAGE", "RECOVERED", "SMS_TEMPLATE_CODES",
           "VOICE_TEMPLATE", "VAR_MAX", "when", "page_params", "recovered_params", "render"]

_CST = timezone(timedelta(hours=8))
#: the shortest provider cap (腾讯云, 12 characters per variable): every value fits it
VAR_MAX = 12


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem the watchdog pages: what is wrong, what it means, and the part that recovers."""

    key: str
    what: str  # 告警服务停止运行
    impact: str  # 报警短信和电话无法发出
    part: str  # 告警服务 (…已恢复正常)


PROBLEMS: dict[str, Problem] = {p.key: p for p in (
    Problem("db_unreachable", "数据库无法连接", "报警无法记录和发出", "数据库连接"),
    Problem("db_refuses_writes", "数据库拒绝写入", "报警无法记录和发出", "数据库写入"),
    Problem("alerting_down", "告警服务停止运行", "报警短信和电话无法发出", "告警服务"),
    Problem("sms_failing", "报警短信发送失败", "报警短信无法送达", "报警短信发送"),
    Problem("sms_unreachable", "短信接口无法连接", "报警短信无法发出", "短信接口连接"),
    Problem("outbox_stuck", "报警短信积压未发", "报警未能及时发出", "报警短信发送"),
    Problem("canary_broken", "监测链路中断", "告警服务未发出报警", "监测链路"),
)}


@dataclass(frozen=True, slots=True)
class SmsText:
    name: str
    text: str  # str.format over params
    params: tuple[str, ...]  # 腾讯云's positional order


PAGE = SmsText("watchdog.page", "监测系统故障：{what}，{impact}（{since}起）。请立即组织检修，检修期间人工值守。",
               ("what", "impact", "since"))
RECOVERED = SmsText("watchdog.ok", "监测系统恢复：{part}已恢复正常（{since}至{until}）。"
                                   "请核查故障期间的报警是否均已发出并处置。", ("part", "since", "until"))

#: the codes a deployment registers these under (阿里云 TemplateCode / 腾讯云 TemplateId), as
#: alerting.templates.TEMPLATE_CODES holds alerting's; the webhook gateway gets the text itself
SMS_TEMPLATE_CODES: dict[str, dict[str, str]] = {
    "aliyun": {"watchdog.page": "SMS_480290001", "watchdog.ok": "SMS_480290002"},
    "tencent": {"watchdog.page": "2190001", "watchdog.ok": "2190002"},
    "webhook": {"watchdog.page": "watchdog.page", "watchdog.ok": "watchdog.ok"},
}
#: the call script (alerting.notify.voice.VOICE_TEMPLATES)
VOICE_TEMPLATE = "voice_watchdog"


def when(at: datetime, *, with_date: bool = True) -> str:
    """``12月7日08:59`` (or ``08:59``) in China time, the reader's clock."""
    t = at.astimezone(_CST)
    return f"{t.month}月{t.day}日{t:%H:%M}" if with_date else f"{t:%H:%M}"


def page_params(problem: str, since: datetime) -> dict[str, str]:
    p = PROBLEMS[problem]
    return {"what": p.what, "impact": p.impact, "since": when(since)}


def recovered_params(problem: str, since: datetime, until: datetime) -> dict[str, str]:
    same_day = since.astimezone(_CST).date() == until.astimezone(_CST).date()
    return {"part": PROBLEMS[problem].part, "since": when(since),
            "until": when(until, with_date=not same_day)}


def render(tpl: SmsText, params: dict[str, str]) -> str:
    return tpl.text.format(**{k: params[k] for k in tpl.params})
