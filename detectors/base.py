"""The contract of a domain detector module (gas.py, elevator.py, fire.py …).

A new domain (重大危险源 online monitoring, boilers …) plugs in as one module with a subclass
of :class:`DomainDetector` plus its thresholds in ``detectors.yaml``; the engine routes a
device's readings and device events to the detector registered for its domain.

Detectors are pure decision code: they see typed, already-validated values and a clock (the
reading timestamps, and ``now`` in :meth:`tick`), and talk only to the episode book.
"""

from __future__ import annotations

from datetime import datetime

from hazmon.contracts import DeviceEvent, Evidence

from .state import DeviceCtx, DeviceTable, EpisodeBook

__all__ = ["Sample", "DomainDetector", "evidence"]

#: one validated reading handed to a detector: (metric, value, ts epoch seconds, ts)
Sample = tuple[str, float, float, datetime]


def evidence(samples: list[Sample] | tuple[Sample, ...], note: str = "") -> tuple[Evidence, ...]:
    return tuple(Evidence(ts=s[3], metric=s[0], value=s[1], note=note) for s in samples)


class DomainDetector:
    """Base class: override what the domain needs."""

    domain: str = ""

    def __init__(self, devices: DeviceTable, book: EpisodeBook) -> None:
        self.devices = devices
        self.book = book

    def on_samples(self, ctx: DeviceCtx, samples: list[Sample]) -> None:
        """Validated, in-order (per metric strictly newer) readings of one device."""

    def on_device_event(self, ctx: DeviceCtx, ev: DeviceEvent) -> None:
        """A discrete alarm/fault the device reported itself."""

    def tick(self, now: datetime) -> None:
        """Time passes without input (shields held too long, fault windows sliding)."""
