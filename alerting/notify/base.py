"""What a channel is to the outbox: the message it is handed, the answer it gives, and the
:class:`Notifier` interface every channel implements — declared, not looked up with
``getattr``, so mypy checks each channel against it.

Alertmanager's ``notify.Notifier`` is one method, ``Notify(ctx, alerts) (retry bool, err)``;
ours adds what the outbox needs to send a storm fast without breaking a provider's limits: how
many requests it may have in flight, and whether (and how) it takes several messages in one
request. A failed send raises :class:`~alerting.errors.ProviderError` with ``retryable`` set.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerting.errors import ProviderError

__all__ = ["OutgoingMessage", "SendResult", "Notifier"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One outbox row as a channel sees it."""

    id: str
    channel: str
    body: str
    template: str
    params: Mapping[str, str] = field(default_factory=dict)
    phone: str | None = None
    alert_id: str | None = None
    recipient: Mapping[str, Any] = field(default_factory=dict)
    notice_level: str | None = None
    webhook_url: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    message_id: str
    status: int = 200


class Notifier(abc.ABC):
    """A channel (``sms``, ``webhook``, ``console``). Subclasses implement :meth:`send`; the
    capabilities below default to "one message per request, no limit of its own" and are
    overridden by a channel that has them (:class:`alerting.notify.sms.SmsNotifier`)."""

    #: the channel's name (``notifications.channel``)
    name: str
    #: sends of this channel under way at once at most — its provider's limit on concurrent
    #: requests; 0: only the outbox's own ``concurrency``
    max_in_flight: int = 0

    @property
    def max_batch(self) -> int:
        """Messages of one text :meth:`send_batch` takes in one request (1: no batching)."""
        return 1

    @property
    def per_message_text(self) -> bool:
        """Whether one :meth:`send_batch` request may carry a different text per message (each
        recipient's own 回复码 and link); False: only messages of one text are batched."""
        return False

    @property
    def provider_name(self) -> str:
        """Who answered, as recorded on each attempt (``notifications.provider``)."""
        return self.name

    @abc.abstractmethod
    async def send(self, msg: OutgoingMessage) -> SendResult:
        """Send one message; raise :class:`ProviderError` when it was not sent."""

    async def send_batch(self, msgs: Sequence[OutgoingMessage]) -> list[SendResult | ProviderError]:
        """Up to :attr:`max_batch` messages, an answer per message in order (a refused one is
        its :class:`ProviderError`). Without a batch request: one :meth:`send` each."""
        out: list[SendResult | ProviderError] = []
        for msg in msgs:
            try:
                out.append(await self.send(msg))
            except ProviderError as exc:
                out.append(exc)
        return out
