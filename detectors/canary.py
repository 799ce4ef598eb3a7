"""The canary's hop through the detector (issue 20): a canary device's readings batch
(``devices.is_canary``, published by ``hazmon canary``) is not business data — it is never
stored as readings, never detected, never counted in device health (last seen, presence) or the
KPIs. The detector turns it into one announcement on the events topic, ``system.canary``,
carrying the stamps of every hop so far (published, bridged, the bridge, detected), produced
*after* the batch's database write succeeded (detectors/write.py): a canary that reaches
alerting says the detector consumed Kafka and the database took the batch it came in.

Alerting takes these announcements apart from the alarms (alerting/canary.py): they record the
arrival into ``canary_state``; they never become an alert.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from hazmon.contracts import Event, EventState, Severity

from .decode import WireBatch

__all__ = ["KIND", "canary_event"]

#: the kind of a canary's announcement on the events topic (alerting/canary.py takes it apart)
KIND = "system.canary"


def canary_event(batch: WireBatch, now: datetime | None = None) -> Event:
    """The announcement of a canary batch. Its publish time is the newest sample's time, its
    sequence number the samples' ``seq`` (or, in a format without one, that time's second)."""
    last = max(batch.samples, key=lambda s: s.ts)
    seq = max((s.seq for s in batch.samples if s.seq is not None), default=None)
    if seq is None:
        seq = int(last.ts.timestamp())
    detected = now or datetime.now(UTC)
    eid = "canary-" + hashlib.sha256(f"{batch.device_id}|{seq}".encode()).hexdigest()[:32]
    return Event(id=eid, kind=KIND, domain="system", severity=Severity.BLUE, state=EventState.RESOLVED,
                 device_id=batch.device_id, site_id=batch.site_id, starts_at=last.ts, ends_at=detected,
                 detected_at=detected, received_at=batch.received_at, summary="监测链路探针",
                 labels={"seq": str(seq), "bridge": batch.bridge, "vendor": batch.vendor,
                         "canary_domain": batch.domain})
