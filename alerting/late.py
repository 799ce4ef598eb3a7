"""Late data is not a fresh emergency ladder: when an alarm started and when hazmon learned of it.

A gateway that was offline delivers its backlog at once: alarms hours or days old. Such an
alarm keeps its true start (``starts_at``, the device's time: the alert page and the texts
say when it happened), but its 四单 ladder (:mod:`alerting.escalation`) counts from when
hazmon learned of it (``reported_at``): a 问责建议单 "未处置 since" a date nobody at the centre
could have known about would blame a unit for hazmon's own blind spot.

:func:`timing` (pure) decides, per event:

* ``""`` — on time (reported within ``late_after`` of its start): the ladder counts from the
  start, as it always did;
* ``"late"`` — reported more than ``late_after`` after its start: the ladder counts from
  ``reported_at``; the texts say "设备延迟上报，实际发生于…";
* ``"clock_future"`` — the device's time is ahead of the report beyond the clock skew (the
  detectors refuse to start an episode from such a reading; an event from elsewhere may still
  carry one): the start cannot be trusted, and a ladder counted from a future time would
  never climb. It counts from ``reported_at``; the texts say "设备时间异常";
* ``"clock_old"`` — before the device was installed (an RTC reset to 1970/2000) or older than
  ``max_age``: the same (a device clock that lies is no reason to skip a real alarm).

``reported_at`` is the event's ``received_at`` (ingest's clock on the record that opened the
episode), else its ``detected_at``, never later than alerting's own receipt (``now``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple

from alerting.templates import CST, format_when

__all__ = ["TimeFlag", "LatePolicy", "Timing", "timing", "late_phrase"]

TimeFlag = Literal["", "late", "clock_future", "clock_old"]


@dataclass(frozen=True, slots=True)
class LatePolicy:
    """``alerting.late_after_s``, ``alerting.late_max_age_s`` and the clock skew tolerance."""

    late_after: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)
    max_skew: timedelta = timedelta(minutes=5)


class Timing(NamedTuple):
    reported_at: datetime  # when hazmon learned of the alarm
    clock_from: datetime  # where its escalation ladder counts from
    flag: TimeFlag


def timing(starts_at: datetime, reported_at: datetime | None, now: datetime, policy: LatePolicy,
           installed_on: date | None = None) -> Timing:
    """When hazmon learned of an alarm that started at ``starts_at`` and what its ladder counts from."""
    reported = min(reported_at or now, now)
    flag: TimeFlag = ""
    if starts_at > reported + policy.max_skew:
        flag = "clock_future"
    elif reported - starts_at > policy.max_age or (
            installed_on is not None and starts_at.astimezone(CST).date() < installed_on):
        flag = "clock_old"
    elif reported - starts_at > policy.late_after:
        flag = "late"
    return Timing(reported, starts_at if not flag else reported, flag)


def late_phrase(flag: str, starts_at: datetime) -> str:
    """What a text adds after the alarm's time (the ``late`` template parameter): "" on time."""
    if flag == "late":
        return f"，设备延迟上报，实际发生于{format_when(starts_at)}"
    if flag in ("clock_future", "clock_old"):
        return f"，设备时间异常（报称{starts_at.astimezone(CST).year}年{format_when(starts_at)}），按接报时间计"
    return ""
