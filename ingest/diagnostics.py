"""Per-vendor rejection diagnostics and the bridge's Prometheus metrics.

Vendors need clear feedback when a payload is rejected: the bridge counts dead letters per
vendor and reason and keeps the last few reasons per vendor (for the console and the log); the
dead-letter records themselves, raw bytes included, go to the ``deadletter`` Kafka topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter as PCounter
from prometheus_client import Gauge, Histogram

from hazmon.logs import kv

_log = logging.getLogger("ingest.bridge")  # the bridge's log, where these lines always were

__all__ = ["BridgeStats", "Diagnostics", "Rejection", "report_every", "RECEIVED", "PRODUCED", "DEADLETTERED", "REFUSED",
           "IN_FLIGHT", "PRODUCE_LATENCY", "READINGS", "VENDOR_READINGS"]

RECEIVED = PCounter("hazmon_ingest_received_total", "MQTT messages received by the bridge")
READINGS = PCounter("hazmon_ingest_readings_total", "readings (samples) produced to the readings topic")
#: the same per vendor (its registry id; unknown vendors produce no readings): one vendor's platform
#: going quiet while the others go on (Prometheus rule HazmonVendorReadingsCollapsed)
VENDOR_READINGS = PCounter("hazmon_ingest_vendor_readings_total", "readings produced to the readings topic, "
                           "per vendor", ["vendor"])
PRODUCED = PCounter("hazmon_ingest_produced_total", "records acknowledged by Kafka", ["topic"])
DEADLETTERED = PCounter("hazmon_ingest_deadlettered_total", "dead-lettered messages/parts", ["reason", "vendor"])
REFUSED = PCounter("hazmon_ingest_refused_records_total",
                   "records Kafka refused for good (non-retryable); their message is dead-lettered", ["topic"])
IN_FLIGHT = Gauge("hazmon_ingest_in_flight", "MQTT messages received and not yet acknowledged")
#: 1 while the bridge holds its (shared) subscription. mosquitto does not persist $share
#: subscriptions across its own restart: until this is 1 again, what devices publish is dropped.
SUBSCRIBED = Gauge("hazmon_ingest_subscribed", "1 while the bridge's MQTT subscription is in place")
SUBSCRIBES = PCounter("hazmon_ingest_subscribes_total", "successful MQTT (re)subscriptions of the bridge")
PRODUCE_LATENCY = Histogram(
    "hazmon_ingest_produce_latency_seconds",
    "MQTT receive to Kafka acknowledgement of all of a message's records",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass(frozen=True, slots=True)
class Rejection:
    at: float
    reason: str
    detail: str
    topic: str
    device_id: str = ""


@dataclass
class Diagnostics:
    keep_last: int = 20
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    last: dict[str, deque[Rejection]] = field(default_factory=dict)

    def reject(self, vendor: str, rejection: Rejection) -> None:
        vendor = vendor or "(unknown)"
        self.counts.setdefault(vendor, Counter())[rejection.reason] += 1
        self.last.setdefault(vendor, deque(maxlen=self.keep_last)).append(rejection)
        DEADLETTERED.labels(rejection.reason, vendor).inc()

    def snapshot(self) -> dict[str, Any]:
        """JSON-able view: ``{vendor: {"counts": {reason: n}, "last": [...]}}``."""
        return {
            vendor: {
                "counts": dict(self.counts[vendor]),
                "last": [
                    {"at": r.at, "reason": r.reason, "detail": r.detail, "topic": r.topic, "device_id": r.device_id}
                    for r in self.last.get(vendor, ())
                ],
            }
            for vendor in sorted(self.counts)
        }


@dataclass
class BridgeStats:
    received: int = 0
    acked: int = 0
    records: int = 0
    readings: int = 0
    deadletters: int = 0
    retries: int = 0
    refused: int = 0  # records the producer or broker refused for good (their message dead-lettered)


async def report_every(every_s: float, counters: Callable[[], dict[str, Any]], diagnostics: Diagnostics) -> None:
    """Log the bridge's counters and each vendor's latest rejection every ``every_s`` (until cancelled)."""
    while True:
        await asyncio.sleep(every_s)
        _log.info("bridge stats %s", kv(**counters()))
        for vendor, diag in diagnostics.snapshot().items():
            last = diag["last"][-1] if diag["last"] else {}
            _log.info("rejections %s", kv(vendor=vendor, counts=str(diag["counts"]).replace(" ", ""),
                                          last=str(last.get("detail", ""))[:120]))
