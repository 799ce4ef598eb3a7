"""Generic webhook channel: POST the notification as JSON to a receiver's URL (a duty-room
display, an IM bot bridge, a district platform). 2xx = sent; 429/5xx retryable."""

from __future__ import annotations

import json

from alerting.errors import ProviderError
from alerting.notify.base import Notifier, OutgoingMessage, SendResult
from alerting.notify.http import HttpClient
from alerting.notify.sms import classify_http

__all__ = ["WebhookNotifier"]


class WebhookNotifier(Notifier):
    name = "webhook"

    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self._client = HttpClient("webhook", timeout_s=timeout_s)

    async def send(self, msg: OutgoingMessage) -> SendResult:
        if not msg.webhook_url:
            raise ProviderError("webhook: no URL", retryable=False)
        body = json.dumps({"id": msg.id, "alert_id": msg.alert_id, "template": msg.template, "body": msg.body,
                           "params": dict(msg.params), "recipient": dict(msg.recipient),
                           "notice_level": msg.notice_level}, ensure_ascii=False).encode()
        resp = await self._client.post(msg.webhook_url, body=body,
                                       headers={"content-type": "application/json; charset=utf-8"})
        classify_http("webhook", resp)
        return SendResult("webhook", resp.headers.get("x-message-id", msg.id), resp.status)

    async def aclose(self) -> None:
        await self._client.aclose()
