"""What the console shows, in the operators' words (issue 14): the codes alerting and ingest store
— channels, statuses, templates, matrix rules, metric ids, refusal reasons, API errors — as
Chinese. The JSON the page reads carries these beside the codes (``*_zh`` fields); the page's own
tables (console/static/words.js) hold the same words only where it builds text itself.

A recipient's rule reads as a sentence: ``matrix:R-gas:department:D-ZJ`` → 燃气 → 区住建局（三管三必须）,
``township:T2:duty`` → 属地 → 新河街道（值班）, never the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from alerting.templates import KIND_ZH
from hazmon.catalog import METRICS

__all__ = [
    "CHANNEL_ZH", "DEADLETTER_ZH", "DOMAIN_ZH", "MATCHER_ZH", "NOTICE_STATUS_ZH", "NOTIFY_STATUS_ZH",
    "PHASE_ZH", "TEMPLATE_ZH", "TRANSITION_ZH", "VERDICT_ZH", "delivery_error", "has_latin", "matcher_words",
    "metric_words", "rule_ids", "rule_words", "summary_words", "suppressed_words", "template_words",
    "transition_reason",
]

DOMAIN_ZH = {"gas": "燃气", "elevator": "电梯", "fire": "消防", "device": "设备", "system": "监测系统"}
PHASE_ZH = {
    "alarm": "未研判",
    "verified": "已研判",
    "dispatched": "已派发",
    "handling": "处置中",
    "feedback": "已反馈",
    "closed": "已办结",
}
VERDICT_ZH = {"real": "真实警情", "false": "误报", "test": "测试", "fault": "设备故障"}
CHANNEL_ZH = {
    "sms": "短信",
    "voice": "语音呼叫",
    "wecom": "企业微信群",
    "dingtalk": "钉钉群",
    "console": "控制台",
    "webhook": "对接系统推送",
}
NOTIFY_STATUS_ZH = {
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "delivered": "已送达",
    "failed": "发送失败",
    "suppressed": "已去重",
    "undeliverable": "未送达",
}
NOTICE_STATUS_ZH = {
    "open": "待答复",
    "answered": "已答复",
    "superseded": "已由下一单接续",
    "closed": "已办结",
}
#: timeline actions (alert_transitions.action)
TRANSITION_ZH = {
    "fire": "报警",
    "resolve": "恢复",
    "verify": "研判",
    "acknowledge": "确认",
    "dispatch": "派发",
    "handle": "处置",
    "feedback": "反馈",
    "close": "办结",
    "escalate": "升级",
    "suppress": "静默",
    "unsuppress": "解除静默",
    "reopen": "重开",
    "notify": "通知",
    "arrival": "维保到场",
    "arrival_overdue": "维保到场超时",
}
#: the kind of a message (the first part of a template's name, alerting/templates/catalogue.py)
TEMPLATE_ZH = {
    "alarm": "报警通知",
    "repeat": "再次提醒",
    "alarm_repeat": "再次提醒",
    "resolved": "恢复通知",
    "notice": "四单通知",
    "notice_l": "四单通知",
    "digest": "夜间汇总",
    "outcome": "办结告知",
    "ack_confirm": "确认回执",
    "arrival": "到场回执",
    "broadcast": "安全公益短信",
    "login_code": "登录验证码",
    "hazard_overdue": "隐患逾期提醒",
    "hazard_escalate": "隐患逾期升级",
}
#: silences' matcher names
MATCHER_ZH = {
    "site_id": "场所",
    "device_id": "设备",
    "kind": "报警类型",
    "domain": "领域",
    "severity": "级别",
    "township_id": "镇街",
    "alertname": "报警名称",
    "test": "测试",
}
_SEVERITY_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
_OP_ZH = {"=": "为", "!=": "不为", "=~": "匹配", "!~": "不匹配"}
#: why ingest refused a payload (deadletters.reason)
DEADLETTER_ZH = {
    "malformed": "报文无法解析",
    "schema": "字段缺失或类型不符",
    "checksum": "帧校验和错误",
    "truncated": "报文不完整",
    "oversized": "报文过大",
    "unknown_device": "设备未登记",
    "unknown_vendor": "厂商未登记",
    "forbidden_topic": "上报到无权使用的主题",
    "unknown_metric": "未知的监测项",
    "out_of_range": "数值超出量程",
    "bad_timestamp": "时间戳错误",
    "unsupported_version": "协议版本不支持",
    "refused": "数据库拒收",
    "internal": "内部处理错误",
    "too_large": "报文过大",
    "retained": "保留消息（不接收）",
    "rate_limited": "上报过于频繁（已限流）",
    "unregistered_part": "部件未登记（报文照常处理）",
}

_LATIN = re.compile(r"[A-Za-z]{2,}")
_UNITS = re.compile(r"%LEL|m/s|%/m")


def has_latin(text: str) -> bool:
    """Whether ``text`` holds a Latin word besides the units people read (%LEL …)."""
    return bool(_LATIN.search(_UNITS.sub("", text)))


def delivery_error(text: str | None) -> str:
    """Why a message failed, for the 通知记录: alerting's own reasons are Chinese (未送达：无可用触达渠道);
    a provider's code (isv.BUSINESS_LIMIT_CONTROL, HTTP 500) is said in words, the code kept in the JSON."""
    text = str(text or "")
    if not text or not has_latin(text):
        return text
    if re.search(r"[\u4e00-\u9fff]", text):
        return re.sub(r"\s*[(（][^()（）\u4e00-\u9fff]*[)）]", "", text)
    return "服务商拒绝或未应答（原始代码见发送记录）"


def summary_words(kind: str, summary: str) -> str:
    """What happened: the detector's summary when it is Chinese (老王饭店 燃气浓度 32%LEL), else the
    event kind in words (``设备上报 trapped`` → 电梯困人)."""
    if summary and not has_latin(summary):
        return summary
    return KIND_ZH.get(kind) or "报警"


def metric_words(metric: str, unit: str | None = None) -> str:
    """``gas_lel`` → 可燃气体浓度（%LEL）: a chart axis."""
    spec = METRICS.get(metric)
    name = spec.zh if spec else ("设备上报事件" if metric.startswith("code:") else "读数")
    unit = unit if unit is not None else (spec.unit if spec else "")
    return f"{name}（{unit}）" if unit else name


def template_words(template: str) -> str:
    """``alarm`` / ``repeat.biz.gas_leak`` → 报警通知 / 再次提醒."""
    return TEMPLATE_ZH.get(template) or TEMPLATE_ZH.get(template.split(".", 1)[0], "通知")


def rule_ids(rules: Iterable[str]) -> dict[str, set[str]]:
    """The registry ids a set of rules names, per kind (department, township, village, site, leader)."""
    out: dict[str, set[str]] = {k: set() for k in ("department", "township", "village", "site", "leader")}
    for rule in rules:
        for part in str(rule or "").split(";"):
            bits = part.split(":")
            if bits[0] in ("township", "village", "site") and len(bits) > 1:
                out[bits[0]].add(bits[1])
            if bits[0] == "matrix" and len(bits) == 4 and bits[2] in ("department", "leader"):
                out[bits[2]].add(bits[3])
            if bits[0] == "site" and len(bits) == 4 and bits[2] == "covering_leader":
                out["leader"].add(bits[3])
    return out


def _one_rule(part: str, domain: str, name_of: Callable[[str, str], str]) -> str:
    bits = part.split(":")
    head = bits[0]
    domain_zh = DOMAIN_ZH.get(domain, "行业")
    if head == "matrix" and len(bits) == 4 and bits[2] == "department":
        return f"{domain_zh} → {name_of('department', bits[3]) or '监管部门'}（三管三必须）"
    if head == "matrix" and len(bits) == 4 and bits[2] == "leader":
        return f"{domain_zh} → {name_of('leader', bits[3]) or '责任领导'}（责任领导）"
    if head == "township" and len(bits) > 1:
        return f"属地 → {name_of('township', bits[1]) or '镇街'}（值班）"
    if head == "village" and len(bits) > 1:
        return f"属地 → {name_of('village', bits[1]) or '村社区'}（网格员）"
    if head == "site" and len(bits) == 4 and bits[2] == "covering_leader":
        return f"包保 → {name_of('leader', bits[3]) or '包保领导'}（包保责任）"
    if head == "site" and len(bits) > 1:
        return f"企业 → {name_of('site', bits[1]) or '本单位'}（主体责任）"
    if head == "device" and len(bits) == 4 and bits[2] == "maintainer":
        return f"{domain_zh} → {name_of('maintainer', part) or '维保单位'}（维保单位）"
    if head == "fallback":
        return "兜底 → 中心值班员（24小时值班）"
    if head == "broadcast":
        return "安全公益短信 → 订阅的市民和企业"
    return "其他规则"


def rule_words(rule: str, domain: str, names: Mapping[tuple[str, str], str]) -> str:
    """A recipient's rule as a sentence; a combined rule (the duty room's console row names every
    recipient it stands for, ``;``-joined) as its sentences joined by ；. ``names``: (kind, id) →
    name of the registry's units (a maintainer by its whole rule)."""
    seen: list[str] = []
    for part in str(rule or "").split(";"):
        words = _one_rule(part, domain, lambda kind, ident: names.get((kind, ident), ""))
        if part and words not in seen:
            seen.append(words)
    return "；".join(seen) or "—"


def matcher_words(m: Mapping[str, Any]) -> str:
    """A silence's matcher as people read it: ``site_id=S2`` → 场所为 城关商场（S2）is done by the
    caller with names; here the name and the value's own words (kind, domain, severity)."""
    name, op, value = str(m.get("name", "")), str(m.get("op", "=")), str(m.get("value", ""))
    shown = KIND_ZH.get(value) or DOMAIN_ZH.get(value) or _SEVERITY_ZH.get(value) or value
    return f"{MATCHER_ZH.get(name, '标签')}{_OP_ZH.get(op, op)} {shown}"


def suppressed_words(code: str | None) -> str:
    """What mutes an alert: ``silence:sil-1`` → 静默规则 sil-1（维保/测试报备）, ``inhibit:…`` → 被同一
    场所更严重的报警抑制."""
    kind, _, rest = str(code or "").partition(":")
    if kind == "silence":
        return f"静默规则 {rest}（维保/测试报备）"
    if kind == "inhibit":
        return "被同一场所更严重的报警抑制"
    return "已静默" if code else ""


def transition_reason(action: str, reason: str | None, kind: str) -> str:
    """A timeline row's reason in words: a ``notify`` row's template, an alarm's summary, what
    muted it; an operator's own text as typed."""
    reason = str(reason or "")
    if action == "notify":
        return template_words(reason)
    if action in ("fire", "resolve"):
        return summary_words(kind, reason) if reason else ""
    if action in ("suppress", "unsuppress"):
        return suppressed_words(reason)
    return reason

