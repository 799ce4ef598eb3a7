"""Who would have been notified: the alerting stage's decisions run in memory over a replay's
events (回放, alerting/replay.py) — nothing is stored and the outbox is never written.

The same pure steps as the service: :func:`alerting.intake.place` (labels, first route, group,
责任矩阵), the aggregation groups on their route's timers (``group_wait``, ``group_interval``,
``repeat_interval``), and per flush :func:`alerting.flush.decide` (mute by the inhibition rules →
:func:`alerting.group.plan_flush` → :func:`alerting.compose.group_message` → quiet-hours hold).
Each event is taken at its detection time (the stream clock), each group flushed at its due
times up to the period's end.

Not simulated: acknowledgements (nobody acknowledges in a replay, so reminders run on until the
alarm resolves or the period ends) and silences (live state); the 四单 ladder is
alerting/replay_notices.py's.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from alerting.compose import ComposeContext
from alerting.config import AlertingConfig
from alerting.flush import decide
from alerting.inhibit import Candidate, site_local
from alerting.intake import place
from alerting.outbox import NewNotification
from alerting.quiet import HELD
from alerting.reach import UNDELIVERABLE
from alerting.route import Route
from alerting.store import AlertRecord
from hazmon.contracts import AlertPhase, Event, EventState
from hazmon.registry import Registry

__all__ = ["Planned", "plan_notifications"]


@dataclass(slots=True)
class Planned:
    """The notifications a replay plans: outbox rows by (role, channel), SMS by role, the rows no
    channel reaches (未送达) by role, and the messages (group flushes that notified)."""

    rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    sms: Counter[str] = field(default_factory=Counter)
    undeliverable: Counter[str] = field(default_factory=Counter)
    #: SMS and calls held for the morning digest in a route's quiet hours (夜间免扰), by role: the
    #: digest that replaces them is not simulated, so they are not in ``sms``
    held: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    #: alert id → the roles its group's messages reached while it was the lead
    reached: dict[str, set[str]] = field(default_factory=dict)
    #: 四单 issued, by level (alerting/replay_notices.py)
    notices: Counter[str] = field(default_factory=Counter)
    #: the replay's alerts as alerting would have held them at the end (for the 四单 ladder)
    alerts: dict[str, AlertRecord] = field(default_factory=dict)

    def count(self, items: Sequence[NewNotification], lead_id: str) -> None:
        """One message's outbox rows, by role and channel (未送达 and 夜间暂缓 apart)."""
        reached = self.reached.setdefault(lead_id, set())
        for it in items:
            role, ch = it.request.recipient.role.value, it.request.channel
            if it.status == UNDELIVERABLE:
                self.undeliverable[role] += 1
                continue
            if it.status == HELD:
                self.held[role] += 1
                continue
            self.rows[(role, ch)] += 1
            reached.add(role)
            if ch == "sms":
                self.sms[role] += 1

    @property
    def sms_total(self) -> int:
        return sum(self.sms.values())


@dataclass(slots=True)
class _Group:
    key: str
    route: Route
    created_at: datetime
    next_flush_at: datetime
    members: list[str] = field(default_factory=list)
    last_flush_at: datetime | None = None
    last_notify_at: datetime | None = None
    notified_ids: frozenset[str] = frozenset()
    resolved_ids: frozenset[str] = frozenset()
    flushes: int = 0

    def row(self) -> dict[str, Any]:
        """The group as its ``alert_groups`` row reads (what :func:`alerting.flush.decide` takes)."""
        return {
            "key": self.key,
            "route_id": self.route.id,
            "created_at": self.created_at,
            "next_flush_at": self.next_flush_at,
            "last_flush_at": self.last_flush_at,
            "last_notify_at": self.last_notify_at,
            "notified_ids": sorted(self.notified_ids),
            "resolved_ids": sorted(self.resolved_ids),
            "flushes": self.flushes,
        }


def _record(ev: Event, pl: Any, at: datetime) -> AlertRecord:
    return AlertRecord(
        id=ev.id,
        kind=ev.kind,
        domain=ev.domain,
        severity=ev.severity.value,
        state="firing",
        device_id=ev.device_id,
        site_id=ev.site_id,
        township_id=pl.township_id,
        department_ids=tuple(pl.department_ids),
        component=ev.component,
        zone=ev.zone,
        summary=ev.summary,
        labels=dict(pl.labels),
        starts_at=ev.starts_at,
        ends_at=None,
        detected_at=ev.detected_at,
        received_at=ev.received_at or at,
        route_id=pl.route_id,
        group_key=pl.group_key,
        suppressed_by="",
        notified_at=None,
        phase=AlertPhase.ALARM,
        verdict=None,
        ack_code="0000",
        acked_at=None,
        acked_by=None,
        closed_at=None,
        closed_by=None,
        close_reason=None,
        timer_factor=pl.timer_factor,
        escalation_step=0,
        next_escalation_at=pl.next_escalation_at,
        version=1,
        updated_at=at,
        reported_at=pl.reported_at,
        time_flag=pl.time_flag,
    )


class _Sim:
    def __init__(self, registry: Registry, config: AlertingConfig, ctx: ComposeContext) -> None:
        self.registry, self.config, self.ctx = registry, config, ctx
        self.routes = {r.id: r for r in config.route.walk()}
        self.local = site_local(config.inhibit_rules)
        self.alerts: dict[str, AlertRecord] = {}
        self.groups: dict[str, _Group] = {}
        self.due: list[tuple[datetime, int, str]] = []
        self.seq = 0
        self.out = Planned()

    def _schedule(self, g: _Group) -> None:
        self.seq += 1
        heapq.heappush(self.due, (g.next_flush_at, self.seq, g.key))

    def run_due(self, now: datetime) -> None:
        while self.due and self.due[0][0] <= now:
            at, _s, key = heapq.heappop(self.due)
            g = self.groups.get(key)
            if g is not None and g.next_flush_at == at:
                self.flush(g, at)

    def _join(self, key: str, route: Route, alert_id: str, at: datetime) -> None:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group(key, route, at, at + route.group_wait)
            self._schedule(g)
        if alert_id not in g.members:
            g.members.append(alert_id)

    def event(self, ev: Event) -> None:
        at = ev.detected_at
        if ev.state == EventState.FIRING:
            if ev.id in self.alerts:
                return
            pl, route, _resp = place(ev, self.registry, self.config, self.config.key_periods, now=at)
            self.alerts[ev.id] = _record(ev, pl, at)
            self._join(pl.group_key, route, ev.id, at)
            for r2, k2 in self.config.later_groups(pl.labels):
                self._join(k2, r2, ev.id, at)
            return
        a = self.alerts.get(ev.id)
        if a is None or a.state != "firing":
            return
        self.alerts[ev.id] = replace(a, state="resolved", ends_at=ev.ends_at or at, updated_at=at)
        for g in self.groups.values():  # 恢复 is told within group_wait (alerting/intake.py groups_of)
            if ev.id in g.members and at + g.route.group_wait < g.next_flush_at:
                g.next_flush_at = at + g.route.group_wait
                self._schedule(g)

    def flush(self, g: _Group, now: datetime) -> None:
        alerts = sorted((self.alerts[i] for i in g.members), key=lambda a: (a.starts_at, a.id))
        sites = {a.site_id for a in alerts}
        candidates = [
            Candidate(a.id, a.labels)
            for a in self.alerts.values()
            if a.state == "firing" and (not self.local or a.site_id in sites)
        ]
        o = decide(self.ctx, g.row(), alerts, candidates, (), now, self.routes)  # type: ignore[arg-type]
        for a, sup in o.changes:
            self.alerts[a.id] = replace(self.alerts[a.id], suppressed_by=sup)
        if o.message is not None:
            self.out.messages += 1
            self.out.count(o.message.items, o.message.lead.id)
            for i in o.plan.new_firing:
                self.alerts[i] = replace(self.alerts[i], notified_at=now)
        p = o.plan
        g.notified_ids, g.resolved_ids = p.notified_ids, p.resolved_ids
        g.last_flush_at, g.flushes = now, g.flushes + 1
        if p.notify:
            g.last_notify_at = now
        if p.next_flush_at is None:
            del self.groups[g.key]
            return
        g.next_flush_at = p.next_flush_at
        self._schedule(g)


def plan_notifications(
    events: Sequence[Event],
    registry: Registry,
    config: AlertingConfig,
    *,
    end: datetime,
    ctx: ComposeContext | None = None,
) -> Planned:
    """The notifications the events of a replay would have made under ``config`` (the routes),
    group flushes up to ``end`` included."""
    sim = _Sim(registry, config, ctx or ComposeContext(registry, config))
    for ev in sorted(events, key=lambda e: (e.detected_at, e.state != EventState.FIRING)):
        sim.run_due(ev.detected_at)
        sim.event(ev)
    sim.run_due(end)
    sim.out.alerts = sim.alerts
    return sim.out
