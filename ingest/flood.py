"""Per-vendor flood control at the bridge: one vendor's flood must delay nobody else's alarms.

All vendors reach the bridge through one MQTT subscription, in the broker's order, and share
its in-flight window (``Receive Maximum``). A vendor publishing far above its fleet's rate
(a gateway stuck in a resend loop, a replayed backlog) would otherwise fill the window and the
Kafka producer, and every other vendor's fire alarm would queue behind it.

Each vendor has a token bucket (``ingest.vendor_rate_per_s``, depth ``ingest.vendor_burst``)
and, while Kafka is acknowledging but slowly, an in-flight limit (``ingest.vendor_max_inflight``:
its messages received and not yet on Kafka); during an outage (Kafka acknowledges nothing) the
limit is not applied, everything is held unacknowledged and delivered afterwards, as before.
A message over either is not decoded and makes no records: it joins the vendor's current *shed
window*, and a window becomes one ``rate_limited`` dead letter (how many messages, from when
to when, the first one's raw bytes). The window's messages are acknowledged only when that
dead letter is on Kafka, so nothing is dropped silently and at-least-once holds; a window
closes after :data:`SHED_WINDOW_S` or :data:`SHED_WINDOW_MAX` messages, so it holds at most
that many in-flight slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import Counter

from ingest.mqtt import MqttMessage
from ingest.validation import iso

__all__ = ["SHED_WINDOW_MAX", "SHED_WINDOW_S", "RATE_LIMITED", "ShedWindow", "VendorLimiter"]

#: a shed window closes (becomes its dead letter) after this long …
SHED_WINDOW_S = 0.25
#: … or this many messages, whichever comes first
SHED_WINDOW_MAX = 500

RATE_LIMITED = Counter("hazmon_ingest_rate_limited_total", "MQTT messages over their vendor's rate, dead-lettered rate_limited", ["vendor"])


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class VendorLimiter:
    """Token bucket per vendor. ``rate`` ≤ 0 admits everything."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(max(1, burst))
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, vendor: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        b = self._buckets.get(vendor)
        if b is None:
            b = self._buckets[vendor] = _Bucket(self.burst, now)
        elif now > b.at:
            b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
            b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return True
        return False


@dataclass
class ShedWindow:
    """One vendor's messages over its rate since ``started``; the first one's topic and payload
    are kept for the dead letter."""

    vendor: str
    started: float
    first: MqttMessage
    messages: list[MqttMessage] = field(default_factory=list)
    last: float = 0.0
    causes: dict[str, int] = field(default_factory=dict)  # "rate" / "in_flight" → messages

    def add(self, message: MqttMessage, received: float, cause: str = "rate") -> None:
        self.messages.append(message)
        self.last = received
        self.causes[cause] = self.causes.get(cause, 0) + 1

    def full(self, now: float) -> bool:
        return len(self.messages) >= SHED_WINDOW_MAX or now - self.started >= SHED_WINDOW_S

    def detail(self, rate_per_s: float, burst: int, max_inflight: int) -> str:
        """The dead letter's detail: how many messages, over which limit, when."""
        limits = []
        if self.causes.get("rate"):
            limits.append(f"its limit of {rate_per_s:g}/s (burst {burst}): {self.causes['rate']}")
        if self.causes.get("in_flight"):
            limits.append(f"its limit of {max_inflight} in flight while Kafka was slow: {self.causes['in_flight']}")
        return (f"{len(self.messages)} messages from vendor {self.vendor!r} over {'; '.join(limits)}, "
                f"between {iso(self.started)} and {iso(self.last)}, were not forwarded (限流); raw of the first kept")
