"""Alibaba Cloud SMS (阿里云短信服务, Dysmsapi ``SendSms``, API version 2017-05-25).

RPC-style request: every parameter (the common ones — AccessKeyId, Action, Format, RegionId,
SignatureMethod, SignatureNonce, SignatureVersion, Timestamp, Version — plus PhoneNumbers,
SignName, TemplateCode, TemplateParam, OutId) is signed as follows (the public 签名机制 doc):

1. sort the parameters by name (byte order), excluding ``Signature``;
2. percent-encode names and values as RFC 3986 (``A-Z a-z 0-9 - _ . ~`` unescaped, space →
   ``%20``, ``*`` → ``%2A``), join ``name=value`` with ``&`` → the canonicalized query;
3. ``StringToSign = METHOD + "&" + enc("/") + "&" + enc(canonicalized query)``;
4. ``Signature = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))``.

We POST the parameters form-encoded. The answer is JSON ``{"Code": "OK", "BizId": …}``; a
``Code`` other than OK is an error, flow control (``isv.BUSINESS_LIMIT_CONTROL``) and
throttling are retryable, a bad number or template is not. Flow control is retried after its
window, never in a hot loop: ``触发分钟级流控`` after a minute, ``小时级`` after an hour; ``天级`` (the
per-number daily budget, 50 a template by default) after the outbox's first backoff, when the
budget (alerting/budget.py) holds an ordinary row an hour and marks a priority one 未送达.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from alerting.errors import ProviderError
from alerting.notify.base import OutgoingMessage, SendResult
from alerting.notify.http import HttpClient
from alerting.notify.sms import TEMPLATE_CODES, SmsProvider, classify_http
from alerting.templates import provider_params, registered_name

__all__ = ["AliyunSms", "percent_encode", "string_to_sign", "sign", "verify_params"]

#: 流控 answers' ``Message`` level → seconds before trying again (天级: the outbox's budget decides)
_FLOW_CONTROL_RETRY_S = {"分钟级": 60.0, "小时级": 3600.0}
_RETRYABLE_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling", "ServiceUnavailable",
                    "InternalError", "isp.SYSTEM_ERROR", "isp.RAM_PERMISSION_DENY_TEMP"}


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def string_to_sign(params: Mapping[str, str], method: str = "POST") -> str:
    canon = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
                     if k != "Signature")
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canon)}"


def sign(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_params(params: Mapping[str, str], secret: str, method: str = "POST") -> bool:
    """Server side (the simulator): does ``Signature`` match the other parameters?"""
    got = params.get("Signature", "")
    return hmac.compare_digest(got, sign(params, secret, method))


class AliyunSms(SmsProvider):
    name = "aliyun"

    def __init__(self, url: str, access_key_id: str, access_key_secret: str, sign_name: str,
                 region: str = "cn-hangzhou") -> None:
        self.url, self.key_id, self.secret = url, access_key_id, access_key_secret
        self.sign_name, self.region = sign_name, region

    def build(self, msg: OutgoingMessage, *, now: datetime | None = None, nonce: str | None = None
              ) -> dict[str, str]:
        ts = (now or datetime.now(UTC)).astimezone(UTC)
        name = registered_name(msg.template, msg.params)
        params = {
            "AccessKeyId": self.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": msg.id,
            "PhoneNumbers": str(msg.phone),
            "RegionId": self.region,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": TEMPLATE_CODES["aliyun"].get(name, name),
            "TemplateParam": json.dumps(provider_params(msg.params), ensure_ascii=False,
                                        separators=(",", ":")),
            "Timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = sign(params, self.secret, "POST")
        return params

    async def send_sms(self, client: HttpClient, msg: OutgoingMessage) -> SendResult:
        resp = await client.post(self.url, body=urlencode(self.build(msg)).encode(),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        classify_http(self.name, resp)
        try:
            data = resp.json()
        except ValueError:
            raise ProviderError(f"aliyun: not JSON: {resp.text[:200]!r}", retryable=True) from None
        code = str(data.get("Code", ""))
        if code != "OK":
            message = str(data.get("Message", ""))
            retry_s = None
            if code == "isv.BUSINESS_LIMIT_CONTROL":
                retry_s = next((s for level, s in _FLOW_CONTROL_RETRY_S.items() if level in message), None)
            raise ProviderError(f"aliyun: {code}: {message}", retryable=code in _RETRYABLE_CODES,
                                status=resp.status, retry_after_s=retry_s)
        return SendResult(self.name, str(data.get("BizId", "")), resp.status)
