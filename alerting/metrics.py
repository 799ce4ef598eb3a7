"""Alerting's Prometheus metrics (served by :func:`hazmon.metrics.serve_metrics`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["NOTIFICATIONS", "PROVIDER_OUTCOMES", "ESCALATIONS", "TIME_TO_ACK", "EVENTS", "SUPPRESSED", "ERRORS",
           "PASS_SECONDS", "ALARM_SENT", "CONSUMER_LAG", "alarm_sent", "record_lag"]

NOTIFICATIONS = Counter(
    "hazmon_alerting_notifications_total",
    "Notification attempts by channel and outcome (sent, delivered, retrying, failed, rate_limited, suppressed)",
    ["channel", "outcome"],
)
#: the same send outcomes and receipts per provider (sms: webhook, aliyun, tencent; voice-aliyun, …):
#: the dashboard's SMS outcomes by provider (a district may run two SMS accounts or change vendor)
PROVIDER_OUTCOMES = Counter(
    "hazmon_alerting_provider_outcomes_total",
    "Send outcomes and delivery receipts by channel, provider and outcome",
    ["channel", "provider", "outcome"],
)
ESCALATIONS = Counter("hazmon_alerting_escalations_total", "四单 notices issued, by level", ["level"])
TIME_TO_ACK = Histogram(
    "hazmon_alerting_time_to_ack_seconds", "Alarm start to first acknowledgement",
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
EVENTS = Counter("hazmon_alerting_events_total", "Events consumed, by result (new, resolved, replay, bad)", ["result"])
SUPPRESSED = Counter("hazmon_alerting_suppressed_total", "Alerts muted at flush, by cause", ["cause"])
ERRORS = Counter("hazmon_alerting_errors_total", "Unexpected errors in the alerting loops", ["where"])
PASS_SECONDS = Histogram(
    "hazmon_alerting_pass_seconds",
    "Duration of one pass of an alerting loop (consume: a batch stored; timers: flush + escalate; "
    "sender: the outbox drained; reload: registry re-read)",
    ["loop"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
#: publish → SMS as hazmon sees it: from the bridge's receipt of the record that opened an alarm
#: (the alert's ``reported_at``, :mod:`alerting.late`) to the provider taking the alarm's first
#: messages and call (templates ``alarm``, ``voice_alarm``; reminders, 四单 and 恢复 are not counted)
ALARM_SENT = Histogram(
    "hazmon_alerting_alarm_sent_seconds",
    "Seconds from hazmon receiving the record that opened an alarm to the provider accepting its message",
    ["channel"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 20, 30, 45, 60),
)
CONSUMER_LAG = Gauge("hazmon_alerting_consumer_lag", "Events behind the high watermark of alerting's topic",
                     ["topic", "partition"])


def alarm_sent(row: Mapping[str, Any], outcome: str, answered_at: datetime | None) -> None:
    """Observe :data:`ALARM_SENT` for an outbox row the provider accepted, when it is an alarm's
    message (the claim returns its alert's ``alarm_at`` then: :func:`alerting.store.outbox.claim_due`)."""
    at = row.get("alarm_at")
    if outcome == "sent" and at is not None and answered_at is not None:
        ALARM_SENT.labels(row["channel"]).observe(max((answered_at - at).total_seconds(), 0.0))


def record_lag(consumer: Any, batches: Mapping[Any, Sequence[Any]]) -> None:
    """:data:`CONSUMER_LAG` of each partition a poll returned records of (the fetch's high
    watermark minus the next offset; a partition the broker has not answered for keeps its value)."""
    for tp, records in batches.items():
        hw = consumer.highwater(tp)
        if records and hw is not None:
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, hw - records[-1].offset - 1))
