"""hazmon: MQTT → Kafka → detectors → TimescaleDB → alerting, for district work-safety monitoring."""

__version__ = "0.1.0"
