"""Every SMS template, rendered for every event kind × recipient role × provider (and each late
flag), against the providers' published review rules as docs/delivery.md (*Texts*) lists them:

* 阿里云 (申请短信模板 / 通知短信模板规范): each variable 1–35 characters, never empty; variable
  names not email/mobile/id/nick/site; 【】 nowhere in the text; no adjacent variables and no
  all-variable template; a variable once per template; links only in the fixed text (ICP-filed
  domain, the path may end in a variable); at most 2 contact numbers, fixed ones landline/400/95;
  total (signature + text) ≤ 500.
* 腾讯云 (正文模板审核标准): {1}{2}… numbered from 1 in order; each value ≤ 12 characters (the
  documented cap); no 【】; no ¥ ★ ※ ✓ ☞ ^_^ & special symbols; no adjacent variables, no
  all-variable template; a link only as a constant, never in a variable; total ≤ 500.

And ours: a code, a token, a phone number, a reading or a 注册代码 is never cut (what was given
is what is sent); the text fits the configured segments; the link, where there is one, ends the
text whole.
"""

from __future__ import annotations

import itertools
import re

import pytest

from alerting.compose import audience
from alerting.templates import (
    ACK_TOKEN_LEN,
    KIND_ZH,
    PROVIDERS,
    TEMPLATES,
    Deployment,
    for_provider,
    registered_text,
    render,
    sms_segments,
    variant,
)
from alerting.templates.notices import NOTICE_LEVELS
from hazmon.contracts import RecipientRole

SIGN = "临江区应急管理局"
DEP = Deployment("https://yjzh.linjiang.gov.cn/ack", "0571-86001110")
_SPECIAL = re.compile(r"[¥★※✓☞→①•『』「」〖〗#&]|\^_\^")
_URL = re.compile(r"https?://[^\s，。]+")
_LANDLINE = re.compile(r"0\d{2,3}-\d{7,8}|400-?\d{3}-?\d{4}|95\d{3,6}")
_MOBILE = re.compile(r"1[3-9]\d{9}")

#: the longest values the sample district and the providers' rules allow, and the uncuttable ones
LONG = {
    "unit": "临江区钱塘江畔城市综合体商业运营管理有限公司美食广场（东区）",
    "loc": "地下一层美食广场后厨灶台上方燃气探测器附近区域",
    "person": "欧阳建国",
    "phone": "13957100001",
    "reading": "100%LEL",
    "regcode": "31103301152017432274",
    "when": "12月31日23:59",
    "asof": "12月31日23:59",  # a reminder's 截至
    "occurred": "12月31日20:05",
    "level": "红色报警",
    "code": "A7K2Q9",
    "token": "x" * ACK_TOKEN_LEN,
    "notice": "问题督办单",
    "unmet": "未处置",
    "deadline": "12月31日23:59",
    "body": "春节期间请落实燃气安全责任，使用燃气时保持通风，发现泄漏立即关阀并拨打119。",
    "at": "12月31日23:59",  # a 到场 recorded by SMS (alerting/arrival_reply.py)
    "minutes": "128",
    # 四单 (alerting/templates/notices.py): the issuer at routes.yaml's cap, what a 问责建议单 names
    "issuer": "临江区安全生产委员会办",
    "failed": "钱塘江畔街道办事处、区住房和城乡建设局、区应急管理局",
    "prev": "问题督办单",
    "due": "12月31日23:59",
}
UNCUT = ("phone", "reading", "regcode", "code", "token", "when", "asof", "occurred", "level", "deadline", "notice",
         "unmet", "at", "minutes", "issuer", "prev", "due")
ROLES = [r for r in RecipientRole]
#: every kind the detectors raise, and one from outside them (an Alertmanager alert: domain system)
#: and the monitoring system's own (templates/system.py), and a business kind no class names (其他)
EVENT_KINDS = [*sorted(KIND_ZH), "system.HazmonBridgeDown", "system.watchdog_heartbeat_lost", "system.canary_broken",
               "system.canary_degraded", "power.overload"]
#: the kinds sent without an alarm's kind × role: rendered once per provider
ANSWERS = ("broadcast", "ack_confirm", "arrival_overdue", "arrival_confirm", "arrival_refused", "outcome",
           "digest", "login_code", "undelivered", "hazard_overdue", "hazard_escalate", "workorder", "area_warning")


def _audience(role: RecipientRole) -> str:
    return audience(role)  # biz, sup, or mnt (a lift's 维保单位: alerting/templates/lift.py)


def _variables(text: str) -> list[str]:
    return re.findall(r"\$\{(\w+)\}|\{(\d+)\}", text)  # type: ignore[return-value]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_registered_texts_pass_the_providers_review(provider: str) -> None:
    rules = PROVIDERS[provider]
    names = for_provider(provider)
    assert names and len(names) <= (200 if provider == "tencent" else 10_000)  # 腾讯云: 200 templates
    for name in names:
        tpl, text = TEMPLATES[name], registered_text(name, provider, DEP)
        assert not re.search(r"[【】]", text), (provider, name, text)
        assert not _SPECIAL.search(text), (provider, name, text)
        assert not text.startswith(("[", "［")) and not text.endswith(("]", "］")), name
        # no adjacent variables; not all variables: the fixed text says what the message is
        assert not re.search(r"\}\$?\{", text), (name, text)
        fixed = re.sub(r"\$\{\w+\}|\{\d+\}", "", text)
        assert len(re.findall(r"[\u4e00-\u9fff]", fixed)) >= 4, (name, text)
        found = ["".join(v) for v in _variables(text)]
        if rules.style == "{n}":
            assert found == [str(i) for i in range(1, len(tpl.params) + 1)], (name, found)
        else:
            assert found == list(tpl.params) and len(set(found)) == len(found), (name, found)
            assert not set(found) & rules.forbidden_names, (name, found)
        # a link is fixed text, only the token after the last "/" varies, and it ends the text
        urls = _URL.findall(text)
        assert len(urls) == tpl.link, (name, text)
        if tpl.link:
            url = urls[0]
            assert url.startswith(DEP.ack_url + "/") and text.endswith(url), (name, text)
            assert re.fullmatch(re.escape(DEP.ack_url) + r"/(\$\{token\}|\{\d+\})", url), (name, url)
        # contact numbers: the fixed ones are landlines, at most 2 with the variable phone
        numbers = _LANDLINE.findall(fixed)
        assert not _MOBILE.search(fixed), (name, text)
        assert len(numbers) + ("phone" in tpl.params) <= 2, (name, text)


#: the 四单 levels with a text of their own, and whether a notice came before (a 问责建议单 names it)
NOTICE_CASES = [(level, prior) for level in NOTICE_LEVELS for prior in (True, False)]


def _cases() -> list[tuple[str, str, RecipientRole, str, str, bool, bool]]:
    out = []
    for kind, event_kind, role, late, reading, regcode in itertools.product(
            ("alarm", "alarm_repeat", "resolved", "notice"), EVENT_KINDS, ROLES, ("", "late", "clock_old"),
            (True, False), (True, False)):
        out.append((kind, event_kind, role, late, "23%LEL" if reading else "", regcode, False))
    return out


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_kind_role_and_provider_renders_within_the_rules(provider: str) -> None:
    rules = PROVIDERS[provider]
    registered = set(for_provider(provider))
    used: set[str] = set()
    for kind, event_kind, role, late, reading, regcode, _ in _cases():
        for link in (True, False):
            ok_link = link and rules.var_max >= ACK_TOKEN_LEN
            name = variant(kind, _audience(role), event_kind, link=ok_link, reading=bool(reading), late=late,
                           regcode=regcode and rules.var_max >= len(LONG["regcode"]))
            assert name in registered, (provider, kind, event_kind, role, name)
            used.add(name)
            params = {**LONG, "what": KIND_ZH.get(event_kind, "监控系统告警"),
                      "reading": reading or LONG["reading"]}
            body, sent = render(name, params, sign_name=SIGN, max_segments=3, provider=provider,
                                deployment=DEP)
            _check(provider, name, body, sent)
        if kind != "notice":
            continue
        for level, prior in NOTICE_CASES:  # the 四单 per level, whoever the role (notices reach no business)
            for link in (True, False):
                ok_link = link and rules.var_max >= ACK_TOKEN_LEN
                name = variant(kind, _audience(role), event_kind, link=ok_link, notice=level, prior=prior)
                assert name in registered, (provider, level, prior, name)
                used.add(name)
                body, sent = render(name, {**LONG, "what": KIND_ZH.get(event_kind, "监控系统告警")},
                                    sign_name=SIGN, max_segments=3, provider=provider, deployment=DEP)
                _check(provider, name, body, sent)
                _check_notice(level, body)
    # a broadcast, a reply's confirmation, the answers to a 维保单位's 到场: no kind × role, once per provider
    for name, tpl in TEMPLATES.items():
        if tpl.kind in ANSWERS and name in registered:
            values = {**LONG, "what": KIND_ZH["gas.high"], "more": "12"} if tpl.kind == "ack_confirm" else LONG
            if tpl.kind == "arrival_overdue":  # 维保到场超时 (alerting/arrival.py)
                values = {**LONG, "what": KIND_ZH["elevator.trapped"], "company": "杭州钱江电梯工程有限公司",
                          "limit": "30"}
            if tpl.kind == "outcome":  # 办结: the verdict told to the business (alerting/followup.py)
                values = {**LONG, "what": KIND_ZH["gas.high"]}
            if tpl.kind == "digest":  # 夜间免扰's morning digest: the longest unit, what and state
                values = {**LONG, "span": "22:00至07:00", "n": "128",
                          **{f"u{i}": LONG["unit"] for i in (1, 2, 3)},
                          **{f"w{i}": KIND_ZH["fire.supervisory"] for i in (1, 2, 3)},
                          **{f"s{i}": "黄色报警，未解除" for i in (1, 2, 3)}}
            if tpl.kind == "undelivered":  # the duty operator's 未送达 note (alerting/reach.py)
                values = {**LONG, "name": "欧阳建国", "role": "行业监管部门", "about": LONG["unit"],
                          "why": "已达腾讯云单号码当日发送上限（10条），未发送"}
            if tpl.kind in ("hazard_overdue", "hazard_escalate"):  # 隐患逾期 (alerting/hazard_overdue.py)
                values = {**LONG, "title": "后厨燃气管道穿越地下室未设置可燃气体探测报警装置",
                          "grade": "重大隐患", "days": "365", "owner": "欧阳建国（钱塘江畔城市综合体安全主管）"}
            if tpl.kind == "workorder":  # 工单 (alerting/workorder_notify.py): the longest 退回 reason
                values = {**LONG, "what": KIND_ZH["gas.high"], "why": "现场照片看不清，请补拍关阀、通风和更换软管后的照片再反馈"}
            if tpl.kind == "area_warning":  # 三色区域预警 (alerting/area_warning.py): the longest reasons
                values = {**LONG, "area": LONG["unit"], "change": "由橙色预警升为红色预警",
                          "why": "近30天真实警情12起、逾期未整改隐患8项、未整改重大隐患3项、近一年事故死亡2人"}
            if tpl.kind in ("arrival_confirm", "arrival_refused"):  # 到场 by SMS (alerting/arrival_reply.py)
                values = {**LONG, "what": KIND_ZH["elevator.trapped"], "more": "12"}
            body, sent = render(name, values, sign_name=SIGN, max_segments=3, provider=provider, deployment=DEP)
            _check(provider, name, body, sent)
            used.add(name)
    assert used == registered, sorted(registered - used)  # no template is left unrendered


def _check(provider: str, name: str, body: str, sent: dict[str, str]) -> None:
    rules, tpl = PROVIDERS[provider], TEMPLATES[name]
    full = f"【{SIGN}】{body}"
    assert len(full) <= rules.total_max, (name, len(full), body)
    # 3 segments (routes.yaml sms.max_segments); a late lift alarm with its 注册代码 and the link
    # may take a 4th once the unit and the place are down to their floor (fixed text is not cut)
    if sms_segments(full) > 3:
        assert sms_segments(full) <= 4 and all(len(sent[k].rstrip("…")) <= 4 for k in ("unit", "loc")), body
    assert body.count("【") == 0 and body.count("】") == 0, body
    assert sent["_tpl"] == name and set(sent) == set(tpl.params) | {"_tpl"}
    for k in tpl.params:
        v = sent[k]
        assert v, (name, k)  # a provider refuses an empty variable
        assert k in rules.long_vars or len(v) <= rules.var_max, (provider, name, k, v)
        assert not _URL.search(v) and "www." not in v, (name, k, v)  # no link in a variable
        if k in UNCUT:
            assert v == LONG[k] or (k == "reading" and v.endswith("%LEL")), (name, k, v)  # never cut
    if tpl.link:  # the link ends the text, whole
        assert body.endswith(f"{DEP.ack_url}/{LONG['token']}"), body
    else:
        assert "http" not in body
    no_code = ("resolved", "broadcast", "ack_confirm", "arrival_confirm", "arrival_refused", "outcome", "digest",
               "login_code", "undelivered", "hazard_overdue", "hazard_escalate",
               "area_warning")  # 登录验证码: its code signs in, it acknowledges nothing
    record = name.startswith("notice.accountability")  # an internal record asks no acknowledgement
    assert f"回复{LONG['code']}确认" in body or tpl.kind in no_code or record
    # a code: nothing else; the 未送达 note goes to the duty room itself
    # the monitoring system's own alarms (templates/system.py) are read by the duty room itself
    assert DEP.duty_phone in body or tpl.kind in ("broadcast", "login_code", "undelivered") or ".sys." in name


def _check_notice(level: str, body: str) -> None:
    """A 四单 text reads as the seeds mean it: in the issuer's name, a deadline that is one
    (于/限…前, never "请于…前立即…"), the 问责建议单 a record and no task to go and verify."""
    assert body.startswith(LONG["issuer"]), body
    assert "立即" not in body and "到场核实" not in body, body
    if level == "accountability":
        assert "内部记录" in body and "建议" in body and "回复" not in body and "http" not in body, body
    else:
        assert re.search(r"[于限]" + re.escape(LONG["deadline"]) + "前(反馈|处置到位)", body), body


def test_tencent_texts_carry_the_reply_code_not_a_cut_link() -> None:
    # 12 characters per value cannot hold the 22-character token: the variant without the link
    name = variant("alarm", "biz", "gas.high", link=PROVIDERS["tencent"].var_max >= ACK_TOKEN_LEN)
    assert not TEMPLATES[name].link
    body, _ = render(name, {**LONG, "what": "可燃气体浓度超高限报警"}, sign_name=SIGN, provider="tencent",
                     deployment=DEP)
    assert "http" not in body and "回复A7K2Q9确认" in body and "浓度100%LEL" in body
    assert "临江区钱塘江畔城市综合…的" in body  # the unit's name shortened to the cap, with an ellipsis


@pytest.mark.parametrize("event_kind", ["gas.low", "gas.high"])
def test_a_device_reported_gas_alarm_names_no_reading_it_does_not_have(event_kind: str) -> None:
    """A detector reported by the device itself (gasjson ``alarm: low``) carries no %LEL: the
    business's text names none, never "浓度无" (a provider refuses an empty variable, so a
    template with a reading could only be filled with a placeholder)."""
    for provider in PROVIDERS:
        name = variant("alarm", "biz", event_kind, link=False, reading=False)
        assert name in set(for_provider(provider)) and "reading" not in TEMPLATES[name].params
        params = {**LONG, "what": KIND_ZH[event_kind]}
        body, _ = render(name, params, sign_name=SIGN, max_segments=3, provider=provider, deployment=DEP)
        assert "浓度无" not in body and "浓度" + LONG["reading"] not in body, body
        with_reading = variant("alarm", "biz", event_kind, link=False, reading=True)
        assert "reading" in TEMPLATES[with_reading].params


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_login_code_is_one_segment_with_the_code_whole_and_no_link(provider: str) -> None:
    """登录验证码 (console/otp.py): a 验证码 template holds the code as its only variable, no link and
    no number, says how long it holds (the console's 5 minutes) and fits one segment."""
    tpl = TEMPLATES["login_code"]
    assert tpl.params == ("code",) and not tpl.link
    body, sent = render("login_code", {"code": "012345"}, sign_name=SIGN, provider=provider, deployment=DEP)
    assert "012345" in body and "5分钟" in body and not _URL.search(body) and not _MOBILE.search(body)
    assert sms_segments(f"【{SIGN}】{body}") == 1, body
    assert sent["code"] == "012345"
