"""Tencent Cloud SMS (腾讯云短信, API 3.0 ``SendSms``, version 2021-01-11), signed TC3-HMAC-SHA256.

Signing (the public "签名方法 v3" doc):

1. ``CanonicalRequest = "POST\\n/\\n\\n" + "content-type:application/json; charset=utf-8\\nhost:{host}\\n"
   + "\\n" + "content-type;host\\n" + hex(SHA256(payload))``;
2. ``StringToSign = "TC3-HMAC-SHA256\\n{timestamp}\\n{date}/sms/tc3_request\\n"
   + hex(SHA256(CanonicalRequest))``
   with ``date`` the UTC date of ``timestamp``;
3. ``k = HMAC("TC3"+SecretKey, date)``, ``k = HMAC(k, "sms")``, ``k = HMAC(k, "tc3_request")``,
   ``Signature = hex(HMAC(k, StringToSign))``;
4. ``Authorization: TC3-HMAC-SHA256 Credential={SecretId}/{date}/sms/tc3_request,
   SignedHeaders=content-type;host, Signature={Signature}``.

Answer: ``{"Response": {"SendStatusSet": [{"Code": "Ok", "SerialNo": …}], "RequestId": …}}`` or
``{"Response": {"Error": {"Code": …}}}``. ``LimitExceeded.*`` and internal errors are retryable;
a per-number frequency limit after its window, never in a hot loop: ``PhoneNumberThirtySecondLimit``
after 30 s, ``PhoneNumberOneHourLimit`` after an hour, the daily ones after the outbox's first
backoff, when its budget (alerting/budget.py) holds an ordinary row to Beijing midnight and marks
a priority one 未送达.
One request carries one text to up to 200 numbers (``PhoneNumberSet``); the answer has a
``SendStatus`` per number, so each number is sent, refused or retried on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from alerting.errors import ProviderError
from alerting.notify.base import OutgoingMessage, SendResult
from alerting.notify.http import HttpClient
from alerting.notify.sms import TEMPLATE_CODES, SmsProvider, classify_http
from alerting.templates import TEMPLATES, provider_params, registered_name

__all__ = ["TencentSms", "tc3_signature", "authorization", "verify_request"]

SERVICE = "sms"
#: a per-number frequency limit → seconds before trying again (the daily ones: the outbox's budget)
_LIMIT_RETRY_S = {"LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
                  "LimitExceeded.PhoneNumberOneHourLimit": 3600.0}
CONTENT_TYPE = "application/json; charset=utf-8"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_signature(secret_key: str, *, host: str, payload: bytes, timestamp: int, service: str = SERVICE
                  ) -> tuple[str, str]:
    """``(signature hex, credential scope)`` for a POST of ``payload`` at ``timestamp``."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = (f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\n\ncontent-type;host\n"
                 + hashlib.sha256(payload).hexdigest())
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
    k = _hmac(("TC3" + secret_key).encode(), date)
    k = _hmac(k, service)
    k = _hmac(k, "tc3_request")
    return hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest(), scope


def authorization(secret_id: str, secret_key: str, *, host: str, payload: bytes, timestamp: int) -> str:
    sig, scope = tc3_signature(secret_key, host=host, payload=payload, timestamp=timestamp)
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={sig}"


def verify_request(headers: Mapping[str, str], payload: bytes, secrets_by_id: Mapping[str, str]) -> str:
    """Server side (the simulator): '' if the Authorization header is valid, else the problem."""
    auth = headers.get("authorization", "")
    try:
        algo, rest = auth.split(" ", 1)
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        secret_id, date, service, term = parts["Credential"].split("/")
        timestamp = int(headers.get("x-tc-timestamp", ""))
    except (ValueError, KeyError):
        return "AuthFailure.SignatureFailure: malformed Authorization"
    signed = parts.get("SignedHeaders")
    if algo != "TC3-HMAC-SHA256" or term != "tc3_request" or signed != "content-type;host":
        return "AuthFailure.SignatureFailure: unsupported algorithm or signed headers"
    secret = secrets_by_id.get(secret_id)
    if secret is None:
        return "AuthFailure.SecretIdNotFound"
    expected, _ = tc3_signature(secret, host=headers.get("host", ""), payload=payload, timestamp=timestamp,
                                service=service)
    if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != date:
        return "AuthFailure.SignatureFailure: credential date does not match X-TC-Timestamp"
    return "" if hmac.compare_digest(expected, parts.get("Signature", "")) else "AuthFailure.SignatureFailure"


class TencentSms(SmsProvider):
    name = "tencent"
    #: numbers one ``SendSms`` may carry (``PhoneNumberSet``, at most 200)
    max_batch = 200

    def __init__(self, url: str, secret_id: str, secret_key: str, sign_name: str, app_id: str,
                 region: str = "ap-guangzhou") -> None:
        self.url, self.secret_id, self.secret_key = url, secret_id, secret_key
        self.sign_name, self.app_id, self.region = sign_name, app_id, region
        self.host = urlsplit(url).netloc

    def build(self, msg: OutgoingMessage, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        return self.build_batch([msg], timestamp=timestamp)

    def build_batch(self, msgs: Sequence[OutgoingMessage], *, timestamp: int | None = None
                    ) -> tuple[bytes, dict[str, str]]:
        """One ``SendSms`` for the numbers of ``msgs`` (one text: the template and parameters of
        the first; the outbox batches only messages that share them). ``SessionContext`` is the
        first message's id (one per request in this API; answers are matched by number)."""
        first = msgs[0]
        name = registered_name(first.template, first.params)
        tpl = TEMPLATES.get(name)
        names = tpl.params if tpl else tuple(provider_params(first.params))
        payload = json.dumps({
            "PhoneNumberSet": [f"+86{m.phone}" for m in msgs],
            "SmsSdkAppId": self.app_id,
            "SignName": self.sign_name,
            "TemplateId": TEMPLATE_CODES["tencent"].get(name, name),
            "TemplateParamSet": [str(first.params.get(n, "")) for n in names],
            "SessionContext": first.id,
        }, ensure_ascii=False, separators=(",", ":")).encode()
        ts = int(timestamp if timestamp is not None else datetime.now(UTC).timestamp())
        headers = {
            "authorization": authorization(self.secret_id, self.secret_key, host=self.host, payload=payload,
                                           timestamp=ts),
            "content-type": CONTENT_TYPE,
            "host": self.host,
            "x-tc-action": "SendSms",
            "x-tc-timestamp": str(ts),
            "x-tc-version": "2021-01-11",
            "x-tc-region": self.region,
        }
        return payload, headers

    async def _statuses(self, client: HttpClient, msgs: Sequence[OutgoingMessage]) -> list[dict[str, Any]]:
        payload, headers = self.build_batch(msgs)
        resp = await client.post(self.url, body=payload, headers=headers)
        classify_http(self.name, resp)
        try:
            data = resp.json()["Response"]
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"tencent: unexpected answer {resp.text[:200]!r}", retryable=True) from None
        if "Error" in data:
            code = str(data["Error"].get("Code", ""))
            raise ProviderError(f"tencent: {code}: {data['Error'].get('Message', '')}",
                                retryable=code.startswith(("LimitExceeded", "InternalError",
                                                           "RequestLimitExceeded")))
        return [s for s in (data.get("SendStatusSet") or []) if isinstance(s, dict)]

    def _answer(self, status: dict[str, Any] | None, phone: str) -> SendResult | ProviderError:
        if status is None:  # not in the answer: it may not have been sent, so try again
            return ProviderError(f"tencent: no SendStatus for {phone}", retryable=True)
        code = str(status.get("Code", ""))
        if code != "Ok":
            return ProviderError(f"tencent: {code}: {status.get('Message', '')}",
                                 retryable=code.startswith(("LimitExceeded", "InternalError")),
                                 retry_after_s=_LIMIT_RETRY_S.get(code))
        return SendResult(self.name, str(status.get("SerialNo", "")), 200)

    async def send_sms(self, client: HttpClient, msg: OutgoingMessage) -> SendResult:
        statuses = await self._statuses(client, [msg])
        answer = self._answer(statuses[0] if statuses else None, str(msg.phone))
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    async def send_sms_batch(self, client: HttpClient, msgs: Sequence[OutgoingMessage]
                             ) -> list[SendResult | ProviderError]:
        """Up to :attr:`max_batch` numbers (the API's limit is 200); an answer per number, found
        by its ``PhoneNumber`` (the outbox never puts one number twice in a request)."""
        statuses = await self._statuses(client, msgs)
        by_phone = {str(s.get("PhoneNumber", "")).removeprefix("+86"): s for s in statuses}
        return [self._answer(by_phone.get(str(m.phone)), str(m.phone)) for m in msgs]
