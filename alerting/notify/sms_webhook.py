"""Generic JSON SMS gateway: ``POST {url}`` with the rendered text.

One message: ``{"id", "phone", "body", "sign_name", "template", "params"}``, answer
``{"message_id": "..."}`` (2xx). One text to several numbers (up to :attr:`WebhookSms.max_batch`):
``{"messages": [{"id", "phone"}, …], "body", "sign_name", "template", "params"}`` — or, when
each number has its own text, ``{"messages": [{"id", "phone", "body", "params"}, …], "sign_name",
"template"}`` — answer
``{"results": [{"id", "message_id"} | {"id", "error", "retryable"}, …]}`` (2xx), one entry per
message — a refused number fails alone. Header ``X-Hazmon-Signature: sha256=<hex HMAC-SHA256 of
the raw body with the shared secret>`` so the gateway can refuse forged requests. ``id`` is the
outbox id: a gateway may use it to drop a duplicate after a retry whose answer was lost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

from alerting.errors import ProviderError
from alerting.notify.base import OutgoingMessage, SendResult
from alerting.notify.http import HttpClient
from alerting.notify.sms import SmsProvider, classify_http

__all__ = ["WebhookSms", "webhook_signature", "callback_token"]


def webhook_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``: our requests to the gateway, and the gateway's
    callbacks to us (receipts, replies: alerting/inbound.py), both with the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_token(secret: str, provider: str) -> str:
    """The secret token in a cloud provider's callback URL (``?token=…``). 阿里云's HTTP push
    and 腾讯云's callbacks carry no signature, so the URL configured in their console is the
    only credential; it is derived from the callback secret, one per provider, so the secret
    itself never appears in a URL or a proxy log."""
    return hmac.new(secret.encode(), f"hazmon-callback|{provider}".encode(), hashlib.sha256).hexdigest()[:40]


class WebhookSms(SmsProvider):
    name = "webhook"
    #: numbers one batch request may carry
    max_batch = 100
    #: one request may carry each number's own text (see :meth:`build_batch`)
    per_message_text = True

    def __init__(self, url: str, secret: str, sign_name: str) -> None:
        self.url, self.secret, self.sign_name = url, secret, sign_name

    def _signed(self, payload: dict[str, object]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return body, {"content-type": "application/json; charset=utf-8",
                      "x-hazmon-signature": webhook_signature(self.secret, body)}

    def build(self, msg: OutgoingMessage) -> tuple[bytes, dict[str, str]]:
        return self._signed({"id": msg.id, "phone": msg.phone, "body": msg.body, "sign_name": self.sign_name,
                             "template": msg.template, "params": dict(msg.params)})

    def build_batch(self, msgs: Sequence[OutgoingMessage]) -> tuple[bytes, dict[str, str]]:
        """Several numbers in one request. One text for all: ``body``/``params`` at the top.
        Texts that differ (each recipient's own 回复码 and link): ``body``/``params`` in each
        entry of ``messages`` and none at the top, so a gateway that only knows the shared
        shape refuses the request instead of sending one recipient's code to all."""
        first = msgs[0]
        if all(m.body == first.body and dict(m.params) == dict(first.params) for m in msgs):
            return self._signed({"messages": [{"id": m.id, "phone": m.phone} for m in msgs],
                                 "body": first.body, "sign_name": self.sign_name, "template": first.template,
                                 "params": dict(first.params)})
        return self._signed({"messages": [{"id": m.id, "phone": m.phone, "body": m.body,
                                           "params": dict(m.params)} for m in msgs],
                             "sign_name": self.sign_name, "template": first.template})

    async def send_sms(self, client: HttpClient, msg: OutgoingMessage) -> SendResult:
        body, headers = self.build(msg)
        resp = await client.post(self.url, body=body, headers=headers)
        classify_http(self.name, resp)
        try:
            mid = str(resp.json()["message_id"])
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"webhook: unexpected answer {resp.text[:200]!r}", retryable=True) from None
        return SendResult(self.name, mid, resp.status)

    async def send_sms_batch(self, client: HttpClient, msgs: Sequence[OutgoingMessage]
                             ) -> list[SendResult | ProviderError]:
        body, headers = self.build_batch(msgs)
        resp = await client.post(self.url, body=body, headers=headers)
        classify_http(self.name, resp)
        try:
            answers = {str(r["id"]): r for r in resp.json()["results"]}
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"webhook: unexpected batch answer {resp.text[:200]!r}",
                                retryable=True) from None
        out: list[SendResult | ProviderError] = []
        for m in msgs:
            a = answers.get(m.id)
            if a is None:  # the gateway did not say: it may not have sent it, so try again
                out.append(ProviderError(f"webhook: no result for {m.id} in the batch answer",
                                         retryable=True))
            elif a.get("message_id"):
                out.append(SendResult(self.name, str(a["message_id"]), resp.status))
            else:
                out.append(ProviderError(f"webhook: {str(a.get('error', 'refused'))[:200]}",
                                         retryable=bool(a.get("retryable", False)), status=resp.status))
        return out
