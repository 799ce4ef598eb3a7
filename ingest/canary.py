"""``hazmon canary``: the canary publisher (issue 20 item 1).

Every ``canary.every_s`` (10 s) it publishes one reading for every canary device of the
registry (``devices.is_canary``, one per adapter family the district uses) through the real
MQTT broker, QoS 1, on the device's vendor topic and in that family's own vendor format
(ingest/canary_formats.py), each carrying its sequence number and its publish time. From there
the canary takes the path every reading takes: the bridges (which stamp their receipt and
their instance), Kafka, the detector (which announces it after its database write, never
storing it as business data) and alerting, which records its arrival and raises 监测链路中断
when three are missed (alerting/canary.py).

Its heartbeat (``stage_heartbeats``, stage ``canary``; hazmon/heartbeat.py) says whether the
last round reached the broker (``mqtt_ok``: every PUBACK within ``canary.ack_timeout_s``) and at
what interval it publishes (``every_s``): alerting names the hop from it — the publisher itself
silent, or MQTT refusing — before it blames a stage downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from hazmon import heartbeat
from hazmon.logs import kv
from hazmon.settings import Settings
from ingest.canary_formats import encode

__all__ = ["Canary", "CanaryPublisher", "load_canaries"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Canary:
    device_id: str
    vendor: str
    adapter: str
    domain: str


async def load_canaries(conn: asyncpg.Connection) -> list[Canary]:
    """The registry's active canary devices with their vendor's adapter family."""
    rows = await conn.fetch(
        """SELECT d.id, d.vendor_id, v.adapter, d.domain FROM devices d JOIN vendors v ON v.id = d.vendor_id
           WHERE d.is_canary AND d.active ORDER BY d.id""")
    return [Canary(r[0], r[1], r[2], r[3]) for r in rows]


class CanaryPublisher:
    """Publishes the canaries every ``every_s`` until stopped; :attr:`state` is its heartbeat's detail."""

    def __init__(self, settings: Settings) -> None:
        import paho.mqtt.client as mqtt

        self.settings = settings
        c, m = settings.canary, settings.mqtt
        self.every_s = c.every_s
        self.canaries: list[Canary] = []
        self.state: dict[str, Any] = {"every_s": c.every_s, "mqtt_ok": None, "mqtt_error": "", "published": 0,
                                      "devices": 0, "seq": 0}
        self._acked: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311, clean_session=True,
                                  client_id=f"hazmon-canary-{uuid.uuid4().hex[:8]}")
        user = c.mqtt_username or m.username
        if user:
            secret = m.password.get_secret_value() if m.password is not None else None
            self.client.username_pw_set(user, c.mqtt_password or secret)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 5)
        self.client.on_publish = self._on_publish
        self.client.connect_async(m.host, m.port, keepalive=15)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            ev = self._acked.setdefault(mid, threading.Event())
        ev.set()

    def publish_round(self, t: float) -> None:
        """One canary per device, then wait for the PUBACKs (blocking: run it in a thread)."""
        root = self.settings.mqtt.topic_root
        waits: list[threading.Event] = []
        error = ""
        seq = 0
        for cn in self.canaries:
            try:
                payload, seq = encode(cn.adapter, cn.device_id, cn.domain, t)
            except ValueError as exc:
                error = str(exc)
                log.error("canary not encodable %s", kv(device=cn.device_id, error=error))
                continue
            info = self.client.publish(f"{root}/{cn.vendor}/{cn.device_id}/telemetry", payload, qos=1)
            if info.rc != 0:
                error = f"publish rc={info.rc} (not connected)"
                continue
            with self._lock:
                waits.append(self._acked.setdefault(info.mid, threading.Event()))
        deadline = time.monotonic() + self.settings.canary.ack_timeout_s
        acked = sum(ev.wait(max(0.0, deadline - time.monotonic())) for ev in waits)
        with self._lock:
            self._acked = {mid: ev for mid, ev in self._acked.items() if not ev.is_set()}
        if acked < len(waits) and not error:
            error = f"{len(waits) - acked} of {len(waits)} not acknowledged within {self.settings.canary.ack_timeout_s:g} s"
        ok = not error and acked == len(self.canaries)
        if ok != self.state["mqtt_ok"]:
            (log.info if ok else log.warning)("canary round %s", kv(ok=ok, devices=len(self.canaries), error=error))
        self.state.update(mqtt_ok=ok, mqtt_error=error, published=self.state["published"] + acked,
                          devices=len(self.canaries), seq=seq, at=time.time())

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        beat = asyncio.create_task(heartbeat.run(s.postgres.dsn, "canary", stop, instance=s.canary.instance,
                                                 detail=lambda: dict(self.state)))
        self.client.loop_start()
        next_reload = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_reload:
                    await self._reload()
                    next_reload = time.monotonic() + s.canary.registry_refresh_s
                t0 = time.time()
                if self.canaries:
                    await asyncio.to_thread(self.publish_round, t0)
                # on the interval's grid, so each canary's publish time is a whole multiple
                delay = self.every_s - (time.time() % self.every_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self.client.disconnect()
            self.client.loop_stop()

    async def _reload(self) -> None:
        try:
            conn = await asyncpg.connect(self.settings.postgres.dsn, timeout=5)
            try:
                found = await load_canaries(conn)
            finally:
                await conn.close()
        except Exception as exc:  # noqa: BLE001 - keep the canaries we have
            log.warning("canary devices not read, keeping the previous ones %s", kv(error=str(exc)[:200]))
            return
        if [c.device_id for c in found] != [c.device_id for c in self.canaries]:
            log.info("canary devices %s", kv(n=len(found), devices=",".join(c.device_id for c in found)))
            if not found:
                log.warning("no canary device registered (devices.is_canary): nothing to publish")
        self.canaries = found
