"""Quiet hours (夜间免扰) per route and the morning digest (晨间汇总): pure decisions.

A route's ``quiet_hours`` (routes.yaml, inherited; ``false`` turns it off below a parent that
has it) name a window in Beijing time, e.g. 22:00–07:00, and the severities that still go out in
it (default red and orange). Inside the window a message of any other severity is not sent by
SMS or voice call: its rows are queued ``held`` until the window ends (a group robot and the
console still get it at once: nobody is woken by them). When the window ends, each recipient
gets **one** message listing what was held for them (:func:`digest`): an SMS to a mobile, a
call to a landline duty room. An alarm held and recovered in the night is listed as 已恢复.

* :func:`window_end` — whether ``now`` is in the window, and when it ends;
* :func:`hold` — the rows of a message, those to hold marked ``held`` until the window's end;
* :func:`digest` — the registered template and variables of one recipient's digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from alerting.templates.words import CST

if TYPE_CHECKING:
    from alerting.outbox import NewNotification

__all__ = ["QuietHours", "HeldItem", "HELD", "HELD_CHANNELS", "DIGEST_SLOTS", "window_end", "hold", "digest"]

#: the outbox status of a row waiting for the end of quiet hours
HELD = "held"
#: the channels quiet hours hold (a robot message or a console entry wakes nobody)
HELD_CHANNELS = frozenset({"sms", "voice"})
#: items a digest names one by one (the providers cap each variable; the rest are counted)
DIGEST_SLOTS = 3


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in Beijing time (``start`` > ``end``: it spans midnight) and the
    severities sent in it all the same."""

    start: time
    end: time
    keep: frozenset[str] = frozenset({"red", "orange"})

    @property
    def span(self) -> str:
        """``22:00至07:00``: as the digest names it."""
        return f"{self.start:%H:%M}至{self.end:%H:%M}"


def window_end(q: QuietHours, now: datetime) -> datetime | None:
    """The end of the window ``now`` is in (aware, the zone of ``now``), or None outside it."""
    local = now.astimezone(CST)
    t = local.timetz().replace(tzinfo=None)
    if q.start == q.end:
        return None  # an empty window
    inside = (q.start <= t < q.end) if q.start < q.end else (t >= q.start or t < q.end)
    if not inside:
        return None
    end = local.replace(hour=q.end.hour, minute=q.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(now.tzinfo)


def hold(items: Sequence[NewNotification], q: QuietHours | None, severity: str, now: datetime
         ) -> list[NewNotification]:
    """``items`` with their SMS and voice rows ``held`` until the window's end when ``now`` is in
    quiet hours and ``severity`` is not one they keep; rows already 未送达 stay as they are."""
    if q is None or severity in q.keep:
        return list(items)
    end = window_end(q, now)
    if end is None:
        return list(items)
    return [replace(it, status=HELD, due_at=end, params={**it.params, "_quiet": q.span},
                    error=f"夜间免扰（{q.span}），{end.astimezone(CST):%H:%M}并入晨间汇总发送")
            if it.request.channel in HELD_CHANNELS and it.status == "pending" else it for it in items]


@dataclass(frozen=True, slots=True)
class HeldItem:
    """One alarm a digest lists: the unit, what happened, its level in words, whether it has
    recovered by the digest's time."""

    unit: str
    what: str
    level: str
    recovered: bool


def digest(items: Sequence[HeldItem], span: str) -> tuple[str, dict[str, str]]:
    """The registered template (``digest.1`` … ``digest.3``, ``digest.more``) and its
    variables for one recipient's held alarms (one item per alarm, oldest first)."""
    if not items:
        raise ValueError("a digest lists at least one alarm")
    shown = items[:DIGEST_SLOTS]
    params = {"span": span, "n": str(len(items))}
    for i, it in enumerate(shown, 1):
        params[f"u{i}"] = it.unit
        params[f"w{i}"] = it.what
        params[f"s{i}"] = f"{it.level}，{'已恢复' if it.recovered else '未解除'}"
    name = f"digest.{len(shown)}" if len(items) <= DIGEST_SLOTS else "digest.more"
    return name, params
