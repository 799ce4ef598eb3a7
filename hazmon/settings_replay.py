"""The ``replay`` section of :class:`hazmon.settings.Settings` (``HAZMON_REPLAY__*``): the limits of a
what-if replay (回放, alerting/replay.py), in a module of its own so settings.py stays under the
spine's size cap."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ReplaySettings"]


class ReplaySettings(BaseModel):
    """How much stored history one replay may read.

    A replay runs the detector engine twice in memory over every stored reading of the period
    (the live thresholds and the proposed ones), so its cost grows with the readings:
    ``max_days`` bounds the period (31: a monthly 通报's month), ``max_readings`` the rows read.
    Measured on the shared 2-core machine: 1,071,360 readings (6 gas detectors, one every 15 s,
    31 days) in 80 s with a peak of 153 MB resident — hence 1,000,000 (a console request of
    about a minute); a larger district replays one vendor model, or a shorter period."""

    model_config = ConfigDict(extra="forbid")

    max_days: float = Field(default=31.0, gt=0, le=366)
    max_readings: int = Field(default=1_000_000, ge=1)
