"""Escalation as the four-notice ladder (四单工作法) and the key-period calendar (重点时段).

Per severity, a policy lists steps: after ``after`` (from the alarm's start) without the alarm
reaching ``stop_when`` (``acknowledged``, ``handling`` or ``closed``), issue the step's notice —
工作提醒单 → 风险警示单 → 问题督办单 → 问责建议单 — to the step's roles (business, grid member,
township, department, leader …) with a deadline. A step whose stop condition is already met is
skipped; later steps with a stronger condition may still fire (acknowledged but never handled
still climbs to 督办).

Key periods (春节, 两会, 汛期, 高温, 冻雨, 复工复产 …) multiply the timers by their
``timer_factor`` (< 1 tightens) for alarms that start inside them; overlapping periods take
the tightest factor. The factor is fixed when the alarm starts, so its ladder never moves
under it.

All functions here are pure and take ``now``; the service stores ``escalation_step`` and
``next_escalation_at`` on the alert, so a restart fires every step that fell due meanwhile
(its I/O: :mod:`alerting.store.escalations`).

One ladder per group: twenty detectors of one fire are one incident, escalated once — by the
group's first open alert; the others follow its timer (:func:`follow_lead`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from hazmon.contracts import AlertPhase, NoticeLevel, RecipientRole, Severity, Verdict

__all__ = [
    "StopWhen",
    "EscalationStep",
    "EscalationPolicy",
    "KeyPeriod",
    "EscalationState",
    "Decision",
    "timer_factor",
    "stop_reached",
    "first_due_at",
    "decide",
    "follow_lead",
    "unmet",
    "notice_reason",
]

StopWhen = Literal["acknowledged", "handling", "closed"]

_HANDLED = {AlertPhase.HANDLING, AlertPhase.FEEDBACK, AlertPhase.CLOSED}
_UNMET: dict[str, str] = {"acknowledged": "未确认", "handling": "未处置", "closed": "未办结"}


@dataclass(frozen=True, slots=True)
class EscalationStep:
    level: NoticeLevel
    after: timedelta  # from the alarm's start or late report (before the key-period factor)
    roles: tuple[RecipientRole, ...]
    stop_when: StopWhen = "acknowledged"
    deadline: timedelta | None = None  # answer within; default: until the next step


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """The ladder for one severity; steps in ascending ``after`` and level."""

    severity: Severity
    steps: tuple[EscalationStep, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyPeriod:
    """重点时段: a window of heightened watch, optionally limited to domains/townships."""

    id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    timer_factor: float = 0.5
    kind: str = "other"
    domains: tuple[str, ...] = ()
    township_ids: tuple[str, ...] = ()

    def applies(self, at: datetime, domain: str, township_id: str) -> bool:
        return (
            self.starts_at <= at < self.ends_at
            and (not self.domains or domain in self.domains)
            and (not self.township_ids or township_id in self.township_ids)
        )


def timer_factor(periods: Iterable[KeyPeriod], at: datetime, domain: str, township_id: str) -> float:
    """The tightest factor among the key periods in force at ``at`` (1.0 outside them)."""
    return min((p.timer_factor for p in periods if p.applies(at, domain, township_id)), default=1.0)


@dataclass(frozen=True, slots=True)
class EscalationState:
    """What the ladder needs to know of an alert."""

    starts_at: datetime
    phase: AlertPhase
    acknowledged: bool
    verdict: Verdict | None
    escalation_step: int  # steps already passed (issued or skipped), 0..len(steps)
    timer_factor: float = 1.0
    #: where the ladder counts from when not ``starts_at``: a late or mis-clocked alarm's
    #: ``reported_at`` (when hazmon learned of it, :mod:`alerting.late`)
    clock_from: datetime | None = None


def stop_reached(state: EscalationState, stop_when: StopWhen) -> bool:
    if state.phase is AlertPhase.CLOSED:
        return True
    if stop_when == "acknowledged":
        return state.acknowledged or state.phase is not AlertPhase.ALARM
    if stop_when == "handling":
        return state.phase in _HANDLED
    return False


def _due(state: EscalationState, step: EscalationStep) -> datetime:
    return (state.clock_from or state.starts_at) + step.after * state.timer_factor


def first_due_at(policy: EscalationPolicy, starts_at: datetime, factor: float) -> datetime | None:
    return starts_at + policy.steps[0].after * factor if policy.steps else None


@dataclass(frozen=True, slots=True)
class Decision:
    """Notices to issue now (step index, step, deadline) and the state to store."""

    issue: tuple[tuple[int, EscalationStep, datetime], ...] = ()
    skipped: tuple[int, ...] = ()
    escalation_step: int = 0
    next_at: datetime | None = None
    finished: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def decide(state: EscalationState, policy: EscalationPolicy, now: datetime) -> Decision:
    """Walk the ladder from ``state.escalation_step``: every step due by ``now`` is issued (or
    skipped when its stop condition is met); returns where the next timer stands.

    An alarm 研判'd as false or test never escalates; one that is closed stops.
    """
    steps: Sequence[EscalationStep] = policy.steps
    if state.phase is AlertPhase.CLOSED or state.verdict in (Verdict.FALSE, Verdict.TEST):
        return Decision(escalation_step=state.escalation_step, next_at=None, finished=True)
    issue: list[tuple[int, EscalationStep, datetime]] = []
    skipped: list[int] = []
    i = state.escalation_step
    while i < len(steps) and _due(state, steps[i]) <= now:
        step = steps[i]
        if stop_reached(state, step.stop_when):
            skipped.append(i)
        else:
            if step.deadline is not None:
                deadline = now + step.deadline * state.timer_factor
            elif i + 1 < len(steps):
                deadline = max(_due(state, steps[i + 1]), now + timedelta(minutes=1))
            else:
                deadline = now + step.after * state.timer_factor
            issue.append((i, step, deadline))
        i += 1
    # the next timer: the first remaining step whose stop condition is not yet met
    nxt = None
    for j in range(i, len(steps)):
        if not stop_reached(state, steps[j].stop_when):
            nxt = _due(state, steps[j])
            break
    return Decision(tuple(issue), tuple(skipped), i, nxt, finished=nxt is None)


def follow_lead(lead_next_at: datetime | None, now: datetime) -> datetime | None:
    """The timer of an alert that follows its group's lead: the lead's, never sooner than a
    minute from ``now`` (None when the lead's ladder has finished)."""
    return max(lead_next_at, now + timedelta(minutes=1)) if lead_next_at else None


def unmet(stop_when: StopWhen) -> str:
    """What a notice says was not done: 未确认, 未处置 or 未办结."""
    return _UNMET[stop_when]


def notice_reason(step: EscalationStep, factor: float, since: str) -> str:
    """A notice's stored reason: since ``since`` (the alarm's start, as written in texts) the
    step's stop condition is unmet, after the step's delay times the key-period factor."""
    return f"{since}起{unmet(step.stop_when)}（{step.after * factor}）"
