"""SMS channel: the provider interface, the channel over it and the factory.

A provider adapter (:class:`SmsProvider`) turns an
:class:`~alerting.notify.base.OutgoingMessage` into one HTTP request in its API's shape (with
its signing) and its answer into a :class:`~alerting.notify.base.SendResult` or a
:class:`~alerting.errors.ProviderError` that says whether retrying can help. Adapters hold no
state besides credentials; retries, backoff and rate limits belong to the outbox.

Cloud SMS sends only registered templates: :data:`TEMPLATE_CODES` maps our template names to
the codes registered with each provider (configuration of a real deployment; the simulator
accepts these).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from alerting.errors import ProviderError
from alerting.notify.base import Notifier, OutgoingMessage, SendResult
from alerting.notify.http import HttpAnswer, HttpClient
from alerting.templates import TEMPLATE_CODES as _CODES

# Notifier, OutgoingMessage and SendResult live in alerting.notify.base (imported here, so
# ``from alerting.notify.sms import Notifier`` keeps working)
__all__ = [
    "TEMPLATE_CODES",
    "classify_http",
    "SmsProvider",
    "SmsNotifier",
    "make_sms_notifier",
]

#: our template name → provider template code (阿里云 TemplateCode / 腾讯云 TemplateId): one
#: per registered template (alerting/templates/catalogue.py holds them with their texts)
TEMPLATE_CODES: dict[str, dict[str, str]] = _CODES


def classify_http(provider: str, resp: HttpAnswer) -> None:
    """Raise a ProviderError for a non-2xx answer: 429 and 5xx are retryable, 4xx are not."""
    if resp.status < 300:
        return
    retry_after = None
    if "retry-after" in resp.headers:
        try:
            retry_after = float(resp.headers["retry-after"])
        except ValueError:
            retry_after = None
    retryable = resp.status == 429 or resp.status >= 500 or resp.status == 408
    raise ProviderError(f"{provider}: HTTP {resp.status}: {resp.text[:200]}", retryable=retryable,
                        status=resp.status, retry_after_s=retry_after)


class SmsProvider(abc.ABC):
    """A provider's API. One whose API takes one text to many numbers in one request sets
    :attr:`max_batch` and overrides :meth:`send_sms_batch`."""

    name: str
    #: numbers one :meth:`send_sms_batch` request may carry (1: the API has no batch request)
    max_batch: int = 1
    #: whether one batch request may carry each number's own text
    per_message_text: bool = False

    @abc.abstractmethod
    async def send_sms(self, client: HttpClient, msg: OutgoingMessage) -> SendResult: ...

    async def send_sms_batch(self, client: HttpClient, msgs: Sequence[OutgoingMessage]
                             ) -> list[SendResult | ProviderError]:
        """An answer per message (in order): a :class:`SendResult`, or the
        :class:`ProviderError` that refused that number. A failure of the whole request is
        raised. Without a batch request in the API: one :meth:`send_sms` each."""
        out: list[SendResult | ProviderError] = []
        for msg in msgs:
            try:
                out.append(await self.send_sms(client, msg))
            except ProviderError as exc:
                out.append(exc)
        return out


class SmsNotifier(Notifier):
    """The ``sms`` channel: one provider over keep-alive HTTP connections (:class:`HttpClient`).

    ``max_in_flight`` is the provider's limit on concurrent requests: the outbox never has more
    than that many sends of this channel under way, and the client holds as many connections."""

    name = "sms"

    def __init__(self, provider: SmsProvider, *, timeout_s: float = 5.0, max_in_flight: int = 32) -> None:
        self.provider = provider
        self.max_in_flight = max(1, max_in_flight)
        self._client = HttpClient(provider.name, timeout_s=timeout_s, max_connections=self.max_in_flight)

    @property
    def per_message_text(self) -> bool:
        """Whether one request may carry a different text per number (the webhook gateway)."""
        return self.provider.per_message_text

    @property
    def max_batch(self) -> int:
        """How many messages of one text :meth:`send_batch` takes in one request (1: no batching)."""
        return max(1, self.provider.max_batch)

    @property
    def provider_name(self) -> str:
        return self.provider.name

    async def send(self, msg: OutgoingMessage) -> SendResult:
        if not msg.phone:
            raise ProviderError("sms: no phone number", retryable=False)
        return await self.provider.send_sms(self._client, msg)

    async def send_batch(self, msgs: Sequence[OutgoingMessage]) -> list[SendResult | ProviderError]:
        """Messages of one text (body, template, parameters) to several numbers, in as few
        requests as the provider allows: a storm's group message to the business, the grid
        member and the regulator is one request, not three. Per-message answers, in order; a
        failure of a whole request is that error for each of its messages."""
        no_phone = ProviderError("sms: no phone number", retryable=False)
        out: list[SendResult | ProviderError] = [no_phone] * len(msgs)
        todo = [i for i, m in enumerate(msgs) if m.phone]
        size = self.max_batch
        for k in range(0, len(todo), size):
            part = todo[k:k + size]
            try:
                if len(part) == 1:
                    got: list[SendResult | ProviderError] = [
                        await self.provider.send_sms(self._client, msgs[part[0]])]
                else:
                    got = await self.provider.send_sms_batch(self._client, [msgs[i] for i in part])
            except ProviderError as exc:
                got = [exc] * len(part)
            for i, answer in zip(part, got, strict=True):
                out[i] = answer
        return out

    async def aclose(self) -> None:
        await self._client.aclose()


def make_sms_notifier(sms: Any) -> SmsNotifier:
    """From :class:`hazmon.settings.SmsSettings`: provider ``webhook``, ``aliyun`` or ``tencent``."""
    secret = sms.access_key_secret.get_secret_value()
    if sms.provider == "aliyun":
        from alerting.notify.sms_aliyun import AliyunSms

        prov: SmsProvider = AliyunSms(sms.url, sms.access_key_id, secret, sms.sign_name)
    elif sms.provider == "tencent":
        from alerting.notify.sms_tencent import TencentSms

        prov = TencentSms(sms.url, sms.access_key_id, secret, sms.sign_name, sms.app_id or "1400000000")
    else:
        from alerting.notify.sms_webhook import WebhookSms

        prov = WebhookSms(sms.url, secret, sms.sign_name)
    return SmsNotifier(prov, timeout_s=sms.timeout_s, max_in_flight=sms.max_in_flight)
