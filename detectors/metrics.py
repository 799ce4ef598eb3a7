"""Prometheus metrics of the detector stage (served by :func:`hazmon.metrics.serve_metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_SIZE",
    "READINGS",
    "EVENTS",
    "DEADLETTERS",
    "WRITE_SECONDS",
    "CONSUMER_LAG",
    "LATE_READINGS",
    "REPLAY_FALLBACKS",
]

BATCH_SIZE = Histogram(
    "hazmon_detector_batch_readings", "Readings per consumed micro-batch",
    buckets=(1, 10, 100, 500, 1000, 5000, 10000, 20000, 50000),
)
READINGS = Counter("hazmon_detector_readings_total", "Readings stored, by outcome", ["outcome"])
EVENTS = Counter("hazmon_detector_events_total", "Events produced", ["kind", "severity", "state"])
DEADLETTERS = Counter("hazmon_detector_deadletters_total", "Records dead-lettered by the detector", ["reason"])
WRITE_SECONDS = Histogram(
    "hazmon_detector_write_seconds", "Latency of one batch's database write",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge("hazmon_detector_consumer_lag", "Messages behind the high watermark", ["topic", "partition"])
LATE_READINGS = Counter(
    "hazmon_detector_late_readings_total", "Readings not newer than the last applied one (stored, not detected)"
)
REPLAY_FALLBACKS = Counter(
    "hazmon_detector_copy_conflicts_total", "Batches whose direct COPY hit existing rows (replay) and were merged"
)
