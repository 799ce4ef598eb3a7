"""三色区域预警 by 片 (township), 线 (industry) and 点 (site) (issue 15, seed 000).

The pass counts, per area, what ``data/area_warnings.yaml`` names (alarms with their 研判 verdict,
hazards not yet rectified — overdue, 重大隐患 —, accidents (事故) with their deaths, the 点 warnings
inside a 片 or 线) and gives each area the highest colour whose conditions hold
(:func:`evaluate`, pure). Against the warnings in force it then records what changed
(:func:`apply`): a **new** warning, a colour **raised** or **lowered**, a warning **lifted** when no
colour holds any more — each an ``area_warning_history`` row with the figures and who was told.

A new or raised warning tells the units responsible for the area through the outbox, like every
notification (registered templates, the providers' limits, receipts, 未送达 to the duty operator):
a 片 warning the township's duty room, a 线 warning the regulating departments (三管三必须, the
matrix's rules for that domain), a 点 warning the business and its grid member; and the duty desk's
console entry. A repeat evaluation at the same colour, a lowered or a lifted warning tells nobody.
The row ids are keyed by the history row, so a replayed pass never queues a message twice.

Alerting's timers run the pass every ``every`` of the rules (:func:`timer_pass`); ``hazmon warnings
evaluate`` runs it at once. The SQL is :mod:`alerting.store.area_warning`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from alerting.area_warning_eval import ACTION_ZH, LEVEL_ZH, RANK, SCOPE_ZH, AreaLevel, Facts, evaluate
from alerting.area_warning_notify import messages
from alerting.area_warning_rules import DEFAULT_RULES_FILE, AreaWarningRules, RulesFileError, load_rules
from alerting.compose import ComposeContext
from alerting.outbox import enqueue
from alerting.store import area_warning as store
from alerting.templates.area_warning import KIND
from hazmon.logs import kv

__all__ = [
    "Facts",
    "AreaLevel",
    "PassResult",
    "evaluate",
    "apply",
    "run_pass",
    "timer_pass",
    "enable_timers",
    "read_facts",
    "SCOPE_ZH",
    "LEVEL_ZH",
    "ACTION_ZH",
    "SYSTEM_ACTOR",
]

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:area_warning"


# --- the pass ------------------------------------------------------------------------------------


@dataclass
class PassResult:
    evaluated: bool = True  # False: another instance held the lock, nothing done
    new: int = 0
    raised: int = 0
    lowered: int = 0
    lifted: int = 0
    kept: int = 0
    queued: int = 0
    changes: list[tuple[str, str, str, str]] = field(default_factory=list)  # (action, scope, name, level)


async def read_facts(conn: asyncpg.Connection, rules: AreaWarningRules, now: datetime) -> Facts:
    days = {"alarms": 1, "accidents": 1}
    for m in rules.measures.values():
        if m.source in days:
            days[m.source] = max(days[m.source], m.days or 3660)
    return Facts(
        await store.alarm_facts(conn, now - timedelta(days=days["alarms"])),
        await store.hazard_facts(conn),
        await store.accident_facts(conn, now - timedelta(days=days["accidents"]), now),
    )


async def apply(
    conn: asyncpg.Connection,
    ctx: ComposeContext,
    computed: Iterable[AreaLevel],
    now: datetime,
    actor: str = SYSTEM_ACTOR,
) -> PassResult:
    """Record what changed against the warnings in force and queue the messages of new and
    raised ones; the caller holds the transaction."""
    res = PassResult()
    active = {(r["scope"], r["key"]): r for r in await store.active_warnings(conn, lock=True)}
    for w in computed:
        row = active.pop((w.scope, w.key), None)
        before = row["level"] if row is not None else None
        if row is None:
            wid = await store.insert_warning(
                conn,
                scope=w.scope,
                key=w.key,
                name=w.name,
                township_id=w.township_id,
                domains=w.domains,
                level=w.level,
                reasons=w.reasons,
                measures=w.measures,
                now=now,
            )
            action = "new"
        else:
            wid = int(row["id"])
            was = RANK[str(before)]
            action = "raise" if RANK[w.level] > was else "lower" if RANK[w.level] < was else ""
            await store.update_warning(
                conn,
                wid,
                name=w.name,
                level=w.level,
                level_changed=bool(action),
                reasons=w.reasons,
                measures=w.measures,
                now=now,
            )
        if not action:
            res.kept += 1
            continue
        hid = await store.insert_history(
            conn, wid, action, before, w.level, w.reasons, w.measures, actor, now
        )
        res.changes.append((action, w.scope, w.name, w.level))
        if action == "lower":
            res.lowered += 1
            continue
        res.new += action == "new"
        res.raised += action == "raise"
        items = messages(ctx, w, action, before, hid, wid, now)
        inserted = await enqueue(conn, items, now=now)
        res.queued += len(inserted)
        told = sorted(
            {
                f"{i.request.recipient.name}（{i.request.recipient.unit}）"
                + ("，未送达" if i.status == "undeliverable" else "")
                for i in items
                if i.request.channel != "console" and i.request.template == KIND
            }
        )
        await store.set_history_detail(
            conn, hid, {"told": told, "notifications": [i.request.id for i in items]}
        )
    for row in active.values():  # no colour holds any more: 解除
        await store.lift_warning(conn, int(row["id"]), now)
        await store.insert_history(conn, int(row["id"]), "lift", row["level"], None, [], {}, actor, now)
        res.lifted += 1
        res.changes.append(("lift", row["scope"], row["name"], row["level"]))
    return res


async def run_pass(
    pool: asyncpg.Pool, ctx: ComposeContext, rules: AreaWarningRules, now: datetime, actor: str = SYSTEM_ACTOR
) -> PassResult:
    """Count, decide and record in one transaction (an advisory lock: one instance at a time)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await store.try_lock(conn):
            return PassResult(evaluated=False)
        facts = await read_facts(conn, rules, now)
        res = await apply(conn, ctx, evaluate(rules, facts, ctx.registry, now), now, actor)
    if res.changes:
        log.info(
            "area warnings %s",
            kv(new=res.new, raised=res.raised, lowered=res.lowered, lifted=res.lifted, queued=res.queued),
        )
    return res


#: the pool → (rules, file mtime, next due): the timers tick every second, the pass runs every ``every``
_STATE: dict[int, tuple[asyncpg.Pool, AreaWarningRules | None, float, datetime]] = {}
#: the rules file of the timers' pass; None: off. ``hazmon alerting`` turns it on (:func:`enable_timers`);
#: a service built by a test for its own timers (escalation, overdue hazards…) is not told of area warnings
TIMER_RULES: Path | None = None


def enable_timers(routes_file: Path | None = None) -> Path:
    """Turn the timers' pass on with ``area_warnings.yaml`` beside ``routes_file`` (a deployment's data
    directory), else the shipped one; returns the file used."""
    global TIMER_RULES
    beside = routes_file.parent / DEFAULT_RULES_FILE.name if routes_file else None
    TIMER_RULES = beside if beside is not None and beside.is_file() else DEFAULT_RULES_FILE
    return TIMER_RULES


async def timer_pass(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, path: Path | None = None) -> int:
    """The timers' pass (when enabled): every ``every`` of the rules, the first one ``every`` after the
    service started; a bad or missing file is logged and the last good rules kept (nothing changes).
    Returns rows queued."""
    path = path or TIMER_RULES
    if path is None:
        return 0
    held = _STATE.get(id(pool))
    if held is None or held[0] is not pool:  # first tick: the first pass one ``every`` after start
        try:
            first = load_rules(path)
            _STATE[id(pool)] = (pool, first, path.stat().st_mtime, now + timedelta(seconds=first.every_s))
        except (RulesFileError, OSError) as exc:
            log.error("area warning rules refused %s", kv(problem=str(exc)[:500]))
            _STATE[id(pool)] = (pool, None, -1.0, now + timedelta(minutes=10))
        return 0
    rules, mtime, due = held[1], held[2], held[3]
    if now < due:
        return 0
    try:
        stat = path.stat().st_mtime
    except OSError:
        stat = -2.0
    if stat != mtime:
        try:
            rules = load_rules(path)
        except RulesFileError as exc:
            log.error("area warning rules refused, keeping the last good ones %s", kv(problem=str(exc)[:500]))
    if rules is None:
        _STATE[id(pool)] = (pool, None, stat, now + timedelta(minutes=10))
        return 0
    _STATE[id(pool)] = (pool, rules, stat, now + timedelta(seconds=rules.every_s))
    return (await run_pass(pool, ctx, rules, now)).queued
