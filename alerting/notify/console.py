"""Console channel: the alarm board reads the outbox rows themselves, so "sending" is a log
line and marking the row sent. ``recent`` keeps the last messages for the demo's live view."""

from __future__ import annotations

import logging
from collections import deque

from alerting.notify.base import Notifier, OutgoingMessage, SendResult
from hazmon.logs import kv

__all__ = ["ConsoleNotifier"]

log = logging.getLogger(__name__)


class ConsoleNotifier(Notifier):
    name = "console"

    def __init__(self, keep: int = 200) -> None:
        self.recent: deque[OutgoingMessage] = deque(maxlen=keep)

    async def send(self, msg: OutgoingMessage) -> SendResult:
        self.recent.append(msg)
        log.info("console notification %s", kv(id=msg.id, alert=msg.alert_id,
                                                 to=msg.recipient.get("name", ""), template=msg.template,
                                                 body=msg.body))
        return SendResult("console", msg.id)
