"""Chinese SMS templates as registered with the providers: one per message kind × audience ×
advice, fixed text around short variables, each provider's review rules kept (docs/delivery.md,
*Texts*).

Why so many templates: the providers' review refuses a link or a contact number in a variable,
【】 in a body, adjacent or all-variable templates, and caps each variable (阿里云 35 characters,
腾讯云 12). So what a person must read whole — the advice, the link, the centre's duty number —
is fixed text of the registered template, and the variables are short facts (the unit, where the
device is, what happened, the reading, the time, the 回复码, the link token).

Deployment constants: the acknowledgement link's base (``sms.ack_base_url``) and the duty
room's number (``sms.duty_phone``) are part of the template text registered for a deployment
(:func:`registered_text` prints it), written ``{ACK_URL}`` / ``{DUTY_PHONE}`` here; only the
token after ``…/`` varies. A provider whose cap is shorter than the token (腾讯云) gets the
variants without the link: a reply code only, never a cut link.

Length: a text with any Chinese character travels as UCS-2 — 70 characters in a single SMS, 67
per segment once split. The provider prepends the signature 【签名】 (``sms.sign_name``), which
counts too. :func:`render` shortens the text variables (the unit's name first, then where the
device is) with an ellipsis until the text fits; the code, the token and the numbers are never cut.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = [
    "ACK_TOKEN_LEN",
    "ADVICE",
    "CST",
    "Deployment",
    "KIND_ZH",
    "PROVIDERS",
    "ProviderRules",
    "SmsTemplate",
    "TEMPLATES",
    "TEMPLATE_CODES",
    "advice_class",
    "ack_placeholder",
    "for_provider",
    "format_when",
    "provider_params",
    "REGCODE_LEN",
    "registered_name",
    "registered_text",
    "render",
    "severity_words",
    "sms_segments",
    "variant",
    "what_happened",
    "what_to_do",
]

CST = timezone(timedelta(hours=8), "CST")
#: characters of a short-link token (128 random bits, URL-safe base64: alerting/acks.py)
ACK_TOKEN_LEN = 22
#: the params key naming the registered template a message was rendered from (kept out of the
#: provider's TemplateParam by :func:`provider_params`)
TPL_KEY = "_tpl"


@dataclass(frozen=True, slots=True)
class ProviderRules:
    """What a provider's review accepts, as implemented (sources: docs/delivery.md, *Texts*)."""

    name: str
    var_max: int  # characters per variable value
    style: str  # how a variable is written in the registered text: "${name}" or "{n}"
    forbidden_names: frozenset[str] = frozenset()
    total_max: int = 500  # signature + text + values
    #: variables allowed past ``var_max`` only with the provider's 长变量 approval (broadcasts)
    long_vars: frozenset[str] = frozenset({"body"})


PROVIDERS: dict[str, ProviderRules] = {
    # 阿里云 短信服务, 申请短信模板 / 通知短信模板规范: each variable 1–35 characters and never
    # empty; variable names letters/digits, not email/mobile/id/nick/site
    "aliyun": ProviderRules("aliyun", 35, "${name}", frozenset({"email", "mobile", "id", "nick", "site"})),
    # 腾讯云 短信, 正文模板审核标准: {1}{2}…; each value at most 12 characters (the documented
    # figure; the current page defers to the console, the FAQ says 6 for some accounts)
    "tencent": ProviderRules("tencent", 12, "{n}"),
    # our generic gateway fronts a carrier with the same review as 阿里云
    "webhook": ProviderRules("webhook", 35, "${name}", frozenset({"email", "mobile", "id", "nick", "site"})),
}


@dataclass(frozen=True, slots=True)
class Deployment:
    """The constants baked into a deployment's registered templates."""

    ack_url: str = ""  # sms.ack_base_url, e.g. https://yj.example.gov.cn/ack
    duty_phone: str = "0571-88001110"  # sms.duty_phone, the centre's 24-hour duty room


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    name: str
    kind: str  # the message kind recorded on the outbox row: alarm, alarm_repeat, resolved, notice, broadcast
    text: str  # str.format over params plus the constants ACK_URL, DUTY_PHONE
    params: tuple[str, ...]  # provider parameter order (Tencent's TemplateParamSet is positional)
    shrink: tuple[str, ...]  # text variables that may be shortened with "…", first shortened first
    link: bool = False  # the text holds {ACK_URL}/{token}

    @property
    def constants(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.text) if f and f.isupper())


#: What happened, in the words operators use, per event kind.
KIND_ZH: dict[str, str] = {
    "gas.high": "可燃气体浓度超高限报警",
    "gas.low": "可燃气体浓度低限报警",
    "gas.rate_of_rise": "可燃气体浓度快速上升",
    "gas.sensor_fault": "燃气探测器故障",
    "gas.valve_fault": "燃气切断阀故障",
    "gas.valve_closed": "燃气切断阀动作关闭",
    "gas.power_loss": "燃气报警装置断电",
    "gas.flatline": "燃气探测器读数停滞",
    "elevator.trapped": "电梯困人",
    "elevator.door_lock_fault": "电梯门锁回路故障",
    "elevator.door_open_moving": "电梯开门走车",
    "elevator.overspeed": "电梯超速",
    "elevator.overtravel_top": "电梯冲顶",
    "elevator.overtravel_bottom": "电梯蹲底",
    "elevator.stopped_out_of_zone": "电梯非平层停梯",
    "elevator.fault": "电梯故障",
    "elevator.frequent_faults": "电梯频繁故障",
    "fire.alarm": "火灾报警",
    "fire.fault": "消防设备故障",
    "fire.supervisory": "消防监管报警",
    "fire.shielded_too_long": "消防部件长时间屏蔽",
    "fire.rate_of_rise": "温度烟雾快速上升",
    "device.offline": "设备离线",
}

#: What the business does now, per advice class (fixed template text). Gas: the practice of the
#: gas companies' safety notices — no switches, no flames, shut the valve, ventilate, leave, call
#: the repair line or 119 from outside.
ADVICE: dict[str, str] = {
    "gas_leak": ("请立即关闭燃气阀门、开窗通风并疏散人员，严禁开关电器、使用明火，"
                 "到室外拨打燃气企业抢修电话或119"),
    "gas_device": "请尽快检修燃气报警装置，检修期间加强人工巡查，闻到燃气味立即关阀并拨打119",
    "lift_trapped": "请立即通知维保单位到场救援，通过对讲安抚被困人员，严禁非专业人员扒门施救",
    "lift_fault": "请立即停梯并设置警示，通知维保单位检修，排除故障前不得恢复使用",
    "fire_alarm": "请立即派人到场核实火情，确认起火立即拨打119并组织人员疏散",
    "fire_device": "请尽快安排消防设施维保单位检修，恢复正常监控",
    "offline": "请检查设备供电和网络，尽快恢复在线",
    "other": "请尽快核查处置并反馈",
}
_ADVICE_OF: tuple[tuple[str, str], ...] = (
    ("gas.high", "gas_leak"), ("gas.low", "gas_leak"), ("gas.rate_of_rise", "gas_leak"),
    ("gas.", "gas_device"),
    ("elevator.trapped", "lift_trapped"), ("elevator.", "lift_fault"),
    ("fire.alarm", "fire_alarm"), ("fire.rate_of_rise", "fire_alarm"), ("fire.", "fire_device"),
    ("device.offline", "offline"),
)
#: advice classes whose events carry a reading (浓度 …%LEL): their templates name it
_WITH_READING = frozenset({"gas_leak"})
#: advice classes of lifts: their templates name the 注册代码 when the registry has it
_LIFT = frozenset({"lift_trapped", "lift_fault"})


def advice_class(kind: str) -> str:
    for prefix, cls in _ADVICE_OF:
        if kind.startswith(prefix):
            return cls
    return "other"


#: late data (alerting/late.py): what an alarm text says after its time; ``when`` is then when
#: hazmon learned of it
_LATE: dict[str, tuple[str, tuple[str, ...]]] = {
    "": ("", ()),
    "late": ("，设备延迟上报，实际发生于{occurred}", ("occurred",)),
    "clock": ("，设备时间异常，按接报时间计", ()),
}


def _templates() -> list[SmsTemplate]:
    out: list[SmsTemplate] = []
    ack = "回复{code}确认"
    link = "，或点{ACK_URL}/{token}"
    duty = "中心值班电话{DUTY_PHONE}。"
    reg = "（注册代码{regcode}）"
    gas = "，浓度{reading}"
    sup_ask = "请到场核实、督促企业处置，企业联系人{person}，电话{phone}。"
    sup_again = "请督促企业立即处置，企业联系人{person}，电话{phone}。"
    who = ("person", "phone")

    def add(name: str, kind: str, text: str, params: tuple[str, ...], shrink: tuple[str, ...],
            ack_part: bool = True) -> None:
        if not ack_part:
            out.append(SmsTemplate(name, kind, text, params, shrink))
            return
        out.append(SmsTemplate(name, kind, text + ack + "。", params + ("code",), shrink))
        out.append(SmsTemplate(name + "_l", kind, text + ack + link, params + ("code", "token"), shrink,
                               True))

    def alarm(at: str, ap: tuple[str, ...], rd: str, rp: tuple[str, ...], late: str, lp: tuple[str, ...]
              ) -> tuple[str, tuple[str, ...]]:
        text = "{level}：{unit}的{loc}" + at + "发生{what}" + rd + "（{when}" + late + "）。"
        return text, ("level", "unit", "loc", *ap, "what", *rp, "when", *lp)

    def again(at: str, ap: tuple[str, ...], rd: str, rp: tuple[str, ...], late: str, lp: tuple[str, ...]
              ) -> tuple[str, tuple[str, ...]]:
        text = ("再次提醒：{unit}的{loc}" + at + "的{what}仍未解除" + rd.replace("，", "，当前")
                + "（{level}，{when}起" + late + "）。")
        return text, ("unit", "loc", *ap, "what", *rp, "level", "when", *lp)

    for flag, (late, lp) in _LATE.items():
        sfx = f".{flag}" if flag else ""
        for cls, todo in ADVICE.items():
            # a device-reported alarm carries no reading: its text names none (never "浓度无")
            readings = ((gas, ("reading",), ""), ("", (), ".nr")) if cls in _WITH_READING else (("", (), ""),)
            with_reg = (("", "", ()), (".reg", reg, ("regcode",))) if cls in _LIFT else (("", "", ()),)
            for (rd, rp, nr), (rsfx, at, ap) in ((r, g) for r in readings for g in with_reg):
                # the business: what happened at its own site, what to do now
                text, names = alarm(at, ap, rd, rp, late, lp)
                add(f"alarm.biz.{cls}{rsfx}{nr}{sfx}", "alarm", text + todo + "。" + duty, names, ("unit", "loc"))
                text, names = again(at, ap, rd, rp, late, lp)
                add(f"repeat.biz.{cls}{rsfx}{nr}{sfx}", "alarm_repeat", text + todo + "。" + duty, names,
                    ("unit", "loc"))
        for sub in ("", ".gas", ".reg"):
            # 属地 and 行业监管: verify on site and supervise the business, whose contact is given
            at, ap = (reg, ("regcode",)) if sub == ".reg" else ("", ())
            rd, rp = (gas, ("reading",)) if sub == ".gas" else ("", ())
            text, names = alarm(at, ap, rd, rp, late, lp)
            add(f"alarm.sup{sub}{sfx}", "alarm", text + sup_ask + duty, names + who,
                ("unit", "loc", "person"))
            text, names = again(at, ap, rd, rp, late, lp)
            add(f"repeat.sup{sub}{sfx}", "alarm_repeat", text + sup_again + duty, names + who,
                ("unit", "loc", "person"))
    gone = "{unit}的{loc}的{what}已于{when}解除，"
    add("resolved.biz", "resolved", gone + "请核实现场并反馈处置情况。" + duty[:-1],
        ("unit", "loc", "what", "when"), ("unit", "loc"), ack_part=False)
    add("resolved.sup", "resolved", gone + "请督促企业查明原因并反馈。" + duty[:-1],
        ("unit", "loc", "what", "when"), ("unit", "loc"), ack_part=False)
    add("notice", "notice",
        "{notice}：{unit}的{what}（{level}）自{when}起{unmet}，请于{deadline}前督促处置并反馈。" + duty,
        ("notice", "unit", "what", "level", "when", "unmet", "deadline"), ("unit",))
    add("broadcast", "broadcast", "安全提示：{body}", ("body",), ("body",), ack_part=False)
    return out


TEMPLATES: dict[str, SmsTemplate] = {t.name: t for t in _templates()}

#: our template name → the code registered with each provider (阿里云 TemplateCode / 腾讯云
#: TemplateId): configuration of a real deployment; the simulator accepts these
#: the registered template of an outbox row that names only its kind (rows queued before the
#: per-role templates, and tests): the supervision text, which fits every reader
KIND_DEFAULT: dict[str, str] = {"alarm": "alarm.sup", "alarm_repeat": "repeat.sup",
                                "resolved": "resolved.sup", "notice": "notice", "broadcast": "broadcast"}
_ORDER = [*KIND_DEFAULT.values(), *(n for n in TEMPLATES if n not in KIND_DEFAULT.values())]
TEMPLATE_CODES: dict[str, dict[str, str]] = {  # the first five keep the codes registered before
    "aliyun": {n: f"SMS_4801{i:05d}" for i, n in enumerate(_ORDER, 1)},
    "tencent": {n: f"21{i:05d}" for i, n in enumerate(_ORDER, 1)},
}
TEMPLATE_CODES["webhook"] = dict(TEMPLATE_CODES["aliyun"])


def variant(kind: str, audience: str, event_kind: str, *, link: bool, reading: bool = True,
            late: str = "", regcode: bool = False) -> str:
    """The registered template of a message: ``kind`` (alarm, alarm_repeat, resolved, notice,
    broadcast) for ``audience`` (``biz``: the business; ``sup``: everyone supervising it);
    ``late`` the alarm's time flag (alerting/late.py); ``regcode`` whether a lift's 注册代码 is
    named (the caller knows it and the provider's cap takes it whole)."""
    cls = advice_class(event_kind)
    if kind in ("alarm", "alarm_repeat"):
        pre = "alarm" if kind == "alarm" else "repeat"
        sfx = ".late" if late == "late" else ".clock" if late.startswith("clock") else ""
        if audience == "biz":
            nr = ".nr" if cls in _WITH_READING and not reading else ""
            base = f"{pre}.biz.{cls}{'.reg' if regcode and cls in _LIFT else ''}{nr}{sfx}"
        elif cls in _WITH_READING and reading:
            base = f"{pre}.sup.gas{sfx}"
        elif cls in _LIFT and regcode:
            base = f"{pre}.sup.reg{sfx}"
        else:
            base = f"{pre}.sup{sfx}"
    elif kind == "resolved":
        return f"resolved.{audience}"
    elif kind == "notice":
        base = "notice"
    else:
        return "broadcast"
    return base + "_l" if link else base


#: characters of a 特种设备注册代码 (a ``.reg`` template's ``regcode``)
REGCODE_LEN = 20


def for_provider(provider: str) -> list[str]:
    """The templates a deployment on ``provider`` registers: those whose uncuttable variables
    (the link token, the 注册代码) its variable cap takes whole."""
    cap = PROVIDERS[provider].var_max
    return [n for n, t in TEMPLATES.items()
            if not (t.link and cap < ACK_TOKEN_LEN) and not ("regcode" in t.params and cap < REGCODE_LEN)]


def registered_name(template: str, params: Mapping[str, str]) -> str:
    """The registered template of an outbox row: its ``_tpl`` parameter, else its kind's default."""
    name = str(params.get(TPL_KEY) or template)
    return KIND_DEFAULT.get(name, name)


def provider_params(params: Mapping[str, str]) -> dict[str, str]:
    """The variables a provider receives: those of the registered template (``_tpl``) — a row
    also carries what the voice scripts and robots read — else every key but our ``_`` ones."""
    tpl = TEMPLATES.get(str(params.get(TPL_KEY, "")))
    if tpl is not None:
        return {k: str(params.get(k, "")) for k in tpl.params}
    return {k: str(v) for k, v in params.items() if not k.startswith("_")}


def registered_text(name: str, provider: str, deployment: Deployment) -> str:
    """The template text as submitted for review: the constants filled in, each variable in the
    provider's syntax (``${unit}`` / ``{1}``)."""
    tpl = TEMPLATES[name]
    style = PROVIDERS[provider].style
    names = {p: (f"${{{p}}}" if style == "${name}" else f"{{{i}}}") for i, p in enumerate(tpl.params, 1)}
    return tpl.text.format(**names, ACK_URL=deployment.ack_url.rstrip("/"), DUTY_PHONE=deployment.duty_phone)


def ack_placeholder() -> str:
    """The ``token`` value of a rendered group text: the token's exact length, replaced per
    recipient (:func:`alerting.acks.personalize`), so the text keeps its length and segments."""
    return "-" * ACK_TOKEN_LEN


def severity_words(severity_zh: str) -> str:
    """``橙`` → ``橙色报警``: the colour as people say it."""
    return f"{severity_zh}色报警"


def what_happened(kind: str, summary: str = "") -> str:
    return KIND_ZH.get(kind) or summary or kind


def what_to_do(kind: str) -> str:
    """The business's advice for ``kind`` (the 四单 notices and voice scripts reuse it)."""
    return ADVICE[advice_class(kind)].removeprefix("请")


def format_when(ts: datetime) -> str:
    """``11月3日09:05`` in China Standard Time: the reader's local clock."""
    t = ts.astimezone(CST)
    return f"{t.month}月{t.day}日{t:%H:%M}"


def sms_segments(text: str) -> int:
    """Number of SMS segments: GSM-7 text 160 / 153 per part, anything else UCS-2 70 / 67."""
    n = len(text)
    if all(ord(c) < 128 for c in text):
        return 1 if n <= 160 else -(-n // 153)
    return 1 if n <= 70 else -(-n // 67)


_BRACKETS = re.compile(r"[【】\[\]]")
#: never shortened: a cut code, token or number is worse than a longer text
_UNCUT = frozenset({"code", "token", "phone", "reading", "regcode", "when", "deadline", "level", "notice",
                    "unmet"})


def _clean(value: str) -> str:
    """A variable's value: 【】 would read as a signature, braces break the provider's parser."""
    return _BRACKETS.sub("", value).replace("{", "(").replace("}", ")").strip()


_COUNT = re.compile(r"等\d+处$")


def _cut(value: str, n: int) -> str:
    """``value`` in ``n`` characters with an ellipsis; a group's "等N处" stays whole."""
    if len(value) <= n:
        return value
    m = _COUNT.search(value)
    tail = m.group(0) if m else ""
    head = value[: len(value) - len(tail)]
    return head[: max(n - 1 - len(tail), 1)].rstrip() + "…" + tail


def render(name: str, params: Mapping[str, str], *, sign_name: str = "", max_segments: int = 3,
           provider: str = "webhook", deployment: Deployment | None = None) -> tuple[str, dict[str, str]]:
    """The body (without the signature) and the parameters sent, ``_tpl`` naming the template.

    Each text variable is capped at the provider's variable limit, then the shrinkable ones are
    shortened, one character at a time from the longest, until ``【sign】+body`` fits
    ``max_segments``. The code, the token and numbers are never cut: a value of those over the
    cap is an error of the caller (the conformance test renders every template)."""
    tpl = TEMPLATES[name]
    rules = PROVIDERS[provider]
    dep = deployment or Deployment()
    vals = {k: _clean(str(params.get(k, ""))) for k in tpl.params}
    for k in vals:
        if not vals[k]:
            vals[k] = "无"  # providers refuse an empty variable
        if k in tpl.shrink and k not in rules.long_vars:
            vals[k] = _cut(vals[k], rules.var_max)
    prefix = f"【{sign_name}】" if sign_name else ""
    consts = {"ACK_URL": dep.ack_url.rstrip("/"), "DUTY_PHONE": dep.duty_phone}

    def body() -> str:
        return tpl.text.format(**vals, **consts)

    floor = {"unit": 4, "loc": 4, "person": 2, "body": 10}
    while sms_segments(prefix + body()) > max_segments:
        cands = [k for k in tpl.shrink if len(_COUNT.sub("", vals[k]).rstrip("…")) > floor.get(k, 2)]
        if not cands:
            break
        k = max(cands, key=lambda c: len(vals[c]))
        vals[k] = _cut(vals[k], len(vals[k]) - 1)
    return body(), {**vals, TPL_KEY: name}
