"""What the SMS providers' review accepts, and the template and deployment records (the
sources: docs/delivery.md, *Texts*)."""

from __future__ import annotations

import string
from dataclasses import dataclass

#: characters of a short-link token (128 random bits, URL-safe base64: alerting/acks.py)
ACK_TOKEN_LEN = 22
#: characters of a 特种设备注册代码 (a ``.reg`` template's ``regcode``)
REGCODE_LEN = 20
#: the params key naming the registered template a message was rendered from (kept out of the
#: provider's TemplateParam by :func:`alerting.templates.provider_params`)
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
    lift_phone: str = "96333"  # lift.emergency_phone, the 电梯应急处置 number lift texts name


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    name: str
    kind: str  # the message kind recorded on the outbox row: alarm, alarm_repeat, resolved, notice, broadcast
    text: str  # str.format over params plus the constants ACK_URL, DUTY_PHONE, LIFT_PHONE
    params: tuple[str, ...]  # provider parameter order (Tencent's TemplateParamSet is positional)
    shrink: tuple[str, ...]  # text variables that may be shortened with "…", first shortened first
    link: bool = False  # the text holds {ACK_URL}/{token}

    @property
    def constants(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.text) if f and f.isupper())


def sms_segments(text: str) -> int:
    """Number of SMS segments: GSM-7 text 160 / 153 per part, anything else UCS-2 70 / 67."""
    n = len(text)
    if all(ord(c) < 128 for c in text):
        return 1 if n <= 160 else -(-n // 153)
    return 1 if n <= 70 else -(-n // 67)
