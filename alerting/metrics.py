"""Alerting's Prometheus metrics (served by :func:`hazmon.metrics.serve_metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["NOTIFICATIONS", "PROVIDER_OUTCOMES", "ESCALATIONS", "TIME_TO_ACK", "EVENTS", "SUPPRESSED", "ERRORS", "PASS_SECONDS"]

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
