"""Voice channel (语音通知): a TTS call that reads the alarm to a duty room's landline or a
phone, and lets the callee press 1 to acknowledge (按1确认).

Like SMS, cloud voice plays only registered templates with variables: :data:`VOICE_TEMPLATES`
holds our call scripts (short spoken Chinese: where, what, what to do, then "确认收到请按1";
no links — a link cannot be spoken, and 阿里云 refuses one in a TTS variable) and the codes
each provider registered them under. :func:`tts_params` turns an outbox row's SMS parameters
into the script's variables within each provider's caps:

* 阿里云 ``SingleCallByTts``: the variables together under 250 characters (``TtsParam``), no
  links; ``OutId`` 1–15 bytes; a called number 1/min, 5/h, 20/day (flow control);
* 腾讯云 ``SendTtsVoice``: the spoken content at most 350 characters; mainland mobile numbers
  only (a landline is refused for good: use 阿里云 for landline duty rooms).

A call accepted by the provider is ``sent``; its outcome comes later as a call receipt
(alerting/voice_inbound.py): answered → ``delivered``, key 1 → the alert acknowledged as that
recipient, no answer / busy → called again (``voice.max_attempts``) and then escalated
(alerting/notices.py :func:`~alerting.notices.voice_escalate_due`).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from alerting.errors import ProviderError
from alerting.notify.base import Notifier, OutgoingMessage, SendResult
from alerting.notify.http import HttpClient

__all__ = ["VoiceTemplate", "VOICE_TEMPLATES", "VOICE_TEMPLATE_CODES", "voice_template", "tts_params",
           "render_script", "VoiceProvider", "VoiceNotifier", "make_voice_notifier", "default_url",
           "ENDPOINTS", "ALIYUN_TTS_MAX", "TENCENT_CONTENT_MAX"]

#: 阿里云: the TTS variables together must stay under 250 characters
ALIYUN_TTS_MAX = 249
#: 腾讯云: a voice message's content is at most 350 characters
TENCENT_CONTENT_MAX = 350
#: one variable, spoken: longer than this is not heard as one place or one instruction
_VAR_MAX = 40
#: what to do: the gas advice is one breath of several clauses (关阀、通风、疏散、严禁明火、拨打119)
_TODO_MAX = 80
_LINK = re.compile(r"(https?://|www\.)\S*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class VoiceTemplate:
    name: str
    text: str  # str.format over ``params``
    params: tuple[str, ...]  # 腾讯云's positional order


VOICE_TEMPLATES: dict[str, VoiceTemplate] = {t.name: t for t in (
    VoiceTemplate("voice_alarm", "这里是区应急指挥中心。{site}{device}发生{what}，{level}。请{todo}。"
                                 "确认收到请按1。", ("site", "device", "what", "level", "todo")),
    VoiceTemplate("voice_unanswered", "这里是区应急指挥中心。{site}发生{what}，{level}，"
                                      "电话通知{who}未接通。请立即督促处置。确认收到请按1。",
                  ("site", "what", "level", "who")),
    # the out-of-band watchdog's page to the duty operator (hazwatch/texts.py): nothing answers a key
    VoiceTemplate("voice_watchdog", "这里是区应急指挥中心监测系统看门狗。{what}，{impact}。"
                                    "请立即组织检修，检修期间人工值守。", ("what", "impact")),
    # the morning digest of quiet hours to a landline duty room (alerting/digest.py): no key to press
    VoiceTemplate("voice_digest", "这里是区应急指挥中心。夜间免扰期间，{what}暂缓通知。"
                                  "请登录监测平台查看并督促处置。", ("what",)),
)}

#: our template → the provider's registered code (阿里云 TtsCode / 腾讯云 TemplateId)
VOICE_TEMPLATE_CODES: dict[str, dict[str, str]] = {
    "aliyun": {"voice_alarm": "TTS_480200001", "voice_unanswered": "TTS_480200002",
               "voice_watchdog": "TTS_480200003", "voice_digest": "TTS_480200004"},
    "tencent": {"voice_alarm": "2200001", "voice_unanswered": "2200002", "voice_watchdog": "2200003",
                "voice_digest": "2200004"},
}

#: the outbox row's template family (its name up to the first dot, without the ``_l`` of the
#: linked variants: ``alarm.sup_l``, ``repeat.biz.gas_leak``, ``notice``…) → the call script;
#: a resolved text, an outcome or a broadcast is not a call
_SCRIPT_OF = {"alarm": "voice_alarm", "alarm_repeat": "voice_alarm", "repeat": "voice_alarm",
              "notice": "voice_alarm", "arrival_overdue": "voice_alarm",  # 维保到场超时 (alerting/arrival.py)
              "workorder": "voice_alarm",  # 工单 to a landline duty room (alerting/workorder_notify.py)
              "digest": "voice_digest"}  # 夜间免扰's morning digest (alerting/digest.py)


def voice_template(template: str) -> VoiceTemplate:
    """The call script of an outbox row's template; a :class:`ProviderError` (not retryable)
    for a template that is no alarm."""
    if template in VOICE_TEMPLATES:
        return VOICE_TEMPLATES[template]
    name = _SCRIPT_OF.get(template.split(".", 1)[0].removesuffix("_l"))
    if name is None:
        raise ProviderError(f"voice: 模板 {template!r} 不是报警，不拨打语音电话", retryable=False)
    return VOICE_TEMPLATES[name]


def _spoken(value: str, cap: int = _VAR_MAX) -> str:
    """A variable as it can be spoken: no link, no brackets, no spaces around, capped — at the
    end of a clause where there is one (an instruction cut mid-phrase misleads)."""
    text = _LINK.sub("", value)
    text = re.sub(r"[【】\[\]<>{}]", "", text).strip(" ，,。")
    if len(text) <= cap:
        return text
    cut = max(text.rfind("，", 0, cap + 1), text.rfind("、", 0, cap + 1))
    return text[:cut] if cut >= cap // 2 else text[:cap]


#: a script variable → the SMS parameters it is read from, first found (the SMS texts name the
#: site ``unit``/``site``, the device's place ``loc``/``device``, the severity ``level``/``sev``)
_SOURCES = {"site": ("unit", "site"), "device": ("loc", "device"), "level": ("level", "sev"),
            "todo": ("todo",), "what": ("what",), "who": ("who",)}


def _value(name: str, params: Mapping[str, str]) -> str:
    for key in _SOURCES.get(name, (name,)):
        value = str(params.get(key, "") or "")
        if value:
            return f"{value}色报警" if key == "sev" and len(value) == 1 else value
    return ""


def tts_params(template: VoiceTemplate, params: Mapping[str, str], provider: str) -> dict[str, str]:
    """The script's variables from the row's parameters, within ``provider``'s caps: each
    spoken (:func:`_spoken`), then the longest shortened until the whole fits (阿里云: the
    variables < 250 characters; 腾讯云: the spoken text ≤ 350)."""
    out = {n: _spoken(_value(n, params), _TODO_MAX if n == "todo" else _VAR_MAX) for n in template.params}
    if "todo" in out and not out["todo"]:
        out["todo"] = "立即到场核实、督促处置"
    if "level" in out and not out["level"]:
        out["level"] = "报警"

    def size() -> int:
        if provider == "aliyun":
            return sum(len(v) for v in out.values())
        return len(template.text.format(**out))

    cap = ALIYUN_TTS_MAX if provider == "aliyun" else TENCENT_CONTENT_MAX
    while size() > cap:
        longest = max(out, key=lambda k: len(out[k]))
        out[longest] = out[longest][:-1]
    return out


def render_script(template: VoiceTemplate, values: Mapping[str, str]) -> str:
    """What the callee hears (the simulator records it; docs show it)."""
    return template.text.format(**{n: values.get(n, "") for n in template.params})


class VoiceProvider(abc.ABC):
    """A provider's single-call API: one number per request (both clouds)."""

    name: str

    @abc.abstractmethod
    async def call(self, client: HttpClient, msg: OutgoingMessage) -> SendResult:
        """Place one call; raise :class:`ProviderError` when the provider did not accept it."""


class VoiceNotifier(Notifier):
    """The ``voice`` channel: one call per row (no batch request in either API)."""

    name = "voice"

    def __init__(self, provider: VoiceProvider, *, timeout_s: float = 5.0, max_in_flight: int = 8) -> None:
        self.provider = provider
        self.max_in_flight = max(1, max_in_flight)
        self._client = HttpClient(f"voice-{provider.name}", timeout_s=timeout_s,
                                  max_connections=self.max_in_flight)

    @property
    def provider_name(self) -> str:
        return f"voice-{self.provider.name}"

    async def send(self, msg: OutgoingMessage) -> SendResult:
        if not msg.phone:
            raise ProviderError("voice: 无被叫号码", retryable=False)
        return await self.provider.call(self._client, msg)

    async def aclose(self) -> None:
        await self._client.aclose()


#: the providers' endpoints (``voice.url`` empty and SMS going to a cloud)
ENDPOINTS = {"aliyun": "https://dyvmsapi.aliyuncs.com/", "tencent": "https://vms.tencentcloudapi.com/"}


def default_url(provider: str, sms_url: str = "") -> str:
    """``voice.url`` when it is empty: the provider's endpoint — or, while SMS goes to a gateway
    that is no cloud (the simulator in the demo, the harness and the tests), the same server's
    ``/voice/{provider}``, so one simulator address serves both channels."""
    parts = urlsplit(sms_url)
    if parts.netloc and not parts.netloc.endswith(("aliyuncs.com", "tencentcloudapi.com")):
        return f"{parts.scheme}://{parts.netloc}/voice/{provider}"
    return ENDPOINTS[provider]


def make_voice_notifier(voice: Any, sms_url: str = "") -> VoiceNotifier:
    """From :class:`hazmon.settings.VoiceSettings`: provider ``aliyun`` or ``tencent``, at
    ``voice.url`` (empty: :func:`default_url` from ``sms_url``)."""
    secret = voice.access_key_secret.get_secret_value()
    url = voice.url or default_url(voice.provider, sms_url)
    prov: VoiceProvider
    if voice.provider == "tencent":
        from alerting.notify.voice_tencent import TencentVoice

        prov = TencentVoice(url, voice.access_key_id, secret, voice.app_id,
                            play_times=voice.play_times)
    else:
        from alerting.notify.voice_aliyun import AliyunVoice

        prov = AliyunVoice(url, voice.access_key_id, secret, voice.caller_number,
                           play_times=voice.play_times)
    return VoiceNotifier(prov, timeout_s=voice.timeout_s, max_in_flight=voice.max_in_flight)
