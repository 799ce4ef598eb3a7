"""The flush of due aggregation groups: one batch path of named stages, as Alertmanager's
notify pipeline reads.

    lock due groups → mute → plan → compose (→ hold) → enqueue → audit

* **mute** (:func:`mute`, pure): what silences or inhibits each firing member now
  (``silence:<id>`` / ``inhibit:<rule>:<alert>``; a resolved alert keeps what muted it);
* **plan** (:func:`plan`, pure): :func:`alerting.group.plan_flush` with the route's timers;
* **compose** (:func:`alerting.compose.group_message`, pure): the message and its outbox rows;
* **hold** (:func:`alerting.quiet.hold`, pure): in the route's quiet hours, the SMS and calls of
  a severity they do not keep wait, ``held``, for the morning digest (alerting/digest.py);
* **enqueue** (:func:`alerting.outbox.enqueue`): the rows, idempotently (deterministic ids);
* **audit**: the changed mutes, the ``notify`` transitions, ``notified_at``, the groups'
  next flush and nflog — all through :mod:`alerting.store`.

:func:`flush` does up to ``limit`` groups in one transaction, a fixed handful of round trips
whatever their number (under a storm, per-group transactions were most of the time to the
first SMS). :func:`flush_due` drains everything due in such batches; when a batch fails, the
remaining due groups are flushed by the same call with ``limit=1``, group by group, so one bad
group cannot hold up the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from alerting import metrics, store
from alerting.ack_stops import RecipientAck
from alerting.acks import recipient_acks
from alerting.compose import ComposeContext, ComposedMessage, group_message, notify_detail
from alerting.config import AlertingConfig, Receiver
from alerting.group import FlushPlan, GroupMember, plan_flush
from alerting.inhibit import Candidate, InhibitRule, inhibitor, site_local
from alerting.outbox import enqueue
from alerting.quiet import hold
from alerting.route import Route
from alerting.silence import Silence, silencing
from alerting.store import AlertRecord, GroupAdvance
from hazmon.logs import kv

__all__ = ["FlushReport", "GroupOutcome", "mute", "plan", "decide", "flush", "flush_due", "BATCH"]

log = logging.getLogger(__name__)

#: groups flushed in one transaction
BATCH = 25


@dataclass(slots=True)
class FlushReport:
    """What a drain of the due groups did: groups flushed, outbox rows queued."""

    flushed: int = 0
    queued: int = 0


def mute(alert: AlertRecord, silences: Sequence[Silence], candidates: Sequence[Candidate],
         rules: Sequence[InhibitRule], now: datetime) -> str:
    """What mutes ``alert`` at ``now``: ``silence:<id>``, ``inhibit:<rule>:<alert>`` or ``""``.
    A resolved alert keeps what muted it (KPIs exclude it)."""
    if alert.state != "firing":
        return alert.suppressed_by
    s = silencing(alert.labels, silences, now)
    if s is not None:
        return f"silence:{s.id}"
    hit = inhibitor(alert.id, alert.labels, candidates, rules)
    if hit is not None:
        return f"inhibit:{hit[0]}:{hit[1]}"
    return ""


def plan(config: AlertingConfig, g: asyncpg.Record, members: Sequence[GroupMember], now: datetime,
         routes: Mapping[str, Route] | None = None) -> tuple[FlushPlan, Receiver]:
    """What a flush of the ``alert_groups`` row ``g`` does, and its route's receiver
    (``routes``: the tree's routes by id, when the caller has them at hand)."""
    if routes is None:
        routes = {r.id: r for r in config.route.walk()}
    route = routes.get(g["route_id"], config.route)
    receiver = config.receivers[route.receiver]
    return plan_flush(store.group_state(g), members, now=now, group_interval=route.group_interval,
                      repeat_interval=route.repeat_interval, send_resolved=receiver.send_resolved), receiver


async def _members(conn: asyncpg.Connection, config: AlertingConfig, groups: Sequence[asyncpg.Record]
                   ) -> dict[str, list[AlertRecord]]:
    """Each group's alerts, oldest first: those whose own group it is, and — after a
    ``continue: true`` route — those there as a later route, looked up by the group's labels
    and confirmed by routing them again (no query without ``continue: true``)."""
    members_of = await store.alerts_of_groups(conn, [g["key"] for g in groups])
    later = config.later_route_ids() if config.has_continue else frozenset()
    for g in groups:
        if g["route_id"] not in later:
            continue
        labels = json.loads(g["labels"]) if isinstance(g["labels"], str) else g["labels"]
        extra = [a for a in await store.alerts_labelled(conn, not_group=g["key"], labels=labels or {},
                                                        or_ids=g["notified_ids"])
                 if any(k == g["key"] for _r, k in config.later_groups(a.labels))]
        if extra:
            members_of[g["key"]] = sorted(members_of[g["key"]] + extra, key=lambda a: (a.starts_at, a.id))
    return members_of


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    """What the flush of one group decided: the changed mutes, its plan, its message (if it
    notifies)."""

    key: str
    changes: tuple[tuple[AlertRecord, str], ...]
    plan: FlushPlan
    message: ComposedMessage | None


def decide(ctx: ComposeContext, g: asyncpg.Record, alerts: Sequence[AlertRecord],
           candidates: Sequence[Candidate], silences: Sequence[Silence], now: datetime,
           routes: Mapping[str, Route] | None = None,
           acks: Mapping[str, Sequence[RecipientAck]] | None = None) -> GroupOutcome:
    """mute → plan → compose for the group row ``g`` and its members (pure); ``acks``: who
    acknowledged which member (a reminder leaves them out, per the route's ``ack_stops``)."""
    changes = []
    members = []
    for a in alerts:  # mute
        sup = mute(a, silences, candidates, ctx.config.inhibit_rules, now)
        if sup != a.suppressed_by:
            changes.append((a, sup))
        members.append(GroupMember(a.id, a.state == "firing", bool(sup), a.starts_at))
    p, receiver = plan(ctx.config, g, members, now, routes)  # plan
    route = (routes or {r.id: r for r in ctx.config.route.walk()}).get(g["route_id"], ctx.config.route)
    message = group_message(ctx, p, alerts, receiver, g["key"], now, acks,
                            route.ack_stops) if p.notify else None  # compose
    if message is not None and route.quiet_hours is not None:  # 夜间免扰: held for the morning digest
        message = replace(message, items=tuple(hold(message.items, route.quiet_hours, message.lead.severity,
                                                     now)))
    return GroupOutcome(g["key"], tuple(changes), p, message)


async def _audit(conn: asyncpg.Connection, now: datetime, outcomes: Sequence[GroupOutcome],
                 inserted: Collection[str]) -> None:
    """Store what the flush decided: mutes (first: on a timeline, suppress comes before notify),
    a ``notify`` transition per message that queued rows, ``notified_at``, the groups' next
    flush and nflog (or their end)."""
    changes = [c for o in outcomes for c in o.changes]
    await store.set_suppressions(conn, now, changes)
    for _a, sup in changes:
        if sup:
            metrics.SUPPRESSED.labels(sup.split(":", 1)[0]).inc()
    notify_rows = []
    for o in outcomes:
        if o.message is None:
            continue
        mine = [it.request.id for it in o.message.items if it.request.id in inserted]
        if mine:
            notify_rows.append((o.message.lead, o.message.template,
                                notify_detail(o.message.count, mine, o.message.recipients,
                                              o.message.ack_stopped)))
    await store.insert_notify_transitions(conn, now, notify_rows)
    await store.mark_notified(conn, [i for o in outcomes if o.plan.notify for i in o.plan.new_firing], now)
    await store.drop_groups(conn, [o.key for o in outcomes if o.plan.next_flush_at is None])
    await store.advance_groups(conn, now, [
        GroupAdvance(o.key, o.plan.next_flush_at, o.plan.notify, sorted(o.plan.notified_ids),
                     sorted(o.plan.resolved_ids))
        for o in outcomes if o.plan.next_flush_at is not None])


async def flush(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, silences: Sequence[Silence], *,
                done: Collection[str] = (), limit: int = BATCH, only: Sequence[str] | None = None
                ) -> tuple[list[str], int]:
    """Flush the due groups (up to ``limit``, none of ``done``, among ``only`` when given) in
    one transaction. Returns (keys flushed, outbox rows queued)."""
    config = ctx.config
    async with pool.acquire() as conn, conn.transaction():
        groups = await store.lock_due_groups(conn, now, limit=limit, done=done, only=only)
        if not groups:
            return [], 0
        members_of = await _members(conn, config, groups)
        routes = {r.id: r for r in config.route.walk()}
        acks = await recipient_acks(conn, [a.id for alerts in members_of.values() for a in alerts
                                           if a.state == "firing"])  # a reminder leaves out who acknowledged
        local = site_local(config.inhibit_rules)  # else a rule's equal spans sites (township_id)
        sites = sorted({a.site_id for alerts in members_of.values() for a in alerts})
        firing_by_site = {site: [Candidate(i, labels) for i, labels in rows] for site, rows in
                          (await store.firing_by_site(conn, sites, every_site=not local)).items()}

        outcomes = []
        for g in groups:  # mute → plan → compose, pure, group by group
            alerts = members_of[g["key"]]
            candidates = [c for site in ({a.site_id for a in alerts} if local else firing_by_site)
                          for c in firing_by_site.get(site, [])]
            outcomes.append(decide(ctx, g, alerts, candidates, silences, now, routes, acks))
        inserted = set(await enqueue(conn, [it for o in outcomes if o.message for it in o.message.items],
                                     now=now))  # enqueue
        await _audit(conn, now, outcomes, inserted)  # audit
        return [g["key"] for g in groups], len(inserted)


async def flush_due(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, silences: Sequence[Silence], *,
                    concurrency: int = 4, on_queued: Callable[[], object] = lambda: None) -> FlushReport:
    """Flush every group due at ``now``: batch after batch (:func:`flush`), then — what a failed
    batch left — group by group with ``limit=1``, ``concurrency`` at a time. ``on_queued`` is
    called as soon as a transaction that queued rows committed (it wakes the sender)."""
    rep = FlushReport()
    done: set[str] = set()
    for _ in range(50):  # drain everything due, in bounded batches: one transaction per batch
        try:
            keys, queued = await flush(pool, ctx, now, silences, done=done)
        except Exception:
            metrics.ERRORS.labels("flush").inc()
            log.exception("batch flush failed; flushing the due groups one by one")
            break
        if not keys:
            break
        done.update(keys)
        rep.flushed += len(keys)
        rep.queued += queued
        if queued:
            on_queued()
    sem = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        async with sem:
            try:
                _keys, queued = await flush(pool, ctx, now, silences, only=[key], limit=1)
            except Exception:
                metrics.ERRORS.labels("flush").inc()
                log.exception("group flush failed %s", kv(group=key))
                return
            rep.flushed += 1
            rep.queued += queued
            if queued:
                on_queued()

    for _ in range(50):  # what the batches could not take (or a batch that failed), group by group
        keys = [k for k in await store.due_group_keys(pool, now) if k not in done]
        if not keys:
            break
        done.update(keys)
        await asyncio.gather(*(one(k) for k in keys))
    return rep
