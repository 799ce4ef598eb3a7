"""A thin asyncio layer over paho-mqtt 2.x, in the spirit of aiomqtt: one connection as an
async context manager, awaitable subscribe/publish, received messages handed to a callback or
an async iterator, paho's errors translated into :class:`MqttError`.

paho's socket is driven by the asyncio loop itself (``add_reader``/``add_writer`` through
paho's socket callbacks), not by paho's network thread: callbacks then run on the loop, so the
bridge can ``ack`` a message from a Kafka delivery callback without locks, and nothing crosses
threads per message. Reads go through a user-space buffer and PUBLISH packets are decoded
lean (:mod:`ingest.paho_fast`, which overrides private paho methods: paho-mqtt is pinned).

MQTT v5 only: the bridge relies on ``clean_start=False`` + session expiry (persistent session),
``Receive Maximum`` (the broker never has more than that many unacknowledged QoS 1 messages
out to us: the bounded in-flight window) and manual acknowledgement.

Broker restarts (measured with mosquitto 2.0.11, tests/ingest/test_ingest_broker_restart.py):

- mosquitto restores a persistent session — its queued and in-flight messages, its last packet
  id — but **not its shared subscriptions**: its persistence file only holds plain subscriptions
  (``persist__subs_save`` walks ``subs``, never ``shared``; still so in 2.0.20 and on develop).
  Until the client subscribes again, whatever is published to those filters has no subscriber:
  the publisher gets its PUBACK and the broker drops the message. So subscribe again on every
  connection, even with ``session_present``, and reconnect promptly (:class:`MqttUnreachable`
  tells "the broker is not there" from "the broker refused us").
- The restored in-flight messages come again with DUP=1 and their old packet ids. They are new
  deliveries on the new connection and are acknowledged there; this frees the Receive Maximum
  window.
- Packet ids go back to the last snapshot's, so the broker reuses ids that the previous
  connection still had in flight for *other* messages. An ack of a message received on an
  earlier connection is therefore never sent on a later one (:attr:`MqttMessage.generation` is
  unique per connection, across clients too).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hazmon.errors import HazmonError
from hazmon.logs import kv
from ingest.paho_fast import BufferedClient

__all__ = ["MqttError", "MqttUnreachable", "MqttMessage", "Will", "MqttClient"]

log = logging.getLogger(__name__)

#: one number per connection attempt, process-wide: the bridge makes a new client per connection
_GENERATIONS = itertools.count(1)


class MqttError(HazmonError):
    """The broker refused us, the connection dropped, or an operation timed out."""


class MqttUnreachable(MqttError):
    """No broker answered: the TCP connection failed or dropped before the CONNACK (broker down
    or restarting). Worth retrying soon, unlike a refused CONNACK."""


@dataclass(slots=True)
class MqttMessage:
    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool = False
    dup: bool = False
    generation: int = 0  # which connection delivered it (unique per process; acks only go back on that one)


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class MqttClient:
    """One MQTT v5 connection. ``on_message`` (sync, called on the loop) receives every
    message; without it, iterate :meth:`messages`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        receive_maximum: int | None = None,
        keepalive: int = 30,
        manual_ack: bool = False,
        will: Will | None = None,
        on_message: Callable[[MqttMessage], None] | None = None,
        max_inflight_out: int = 1000,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.clean_start = clean_start
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.keepalive = keepalive
        self.manual_ack = manual_ack
        self.connect_timeout_s = connect_timeout_s
        self._on_message_cb = on_message
        self._queue: deque[MqttMessage] = deque()
        self._queue_wake: asyncio.Event | None = None
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._misc_task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self.session_present = False

        c = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
        )
        if username is not None:
            c.username_pw_set(username, password)
        if will is not None:
            c.will_set(will.topic, will.payload, will.qos, will.retain)
        c.max_inflight_messages_set(max_inflight_out)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c._hz_on_publish = self._on_publish_fast
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_socket_register_write
        c.on_socket_unregister_write = self._on_socket_unregister_write
        self._client = c

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def is_connected(self) -> bool:
        return self._closed is not None and not self._closed.done() and self._client.is_connected()

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolves (with :class:`MqttError`) when the connection is lost."""
        if self._closed is None:
            raise MqttError("not connected")
        return self._closed

    async def connect(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._connected = loop.create_future()
        self._closed = loop.create_future()
        self._closed.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        self._generation = next(_GENERATIONS)
        props = Properties(PacketTypes.CONNECT)
        if self.session_expiry_s:
            props.SessionExpiryInterval = self.session_expiry_s
        if self.receive_maximum:
            props.ReceiveMaximum = self.receive_maximum
        try:
            self._client.connect(self.host, self.port, self.keepalive, clean_start=self.clean_start, properties=props)
        except OSError as exc:
            raise MqttUnreachable(f"cannot connect to mqtt://{self.host}:{self.port}: {exc}") from None
        self._misc_task = loop.create_task(self._misc_loop())
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), self.connect_timeout_s)
        except TimeoutError:
            self._teardown()
            raise MqttError(f"no CONNACK from mqtt://{self.host}:{self.port} within {self.connect_timeout_s}s") from None
        except MqttError:
            self._teardown()
            raise

    async def disconnect(self) -> None:
        if self._closed is not None and not self._closed.done() and self._client.is_connected():
            self._client.disconnect()
            self._flush_writes()
            with contextlib.suppress(asyncio.TimeoutError, MqttError):
                await asyncio.wait_for(asyncio.shield(self._closed), 2.0)
        self._teardown()

    def _teardown(self) -> None:
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None
        if self._sock is not None:
            self._unwatch(self._sock)
        with contextlib.suppress(Exception):
            self._client._sock_close()
        self._fail_pending(MqttError("connection closed"))
        if self._closed is not None and not self._closed.done():
            self._closed.set_exception(MqttError("connection closed"))

    # --- operations -----------------------------------------------------------------------

    async def subscribe(self, *filters: str, qos: int = 1, timeout_s: float = 10.0, retain_as_published: bool = False) -> None:
        """``retain_as_published``: forwarded messages keep the publisher's RETAIN flag (MQTT v5
        §3.8.3.1); without it the broker clears the flag on every live forward."""
        opts = SubscribeOptions(qos=qos, retainAsPublished=retain_as_published)
        rc, mid = self._client.subscribe([(f, opts) for f in filters])
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError(f"subscribe failed: {paho.error_string(rc)}")
        codes = await self._wait(mid, timeout_s, "SUBACK")
        bad = [f"{f}: {c}" for f, c in zip(filters, codes, strict=False) if getattr(c, "is_failure", False)]
        if bad:
            raise MqttError(f"subscription refused: {'; '.join(bad)}")

    def publish_nowait(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> asyncio.Future[Any]:
        """Queue a publish; the future resolves at PUBACK (QoS 1) or when written (QoS 0)."""
        assert self._loop is not None
        fut: asyncio.Future[Any] = self._loop.create_future()
        if self._closed is None or self._closed.done():
            fut.set_exception(MqttError("not connected"))
            return fut
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_QUEUE_SIZE):
            fut.set_exception(MqttError(f"publish failed: {paho.error_string(info.rc)}"))
        elif qos == 0:
            fut.set_result(None)
        else:
            self._pending[info.mid] = fut
        return fut

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout_s: float = 10.0) -> None:
        fut = self.publish_nowait(topic, payload, qos, retain)
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise MqttError(f"no PUBACK for {topic} within {timeout_s}s") from None

    def ack(self, message: MqttMessage) -> bool:
        """Acknowledge a QoS 1 message (manual-ack mode). A message from an earlier connection
        (of this client or of another one) is not acked: its packet id may name another message
        now, and the broker redelivers it on the new connection if it still has it."""
        if message.generation != self._generation or self._closed is None or self._closed.done():
            return False
        self._client.ack(message.mid, message.qos)
        return True

    async def messages(self) -> AsyncIterator[MqttMessage]:
        """Received messages (when no ``on_message`` callback was given)."""
        self._queue_wake = asyncio.Event()
        while True:
            while self._queue:
                yield self._queue.popleft()
            if self._closed is not None and self._closed.done():
                self._closed.result()  # raises the MqttError
                return
            self._queue_wake.clear()
            waiter = asyncio.ensure_future(self._queue_wake.wait())
            assert self._closed is not None
            pending: list[asyncio.Future[Any]] = [waiter, self._closed]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def _wait(self, mid: int, timeout_s: float, what: str) -> Any:
        assert self._loop is not None
        fut = self._loop.create_future()
        self._pending[mid] = fut
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise MqttError(f"no {what} within {timeout_s}s") from None
        finally:
            self._pending.pop(mid, None)

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: a dropped publish is reported by the caller

    # --- paho callbacks (run on the loop) -------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        fut = self._connected
        if fut is None or fut.done():
            return
        if reason.is_failure:
            fut.set_exception(MqttError(f"broker refused the connection: {reason}"))
        else:
            self.session_present = bool(getattr(flags, "session_present", False))
            fut.set_result(None)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        exc = MqttError(f"disconnected: {reason}")
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(MqttUnreachable(f"connection lost before the CONNACK: {reason}"))
        if self._closed is not None and not self._closed.done():
            self._closed.set_exception(exc)
        self._fail_pending(exc)
        if self._queue_wake is not None:
            self._queue_wake.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        m = MqttMessage(msg.topic, bytes(msg.payload), msg.qos, msg.mid, msg.retain, msg.dup, self._generation)
        if self._on_message_cb is not None:
            self._on_message_cb(m)
        else:
            self._queue.append(m)
            if self._queue_wake is not None:
                self._queue_wake.set()

    def _on_publish_fast(self, topic: str, payload: bytes, qos: int, mid: int, dup: bool, retain: bool) -> None:
        m = MqttMessage(topic, payload, qos, mid, retain, dup, self._generation)
        if self._on_message_cb is not None:
            self._on_message_cb(m)
        else:
            self._queue.append(m)
            if self._queue_wake is not None:
                self._queue_wake.set()

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        fut = self._pending.get(mid)
        if fut is not None and not fut.done():
            fut.set_result(codes)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            if getattr(reason, "is_failure", False):
                fut.set_exception(MqttError(f"publish refused: {reason}"))
            else:
                fut.set_result(None)

    # --- socket integration ---------------------------------------------------------------

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._sock = sock
        self._client._hz_reset()
        self._loop.add_reader(sock, self._on_readable)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._unwatch(sock)
        self._client._hz_reset()

    def _unwatch(self, sock: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock)
            with contextlib.suppress(Exception):
                self._loop.remove_writer(sock)
        if sock is self._sock:
            self._sock = None

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_writer(sock, self._on_writable)

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(sock)

    def _on_readable(self) -> None:
        c = self._client
        rc = c.loop_read()
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and c._hz_pending():
            rc = c.loop_read()
        if c.want_write():
            c.loop_write()

    def _on_writable(self) -> None:
        self._client.loop_write()

    def _flush_writes(self) -> None:
        with contextlib.suppress(Exception):
            self._client.loop_write()

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            rc = self._client.loop_misc()
            if rc == MQTTErrorCode.MQTT_ERR_NO_CONN and self._closed is not None and not self._closed.done():
                self._closed.set_exception(MqttError("connection lost"))
                self._fail_pending(MqttError("connection lost"))
                if self._queue_wake is not None:
                    self._queue_wake.set()
                return
            if log.isEnabledFor(logging.DEBUG):
                log.debug("mqtt misc %s", kv(client=self.client_id, rc=int(rc)))
