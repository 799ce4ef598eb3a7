"""The ``replay`` section of :class:`hazmon.settings.Settings` (``HAZMON_REPLAY__*``): the limits of a
what-if replay (回放, alerting/replay.py), in a module of its own so settings.py stays under the
spine's size cap."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ReplaySettings"]


class ReplaySettings(BaseModel):
    """How much stored history one replay may read.

    A replay runs the detector engine twice in memory over every stored reading of the period
    (the live thresholds and the proposed ones), so its cost grows with the period: ``max_days``
    bounds the period (31: a monthly 通报's month), ``max_readings`` the rows read (2,000,000 ≈ a
    minute's work and ~1 GB of memory at the measured engine speed; a larger district replays a
    vendor model or a shorter period)."""

    model_config = ConfigDict(extra="forbid")

    max_days: float = Field(default=31.0, gt=0, le=366)
    max_readings: int = Field(default=2_000_000, ge=1)
