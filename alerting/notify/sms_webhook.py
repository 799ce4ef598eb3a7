"""Generic JSON SMS gateway: ``POST {url}`` with the rendered text.

Body: ``{"id", "phone", "body", "sign_name", "template", "params"}``; header
``X-Hazmon-Signature: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>`` so the
gateway can refuse forged requests. Answer: ``{"message_id": "..."}`` (2xx). ``id`` is the
outbox id: a gateway may use it to drop a duplicate after a retry whose answer was lost.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from alerting.errors import ProviderError
from alerting.notify.http import HttpClient
from alerting.notify.sms import OutgoingMessage, SendResult, classify_http

__all__ = ["WebhookSms", "webhook_signature"]


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSms:
    name = "webhook"

    def __init__(self, url: str, secret: str, sign_name: str) -> None:
        self.url, self.secret, self.sign_name = url, secret, sign_name

    def build(self, msg: OutgoingMessage) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"id": msg.id, "phone": msg.phone, "body": msg.body, "sign_name": self.sign_name,
                           "template": msg.template, "params": dict(msg.params)},
                          ensure_ascii=False, separators=(",", ":")).encode()
        return body, {"content-type": "application/json; charset=utf-8",
                      "x-hazmon-signature": webhook_signature(self.secret, body)}

    async def send_sms(self, client: HttpClient, msg: OutgoingMessage) -> SendResult:
        body, headers = self.build(msg)
        resp = await client.post(self.url, body=body, headers=headers)
        classify_http(self.name, resp)
        try:
            mid = str(resp.json()["message_id"])
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"webhook: unexpected answer {resp.text[:200]!r}", retryable=True) from None
        return SendResult(self.name, mid, resp.status)
