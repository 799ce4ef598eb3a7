"""腾讯云 语音消息 (VMS API 3.0 ``SendTtsVoice``, version 2020-09-02), signed TC3-HMAC-SHA256
like ``SendSms`` (:mod:`alerting.notify.sms_tencent`) with the service ``vms``.

Body: ``TemplateId``, ``CalledNumber`` (E.164, ``+86`` + a mainland **mobile**: the API calls
no landline), ``VoiceSdkAppid``, ``TemplateParamSet`` (positional; the spoken content at most
350 characters), ``PlayTimes`` (1–3, default 2), ``SessionContext`` (ours, echoed). Answer
``{"Response": {"SendStatus": {"CallId": …}}}`` or ``{"Response": {"Error": {"Code": …}}}``;
``LimitExceeded.*``, ``RequestLimitExceeded`` and internal errors are retryable.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from alerting.errors import ProviderError
from alerting.notify.base import OutgoingMessage, SendResult
from alerting.notify.http import HttpClient
from alerting.notify.sms import classify_http
from alerting.notify.sms_tencent import CONTENT_TYPE, tc3_signature
from alerting.notify.voice import VOICE_TEMPLATE_CODES, VoiceProvider, tts_params, voice_template

__all__ = ["TencentVoice", "SERVICE"]

SERVICE = "vms"
_MOBILE = re.compile(r"1[3-9]\d{9}")


class TencentVoice(VoiceProvider):
    name = "tencent"

    def __init__(self, url: str, secret_id: str, secret_key: str, app_id: str, *, play_times: int = 2,
                 region: str = "ap-guangzhou") -> None:
        self.url, self.secret_id, self.secret_key = url, secret_id, secret_key
        self.app_id, self.play_times, self.region = app_id or "1400000000", play_times, region
        self.host = urlsplit(url).netloc

    def build(self, msg: OutgoingMessage, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        tpl = voice_template(msg.template)
        values = tts_params(tpl, msg.params, "tencent")
        payload = json.dumps({
            "TemplateId": VOICE_TEMPLATE_CODES["tencent"][tpl.name],
            "CalledNumber": f"+86{msg.phone}",
            "VoiceSdkAppid": self.app_id,
            "TemplateParamSet": [values[n] for n in tpl.params],
            "PlayTimes": self.play_times,
            "SessionContext": msg.id,
        }, ensure_ascii=False, separators=(",", ":")).encode()
        ts = int(timestamp if timestamp is not None else datetime.now(UTC).timestamp())
        sig, scope = tc3_signature(self.secret_key, host=self.host, payload=payload, timestamp=ts,
                                   service=SERVICE)
        headers = {
            "authorization": f"TC3-HMAC-SHA256 Credential={self.secret_id}/{scope}, "
                             f"SignedHeaders=content-type;host, Signature={sig}",
            "content-type": CONTENT_TYPE,
            "host": self.host,
            "x-tc-action": "SendTtsVoice",
            "x-tc-timestamp": str(ts),
            "x-tc-version": "2020-09-02",
            "x-tc-region": self.region,
        }
        return payload, headers

    async def call(self, client: HttpClient, msg: OutgoingMessage) -> SendResult:
        if not _MOBILE.fullmatch(str(msg.phone)):
            raise ProviderError(f"voice-tencent: 被叫号码 {str(msg.phone)[:4]}… 不是手机号（腾讯云语音消息"
                                "只呼叫中国大陆手机号，座机请用阿里云语音服务）", retryable=False)
        payload, headers = self.build(msg)
        resp = await client.post(self.url, body=payload, headers=headers)
        classify_http("voice-tencent", resp)
        try:
            data = resp.json()["Response"]
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"voice-tencent: unexpected answer {resp.text[:200]!r}",
                                retryable=True) from None
        if "Error" in data:
            code = str(data["Error"].get("Code", ""))
            raise ProviderError(f"voice-tencent: {code}: {data['Error'].get('Message', '')}",
                                retryable=code.startswith(("LimitExceeded", "InternalError",
                                                           "RequestLimitExceeded")))
        call_id = str((data.get("SendStatus") or {}).get("CallId", ""))
        if not call_id:
            raise ProviderError("voice-tencent: no CallId in the answer", retryable=True)
        return SendResult("voice-tencent", call_id, resp.status)
