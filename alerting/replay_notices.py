"""The 四单 ladder of a replay's alerts, in memory (回放, alerting/replay.py): the notices
(工作提醒单 → 风险警示单 → 问题督办单 → 问责建议单) each alert's severity would have issued up to the
period's end, by the same pure decision as the escalation pass (:func:`alerting.escalation.decide`)
and the same texts and addressees (:func:`alerting.compose.notice_message`, never a business).

A ladder's stop conditions (acknowledged, handling, closed; a 误报/测试 verdict ends it) read what
people really did when the replayed alert is a stored one (:class:`alerting.replay_data.Handling`:
its acknowledgement, phases and verdicts in time); an alarm the period never had — one a
proposed threshold adds — had nobody acting on it, so its ladder climbs until the period ends.
One ladder per group, as live: an alert that joins a group with an alarm still open follows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from alerting.compose import ComposeContext, notice_addressees, notice_message
from alerting.escalation import EscalationState, decide, first_due_at
from alerting.matrix import resolve
from alerting.quiet import hold
from alerting.replay_data import Handling
from alerting.replay_notify import Planned
from alerting.store import AlertRecord
from hazmon.contracts import AlertPhase, Verdict

__all__ = ["escalate", "leads"]


def _state(a: AlertRecord, h: Handling | None, step: int, at: datetime) -> EscalationState:
    """The ladder's view of ``a`` at ``at``: nobody acted, or what the stored alert's people did."""
    phase, verdict, acked = AlertPhase.ALARM, None, False
    if h is not None:
        for t, p in h.phases:
            if t <= at:
                phase = AlertPhase(p)
        for t, v in h.verdicts:
            if t <= at:
                verdict = Verdict(v)
        acked = h.acked_at is not None and h.acked_at <= at
    return EscalationState(a.starts_at, phase, acked, verdict, step, a.timer_factor, clock_from=a.clock_from)


def leads(alerts: Mapping[str, AlertRecord]) -> list[AlertRecord]:
    """The alerts that climb a ladder: each group's first, and any that starts when no alarm of
    its group is open any more (twenty detectors of one fire are one incident, escalated once)."""
    out: list[AlertRecord] = []
    seen: dict[str, list[AlertRecord]] = {}
    for a in sorted(alerts.values(), key=lambda x: (x.starts_at, x.id)):
        group = seen.setdefault(a.group_key, [])
        if not any(b.ends_at is None or b.ends_at > a.starts_at for b in group):
            out.append(a)
        group.append(a)
    return out


def escalate(
    planned: Planned, handling: Mapping[str, Handling], ctx: ComposeContext, until: datetime
) -> None:
    """Add to ``planned`` the notices its alerts' ladders issue by ``until`` (rows, SMS and the
    count per level)."""
    for a in leads(planned.alerts):
        policy = ctx.config.policy(a.severity)
        quiet = ctx.config.route.match(a.labels)[0].quiet_hours
        step, due = 0, first_due_at(policy, a.clock_from, a.timer_factor)
        for _ in range(len(policy.steps) + 1):  # each round passes at least one step
            if due is None or due > until:
                break
            d = decide(_state(a, handling.get(a.id), step, due), policy, due)
            for _i, st, deadline in d.issue:
                resp = resolve(ctx.registry, site_id=a.site_id, domain=a.domain)
                recipients, _business = notice_addressees(
                    resp.for_roles(st.roles, duty_operator=ctx.config.duty_operator)
                )
                msg = notice_message(ctx, a, st, deadline, recipients, 1, 0, due)
                planned.notices[st.level.value] += 1
                planned.count(hold(msg.items, quiet, a.severity, due), a.id)
            step, due = d.escalation_step, d.next_at
            if d.finished:
                break
