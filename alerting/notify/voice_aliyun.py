"""阿里云 语音服务 (Dyvmsapi ``SingleCallByTts``, API version 2017-05-25): a TTS call to one
number — mobile or landline (``0571xxxxxxxx``) — signed RPC-style exactly like ``SendSms``
(:mod:`alerting.notify.sms_aliyun`: sorted, RFC 3986-encoded parameters, HMAC-SHA1 with
``AccessKeySecret + "&"``).

Parameters: ``CalledShowNumber`` (the caller number shown, 专属模式; empty = 公共模式),
``CalledNumber``, ``TtsCode``, ``TtsParam`` (JSON, the variables together under 250
characters, no links), ``PlayTimes`` (1–3), ``OutId`` (ours, 1–15 bytes, echoed in the
VoiceReport receipt). Answer ``{"Code": "OK", "CallId": …}``; flow control
(``isv.BUSINESS_LIMIT_CONTROL``: a number is called at most 1/min, 5/h, 20/day) and
throttling are retryable, a bad number or template is not.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from alerting.errors import ProviderError
from alerting.notify.base import OutgoingMessage, SendResult
from alerting.notify.http import HttpClient
from alerting.notify.sms import classify_http
from alerting.notify.sms_aliyun import sign
from alerting.notify.voice import VOICE_TEMPLATE_CODES, VoiceProvider, tts_params, voice_template

__all__ = ["AliyunVoice", "out_id"]

_RETRYABLE = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling", "ServiceUnavailable",
              "InternalError", "isp.SYSTEM_ERROR"}


def out_id(notification_id: str) -> str:
    """``OutId`` is 1–15 bytes: the first 15 characters of our id's hash part (receipts are
    matched by ``CallId``; this is for the provider's console and the audit)."""
    return notification_id.removeprefix("n-")[:15]


class AliyunVoice(VoiceProvider):
    name = "aliyun"

    def __init__(self, url: str, access_key_id: str, access_key_secret: str, caller_number: str = "",
                 *, play_times: int = 2, region: str = "cn-hangzhou") -> None:
        self.url, self.key_id, self.secret = url, access_key_id, access_key_secret
        self.caller_number, self.play_times, self.region = caller_number, play_times, region

    def build(self, msg: OutgoingMessage, *, now: datetime | None = None, nonce: str | None = None
              ) -> dict[str, str]:
        tpl = voice_template(msg.template)
        ts = (now or datetime.now(UTC)).astimezone(UTC)
        params = {
            "AccessKeyId": self.key_id,
            "Action": "SingleCallByTts",
            "CalledNumber": str(msg.phone),
            "Format": "JSON",
            "OutId": out_id(msg.id),
            "PlayTimes": str(self.play_times),
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "TtsCode": VOICE_TEMPLATE_CODES["aliyun"][tpl.name],
            "TtsParam": json.dumps(tts_params(tpl, msg.params, "aliyun"), ensure_ascii=False,
                                   separators=(",", ":")),
            "Version": "2017-05-25",
        }
        if self.caller_number:
            params["CalledShowNumber"] = self.caller_number
        params["Signature"] = sign(params, self.secret, "POST")
        return params

    async def call(self, client: HttpClient, msg: OutgoingMessage) -> SendResult:
        resp = await client.post(self.url, body=urlencode(self.build(msg)).encode(),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        classify_http("voice-aliyun", resp)
        try:
            data = resp.json()
        except ValueError:
            raise ProviderError(f"voice-aliyun: not JSON: {resp.text[:200]!r}", retryable=True) from None
        code = str(data.get("Code", ""))
        if code != "OK":
            raise ProviderError(f"voice-aliyun: {code}: {data.get('Message', '')}",
                                retryable=code in _RETRYABLE, status=resp.status)
        return SendResult("voice-aliyun", str(data.get("CallId", "")), resp.status)
