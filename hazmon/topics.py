"""Kafka topic names, in one place, under a configurable prefix (``HAZMON_KAFKA__TOPIC_PREFIX``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Topics"]


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = "hazmon"

    @property
    def readings(self) -> str:
        """ReadingBatch, key = device id."""
        return f"{self.prefix}.readings.v1"

    @property
    def status(self) -> str:
        """DeviceStatus, key = device id."""
        return f"{self.prefix}.status.v1"

    @property
    def device_events(self) -> str:
        """DeviceEvent (device-reported alarms/faults), key = device id."""
        return f"{self.prefix}.device-events.v1"

    @property
    def events(self) -> str:
        """Event (detector output), key = device id."""
        return f"{self.prefix}.events.v1"

    @property
    def deadletter(self) -> str:
        """DeadLetter, key = vendor (or device id when known)."""
        return f"{self.prefix}.deadletter.v1"

    def all(self) -> tuple[str, ...]:
        return (self.readings, self.status, self.device_events, self.events, self.deadletter)
