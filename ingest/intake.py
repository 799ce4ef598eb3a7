"""The bridge's MQTT side: hold the subscription, queue what arrives.

One persistent MQTT v5 session (``clean_start=False`` + session expiry: while the bridge is away
the broker queues for it) with ``Receive Maximum`` = ``mqtt.max_inflight`` (the broker never has
more unacknowledged messages out to us) and manual acknowledgement. Scale-out: N bridges with
distinct client ids subscribe through the shared group ``$share/{mqtt.shared_group}/…``.

mosquitto forgets $share subscriptions on its own restart (ingest/mqtt.py), so the loop
subscribes again on every connection and retries promptly while no broker answers: what devices
publish between the broker's restart and our SUBSCRIBE has no subscriber and is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from hazmon.logs import kv
from hazmon.settings import MqttSettings
from ingest.diagnostics import SUBSCRIBED, SUBSCRIBES
from ingest.mqtt import MqttClient, MqttError, MqttMessage, MqttUnreachable

__all__ = ["MqttIntake", "RECONNECT_UNREACHABLE_S"]

log = logging.getLogger("ingest.bridge")  # the bridge's log, where these lines always were (tests read it)

#: retry interval while no broker answers. mosquitto forgets $share subscriptions on a restart,
#: so what devices publish between its restart and our SUBSCRIBE is lost (ingest/mqtt.py)
RECONNECT_UNREACHABLE_S = 0.2


class MqttIntake:
    """Every message received, with its receive time, in :attr:`inbox` (the worker's queue)."""

    def __init__(self, settings: MqttSettings, client_id: str, filters: list[str]) -> None:
        self.settings = settings
        self.client_id = client_id
        self.filters = filters
        self.inbox: deque[tuple[MqttMessage, float]] = deque()
        self.wake = asyncio.Event()  # set when the inbox gets a message
        self.ready = asyncio.Event()  # set once subscribed (tests and the benchmark wait on it)
        self.subscribed = False
        self.client: MqttClient | None = None

    def on_message(self, message: MqttMessage) -> None:
        self.inbox.append((message, time.time()))
        if not self.wake.is_set():
            self.wake.set()

    def ack(self, message: MqttMessage) -> bool:
        client = self.client
        return client is not None and client.ack(message)

    def _set_subscribed(self, on: bool) -> None:
        self.subscribed = on
        SUBSCRIBED.set(1 if on else 0)

    async def run(self, stop: asyncio.Event, drain: Callable[[float], Awaitable[None]]) -> None:
        """Connect, subscribe, and reconnect until ``stop``; then ``drain`` (give in-flight
        messages a chance to be acked on this connection) and disconnect."""
        m = self.settings
        filters = self.filters
        delay = 0.5
        warned = 0.0
        while not stop.is_set():
            client = MqttClient(
                m.host,
                m.port,
                client_id=self.client_id,
                username=m.username,
                password=m.password.get_secret_value() if m.password else None,
                clean_start=False,
                session_expiry_s=m.session_expiry_s,
                receive_maximum=m.max_inflight,
                keepalive=m.keepalive_s,
                manual_ack=True,
                on_message=self.on_message,
            )
            try:
                await client.connect()
                self.client = client
                await client.subscribe(*filters, qos=1, retain_as_published=True)
                log.info("bridge subscribed %s", kv(client_id=self.client_id, filters=",".join(filters),
                                                    session_present=client.session_present))
                self.ready.set()
                self._set_subscribed(True)
                SUBSCRIBES.inc()
                delay = 0.5
                stop_wait = asyncio.ensure_future(stop.wait())
                waiting: list[asyncio.Future[Any]] = [stop_wait, client.closed]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                self._set_subscribed(False)  # no watermark while we cannot receive
                stop_wait.cancel()
                if not stop.is_set():
                    client.closed.exception()
            except MqttError as exc:
                self._set_subscribed(False)
                unreachable = isinstance(exc, MqttUnreachable)
                wait_s = RECONNECT_UNREACHABLE_S if unreachable else delay
                if not unreachable or time.monotonic() - warned >= 10.0:
                    warned = time.monotonic()
                    log.warning("mqtt connection problem %s", kv(error=str(exc)[:300], retry_in_s=wait_s))
                await client.disconnect()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait_s)
                if not unreachable:
                    delay = min(delay * 2, 10.0)
                continue
            if stop.is_set():
                await drain(10.0)
                await client.disconnect()
