"""Aggregation groups: one message for a burst of related alarms.

As in Alertmanager's dispatcher, an alert joins the group of its route and ``group_by``
values. A new group waits ``group_wait`` to collect the burst (twenty smoke detectors on one
fire panel → one SMS "…等20处火灾报警"), then flushes; later flushes come every
``group_interval``. A flush notifies when there are firing alerts nobody was told about yet,
when ``repeat_interval`` has passed since the last message while alerts still fire, or when
told-about alerts resolved and the receiver wants to hear that. Silenced/inhibited alerts are
muted: they count for nothing in the message but keep the group alive, so when the silence
ends the next flush tells.

The group's state — ``notified_ids`` is the notification log (nflog) — lives in
``alert_groups``, so a restart neither repeats nor forgets. :func:`plan_flush` is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["GroupState", "GroupMember", "FlushPlan", "plan_flush"]


@dataclass(frozen=True, slots=True)
class GroupState:
    key: str
    route_id: str
    created_at: datetime
    next_flush_at: datetime
    last_flush_at: datetime | None
    last_notify_at: datetime | None
    notified_ids: frozenset[str]
    resolved_ids: frozenset[str]
    flushes: int = 0


@dataclass(frozen=True, slots=True)
class GroupMember:
    id: str
    firing: bool
    muted: bool
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class FlushPlan:
    notify: bool
    reason: str  # "new" | "repeat" | "resolved" | ""
    new_firing: tuple[str, ...]  # firing, unmuted, not told yet (oldest first)
    firing: tuple[str, ...]  # every firing unmuted alert (oldest first)
    resolved: tuple[str, ...]  # told about, now resolved, not yet told that
    notified_ids: frozenset[str]
    resolved_ids: frozenset[str]
    next_flush_at: datetime | None  # None: the group is finished and can be dropped


def plan_flush(
    state: GroupState,
    members: Sequence[GroupMember],
    *,
    now: datetime,
    group_interval: timedelta,
    repeat_interval: timedelta,
    send_resolved: bool,
) -> FlushPlan:
    ordered = sorted(members, key=lambda m: (m.starts_at, m.id))
    firing = tuple(m.id for m in ordered if m.firing and not m.muted)
    new = tuple(i for i in firing if i not in state.notified_ids)
    resolved = tuple(m.id for m in ordered if not m.firing and m.id in state.notified_ids
                     and m.id not in state.resolved_ids)
    repeat = bool(firing) and not new and state.last_notify_at is not None and \
        now - state.last_notify_at >= repeat_interval
    reason = "new" if new else "repeat" if repeat else "resolved" if resolved and send_resolved else ""
    alive = any(m.firing for m in members)
    return FlushPlan(
        notify=bool(reason),
        reason=reason,
        new_firing=new,
        firing=firing,
        resolved=resolved,
        notified_ids=state.notified_ids | frozenset(new),
        resolved_ids=state.resolved_ids | frozenset(resolved),
        next_flush_at=now + group_interval if alive else None,
    )
