"""Refusals and API errors in Chinese (issue 14): alerting's and the console's English problems
(``alert is closed``, ``site 'S9' not found`` …) as the operators read them, FastAPI's 422 list as
one sentence. The app's exception handlers (console/app.py) and the alert actions' 409 answers
pass every ``detail`` a person may read through here; the English stays in the log and, for
programs, beside it (``problem_code``, ``errors``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from console.words import DOMAIN_ZH, PHASE_ZH, VERDICT_ZH, has_latin

__all__ = ["error_zh", "problem_zh", "validation_zh"]

_ENTITY_ZH = {
    "alert": "报警",
    "site": "场所",
    "device": "设备",
    "event": "事件",
    "hazard": "隐患",
    "silence": "静默",
    "matrix rule": "矩阵规则",
    "user": "账号",
}


def _role(code: str) -> str:
    from console.scope import Role  # console.scope is the console's own; imported late, once needed

    try:
        return Role(code).zh
    except ValueError:
        return "该类"


def _phase(p: str) -> str:
    return PHASE_ZH.get(p, p)


def _phases(s: str) -> str:
    return "或".join(_phase(x) for x in s.split(" or "))


_Words = str | Callable[[re.Match[str]], str]


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _table(rows: Iterable[tuple[str, _Words]]) -> list[_Rule]:
    """(pattern, words) compiled: ``words`` is the sentence, with ``{1}``, ``{2}`` … for the match's
    groups, or a function of the match where a group is itself translated."""

    def say(words: _Words) -> Callable[[re.Match[str]], str]:
        if callable(words):
            return words
        return lambda m: words.format(m[0], *m.groups())

    return [(re.compile(pattern), say(words)) for pattern, words in rows]


#: (pattern, words): alerting's and the console's English refusals, most specific first
_PROBLEMS = _table([
    (r"^stale version \d+: the alert is at version (\d+).*",
     "报警已被他人更新（当前版本 {1}），请刷新后再操作"),
    (r"^alert is closed$", "报警已办结"),
    (r"^alert is (\w+) \(([^)]*)\); a real alarm closes after feedback, others after 研判$",
     lambda m: f"报警当前{_phase(m[1])}：真实警情须反馈后办结，其他研判后即可办结"),
    (r"^alert is (\w+); dispatch needs verified$", lambda m: f"报警当前{_phase(m[1])}，须先研判再派发"),
    (r"^alert is (\w+); this action needs (.+)$",
     lambda m: f"报警当前{_phase(m[1])}，该操作须在{_phases(m[2])}时进行"),
    (r"^a (\w+) alarm is closed, not dispatched$",
     lambda m: f"研判为{VERDICT_ZH.get(m[1], m[1])}的报警直接办结，不派发"),
    (r"^already acknowledged by .+$", "报警已有人确认"),
    (r"^already closed by .+$", "报警已办结"),
    (r"^(alert|site|device|event|hazard|silence|matrix rule|user) '(.*)' not found$",
     lambda m: f"未找到该{_ENTITY_ZH[m[1]]}（不存在或不在您的查看范围内）"),
    (r"^not signed in.*", "请先登录"),
    (r"^session expired or unknown.*", "会话已过期，请重新登录"),
    (r"^跨站请求被拒绝 \(.*\)$", "跨站请求被拒绝"),
    (r"^跨站登录请求被拒绝 \(.*\)$", "跨站登录请求被拒绝"),
    (r"^缺少或错误的 .* 请求头，请刷新页面.*", "页面已过期（缺少防伪校验），请刷新页面"),
    (r"^用户名或密码错误 \(.*\)$", "用户名或密码错误"),
    (r"^an admin cannot deactivate their own account$", "管理员不能停用自己的账号"),
    (r"^give either period or since/until, not both$", "请只给出统计周期或起止时间之一"),
    (r"^the period must end after it starts$", "统计周期的结束须晚于开始"),
    (r"^period '(.*)': .*", "无法识别的统计周期：{1}"),
    (r"^(since|until): .* is outside the supported range 1970..2200$",
     lambda m: f"{'开始' if m[1] == 'since' else '结束'}时间须在1970年至2200年之间"),
    (r"^since \(.*\) must be before until \(.*\)$", "开始时间须早于结束时间"),
    (r"^site_id: site '(.*)' not found$", "未找到场所：{1}"),
    (r"^domain: unknown domain '(.*)'$", "未知领域：{1}"),
    (r"^domain: '(.*)' is not one of your department's domains$",
     lambda m: f"{DOMAIN_ZH.get(m[1], m[1])}不属于本部门监管的领域"),
    (r"^department_ids: unknown department\(s\): (.*)$", "未知部门：{1}"),
    (r"^leader_id: unknown leader '(.*)'$", "未知责任领导：{1}"),
    (r"^(研判|反馈|办结) needs (a reason|a note)$",
     lambda m: f"{m[1]}须填写{'说明' if m[2] == 'a reason' else '内容'}"),
    (r"^dispatch needs at least one unit$", "派发须至少选择一个单位"),
    (r"^a hazard needs a title$", "隐患须填写名称"),
    (r"^grade must be general.*", "隐患等级须为一般隐患或重大隐患"),
    (r"^(.+) needs a reason$", "该操作须填写原因"),
    (r"^the deadline must be in the future$", "整改期限须晚于现在"),
    (r"^挂牌督办 needs a supervising unit$", "挂牌督办须指定督办单位"),
    (r"^a silence needs its creator$", "静默须记录创建人"),
    (r"^a silence needs a reason.*", "静默须填写原因（如：电梯维保 11月3日9:00-11:00）"),
    (r"^a silence needs an expiry.*", "静默须设结束时间：不设期限的静默会漏报警"),
    (r"^ends_at must be after starts_at$", "结束时间须晚于开始时间"),
    (r"^a silence may last at most (\d+) days$", "静默最长{1}天"),
    (r"^a silence needs at least one matcher$", "静默须至少指定一个匹配条件"),
    (r"^bad matcher: .*", "匹配条件格式错误"),
    (r"^these matchers would silence every alert.*", "该条件会静默全部报警，请指定场所、设备或报警类型"),
    (r"^监测状态表不存在.*", "监测状态表不存在：数据库尚未升级到本版本，请管理员执行数据库升级"),
    # accounts (console/users.py)
    (r"^username: \d+–\d+ of .*", "用户名须为3至32位小写字母、数字或 _ . -，以字母或数字开头"),
    (r"^password: at least (\d+) characters$", "密码至少{1}个字符"),
    (r"^(\w+): required for role (\w+)$",
     lambda m: f"{_role(m[2])}账号须指定{_FIELD_ZH.get(m[1], '范围')}"),
    (r"^(\w+): only for role (\w+), not (\w+)$",
     lambda m: f"{_FIELD_ZH.get(m[1], '该字段')}只适用于{_role(m[2])}账号，不适用于{_role(m[3])}账号"),
    (r"^(\w+): unknown \w+ id\(s\): (.*)$", lambda m: f"未知的{_FIELD_ZH.get(m[1], '编号')}：{m[2]}"),
    (r"^username: '(.*)' already exists$", "用户名已存在：{1}"),
    (r"^phone: 11 位手机号码.*", "手机号码须为11位大陆手机号"),
    (r"^phone: .* 已属于另一个账号.*", "该手机号已属于另一个账号"),
    (r"^internal error.*", "系统内部错误（已记录日志），请稍后重试或联系管理员"),
    (r"^invalid input: .*", "输入的数据无法保存，请检查后重试"),
])


_CJK = re.compile(r"[\u4e00-\u9fff]")
_GLOSS = re.compile(r"\s*\([^()\u4e00-\u9fff]*\)")


def problem_zh(text: str | None) -> str:
    """A refusal or error as the operators read it; Chinese text passes unchanged, an English one
    no pattern knows becomes a generic sentence (the original stays in the log and the JSON)."""
    text = str(text or "")
    if not has_latin(text):
        return text
    for pattern, words in _PROBLEMS:
        m = pattern.match(text)
        if m:
            return words(m)
    if _CJK.search(text):  # Chinese with an English gloss: the gloss goes
        return _GLOSS.sub("", text)
    return "操作未执行：请求不符合要求，请检查后重试"


def error_zh(detail: Any) -> Any:
    """An HTTPException's ``detail`` in Chinese (a string detail; anything else unchanged)."""
    return problem_zh(detail) if isinstance(detail, str) else detail


_VALIDATION_ZH: dict[str, str] = {
    "missing": "必须填写",
    "string_too_short": "不能为空或太短",
    "string_too_long": "太长",
    "string_pattern_mismatch": "含有不允许的字符或格式不对",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "int_parsing": "须为整数",
    "float_parsing": "须为数字",
    "bool_parsing": "须为是或否",
    "datetime_parsing": "须为带时区的时间",
    "datetime_from_date_parsing": "须为带时区的时间",
    "timezone_aware": "须带时区",
    "greater_than_equal": "太小",
    "less_than_equal": "太大",
    "greater_than": "太小",
    "less_than": "太大",
    "too_short": "太少",
    "too_long": "太多",
    "json_invalid": "格式错误（无法解析）",
    "model_attributes_type": "格式不对",
    "dict_type": "格式不对",
    "list_type": "须为列表",
    "string_type": "须为文字",
    "int_type": "须为整数",
    "extra_forbidden": "是不认识的字段",
}
_FIELD_ZH: dict[str, str] = {
    "reason": "原因",
    "note": "内容",
    "reply": "回复",
    "verdict": "研判结论",
    "units": "派发单位",
    "username": "用户名",
    "password": "密码",
    "expected_version": "版本",
    "page": "页码",
    "page_size": "每页条数",
    "since": "开始时间",
    "until": "结束时间",
    "site_id": "场所",
    "device_id": "设备",
    "domain": "领域",
    "title": "名称",
    "deadline": "期限",
    "ends_at": "结束时间",
    "starts_at": "开始时间",
    "matchers": "匹配条件",
    "severity": "级别",
    "phase": "状态",
    "body": "请求内容",
    "q": "搜索词",
    "presence": "在线状态",
    "period": "统计周期",
    "vendor": "厂商",
    "township_id": "镇街",
    "problem": "问题类型",
    "state": "状态",
    "open": "是否未办结",
    "grade": "隐患等级",
    "department_ids": "部门",
    "leader_id": "责任领导",
    "industries": "行业",
    "name": "名称",
    "value": "取值",
    "op": "条件",
    "photo_ref": "照片",
    "alert_id": "报警",
    "hazard_id": "隐患",
    "silence_id": "静默",
    "rule_id": "矩阵规则",
    "include_expired": "是否含已结束",
    "department_id": "部门",
    "site_ids": "场所",
    "vendor_id": "厂商",
    "village_id": "村（社区）",
    "maintainer_id": "维保单位",
    "phone": "手机号码",
    "role": "角色",
    "display_name": "姓名",
}


def validation_zh(errors: Iterable[Mapping[str, Any]]) -> str:
    """FastAPI's 422 list as one Chinese sentence: 请求有误：原因 不能为空；页码 太小."""
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header")]
        field = next(
            (_FIELD_ZH[x] for x in reversed(loc) if x in _FIELD_ZH), "请求内容" if not loc else "某一字段"
        )
        parts.append(f"{field}{_VALIDATION_ZH.get(str(e.get('type', '')), '格式不对')}")
    return "请求有误：" + ("；".join(dict.fromkeys(parts)) or "格式不对")
