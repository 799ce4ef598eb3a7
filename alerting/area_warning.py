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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from alerting.area_warning_rules import (
    DEFAULT_RULES_FILE,
    LEVELS,
    AreaWarningRules,
    RulesFileError,
    load_rules,
)
from alerting.compose import ComposeContext, outbox_items
from alerting.matrix import normalize_phone, resolve
from alerting.outbox import NewNotification, enqueue
from alerting.store import area_warning as store
from alerting.templates import render
from alerting.templates.area_warning import KIND, area_warning_template
from hazmon.contracts import ContactChannel, Recipient, RecipientRole
from hazmon.logs import kv
from hazmon.registry import Registry, duty_channels

__all__ = ["Facts", "AreaLevel", "PassResult", "evaluate", "apply", "run_pass", "timer_pass", "read_facts",
           "SCOPE_ZH", "LEVEL_ZH", "ACTION_ZH", "SYSTEM_ACTOR"]

log = logging.getLogger(__name__)

SCOPE_ZH = {"township": "片", "industry": "线", "site": "点"}
LEVEL_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
ACTION_ZH = {"new": "发布", "raise": "升级", "lower": "降级", "lift": "解除"}
SYSTEM_ACTOR = "system:area_warning"
_RANK = {lv: i for i, lv in enumerate(reversed(LEVELS), 1)}  # yellow 1, orange 2, red 3


@dataclass(frozen=True, slots=True)
class Facts:
    """What the pass counts: rows with site_id, township_id, domain and their own fields."""

    alarms: Sequence[Mapping[str, Any]] = ()
    hazards: Sequence[Mapping[str, Any]] = ()
    accidents: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class AreaLevel:
    """One area's computed warning."""

    scope: str
    key: str
    name: str
    township_id: str
    domains: tuple[str, ...]
    level: str
    reasons: tuple[str, ...]  # the sentences shown: 近30天真实警情5起，达到红色预警标准5起
    short: tuple[str, ...]  # the figures the SMS names: 近30天真实警情5起
    measures: dict[str, float] = field(default_factory=dict)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def _keys(scope: str, row: Mapping[str, Any], registry: Registry) -> list[str]:
    site = row.get("site_id") or ""
    if scope == "site":
        return [site] if site else []
    if scope == "township":
        s = registry.sites.get(site)
        return [t] if (t := row.get("township_id") or (s.township_id if s else "")) else []
    return [row["domain"]] if row.get("domain") else []


def _matches(spec: Any, source: str, row: Mapping[str, Any], now: datetime) -> float:
    """How much ``row`` adds to a measure (0: it does not count)."""
    if source == "alarms":
        if spec.days and row["starts_at"] < now - timedelta(days=spec.days):
            return 0
        ok = row["verdict"] in (spec.verdicts or ("real",)) and (not spec.severities or row["severity"] in spec.severities)
        return 1 if ok else 0
    if source == "hazards":
        if spec.grade and row["grade"] != spec.grade:
            return 0
        if spec.overdue and not (row.get("deadline") is not None and row["deadline"] < now):
            return 0
        return 1
    if spec.days and row["occurred_at"] < now - timedelta(days=spec.days):
        return 0
    if spec.accident_levels and row["level"] not in spec.accident_levels:
        return 0
    count = spec.count or "accidents"
    return 1 if count == "accidents" else float(row[count])


def _site_domains(registry: Registry, facts: Facts) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for d in registry.devices.values():
        out[d.site_id].add(d.domain)
    for rows in (facts.alarms, facts.hazards, facts.accidents):
        for r in rows:
            if r.get("site_id") and r.get("domain"):
                out[r["site_id"]].add(r["domain"])
    return out


def _name(scope: str, key: str, registry: Registry) -> str:
    if scope == "township":
        t = registry.townships.get(key)
        return t.name if t else "未登记镇街"
    if scope == "industry":
        d = registry.domains.get(key)
        return d.name_zh if d else "其他"
    s = registry.sites.get(key)
    return s.name if s else "未登记场所"


def evaluate(rules: AreaWarningRules, facts: Facts, registry: Registry, now: datetime) -> list[AreaLevel]:
    """Every area with a warning at ``now``: 点 first, then 片 and 线 (which may count 点 warnings)."""
    out: list[AreaLevel] = []
    site_domains = _site_domains(registry, facts)
    sources = {"alarms": facts.alarms, "hazards": facts.hazards, "accidents": facts.accidents}
    for scope in ("site", "township", "industry"):
        used = rules.used(scope)
        values: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for name in rules.order:
            if name not in used:
                continue
            spec = rules.measures[name]
            if spec.source in sources:
                for row in sources[spec.source]:
                    if (add := _matches(spec, spec.source, row, now)):
                        for key in _keys(scope, row, registry):
                            values[key][name] += add
            elif spec.source == "site_warnings":
                least = _RANK[spec.level or "yellow"]
                for w in out:
                    if w.scope != "site" or _RANK[w.level] < least:
                        continue
                    if scope == "township":
                        keys = [w.township_id] if w.township_id else []
                    else:
                        keys = sorted(site_domains.get(w.key, ()))
                    for key in keys:
                        values[key][name] += 1
            else:  # sum: the terms come first in rules.order
                for vals in values.values():
                    vals[name] = sum(weight * vals.get(t, 0.0) for t, weight in (spec.terms or {}).items())
        for key in sorted(values):
            vals = values[key]
            for level in LEVELS:
                met = [c for c in rules.levels.get(scope, {}).get(level, ()) if all(vals.get(m, 0) >= least
                                                                                   for m, least in c.items())]
                if not met:
                    continue
                reasons: list[str] = []
                short: list[str] = []
                for cond in met:
                    parts = [f"{rules.measures[m].name}{_num(vals[m])}{rules.measures[m].unit}" for m in cond]
                    bar = "、".join(f"{_num(least)}{rules.measures[m].unit}" for m, least in cond.items())
                    reasons.append("且".join(parts) + f"，达到{LEVEL_ZH[level]}预警标准（{bar}）")
                    short += [p for p in parts if p not in short]
                site = registry.sites.get(key) if scope == "site" else None
                town = key if scope == "township" else (site.township_id if site else "")
                if scope == "site" and not town:
                    town = next((r.get("township_id") or "" for rs in sources.values() for r in rs
                                 if r.get("site_id") == key), "")
                domains = (key,) if scope == "industry" else tuple(sorted(site_domains.get(key, ()))) \
                    if scope == "site" else ()
                out.append(AreaLevel(scope, key, _name(scope, key, registry), town, domains, level,
                                     tuple(reasons), tuple(short), {m: vals.get(m, 0.0) for m in sorted(used)}))
                break
    return out


# --- who is told ---------------------------------------------------------------------------------

_SENT_ON = ("sms", "wecom", "dingtalk")  # a warning is a text: a landline-only duty room gets a 未送达 row


def _duty(role: RecipientRole, unit: str, name: str, values: object, rule: str) -> Recipient:
    chans = tuple(ContactChannel(channel=ch, address=a)  # type: ignore[arg-type]
                  for ch, a in duty_channels({f: getattr(values, f, None) for f in
                                              ("duty_phone", "duty_mobile", "robot", "robot_url")})
                  if ch in _SENT_ON)
    mobile = next((c.address for c in chans if c.channel == "sms"), None)
    return Recipient(role=role, name=name or unit, unit=unit, phone=mobile, rule=rule, channels=chans)


def recipients(w: AreaLevel, registry: Registry, duty: Recipient | None) -> list[Recipient]:
    """片: the township's duty room; 线: the departments of the domain's matrix rules (those for
    every site; all of them if none is); 点: the business and its grid member."""
    if w.scope == "township":
        t = registry.townships.get(w.key)
        out = [_duty(RecipientRole.TOWNSHIP, t.name, t.duty_name, t, f"area_warning:township:{t.id}")] if t else []
    elif w.scope == "industry":
        rules = registry.matrix.get(w.key, ())
        general = [r for r in rules if not r.industries] or list(rules)
        deps = dict.fromkeys(d for r in general for d in r.department_ids if d in registry.departments)
        out = [_duty(RecipientRole.DEPARTMENT, dep.name, dep.duty_name, dep, f"area_warning:industry:{w.key}:{d}")
               for d in deps if (dep := registry.departments[d])]
    else:
        resp = resolve(registry, site_id=w.key, domain=w.domains[0] if w.domains else "")
        out = [r for r in resp.recipients if r.role in (RecipientRole.BUSINESS, RecipientRole.GRID_MEMBER)]
    if not any(r.channels or normalize_phone(r.phone) for r in out) and duty is not None:
        out.append(duty)  # nobody reachable for the area: the centre's duty operator is told
    return out


def _change(action: str, before: str | None, level: str) -> str:
    if action == "raise" and before:
        return f"由{LEVEL_ZH[before]}预警升为{LEVEL_ZH[level]}预警"
    return f"发布{LEVEL_ZH[level]}预警"


def messages(ctx: ComposeContext, w: AreaLevel, action: str, before: str | None, history_id: int,
             warning_id: int, now: datetime) -> list[NewNotification]:
    """The outbox rows of a new or raised warning (pure)."""
    values = {"area": w.name, "change": _change(action, before, w.level), "why": "、".join(w.short)}
    body, sent = render(area_warning_template(w.scope, w.level), values, sign_name=ctx.sign_name,
                        max_segments=ctx.config.sms_max_segments, provider=ctx.provider,
                        deployment=ctx.deployment)
    who = recipients(w, ctx.registry, ctx.config.duty_operator)
    return outbox_items(ctx, "", who, ("sms", "console"), 0, KIND, f"area_warning:{history_id}", body, sent,
                        None, f"area_warning:{warning_id}", 1 if w.level == "red" else 0, now)


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
    return Facts(await store.alarm_facts(conn, now - timedelta(days=days["alarms"])),
                 await store.hazard_facts(conn),
                 await store.accident_facts(conn, now - timedelta(days=days["accidents"]), now))


async def apply(conn: asyncpg.Connection, ctx: ComposeContext, computed: Iterable[AreaLevel], now: datetime,
                actor: str = SYSTEM_ACTOR) -> PassResult:
    """Record what changed against the warnings in force and queue the messages of new and
    raised ones; the caller holds the transaction."""
    res = PassResult()
    active = {(r["scope"], r["key"]): r for r in await store.active_warnings(conn, lock=True)}
    for w in computed:
        row = active.pop((w.scope, w.key), None)
        before = row["level"] if row is not None else None
        if row is None:
            wid = await store.insert_warning(conn, scope=w.scope, key=w.key, name=w.name, township_id=w.township_id,
                                             domains=w.domains, level=w.level, reasons=w.reasons,
                                             measures=w.measures, now=now)
            action = "new"
        else:
            wid = int(row["id"])
            was = _RANK[str(before)]
            action = "raise" if _RANK[w.level] > was else "lower" if _RANK[w.level] < was else ""
            await store.update_warning(conn, wid, name=w.name, level=w.level, level_changed=bool(action),
                                       reasons=w.reasons, measures=w.measures, now=now)
        if not action:
            res.kept += 1
            continue
        hid = await store.insert_history(conn, wid, action, before, w.level, w.reasons, w.measures, actor, now)
        res.changes.append((action, w.scope, w.name, w.level))
        if action == "lower":
            res.lowered += 1
            continue
        res.new += action == "new"
        res.raised += action == "raise"
        items = messages(ctx, w, action, before, hid, wid, now)
        inserted = await enqueue(conn, items, now=now)
        res.queued += len(inserted)
        told = sorted({f"{i.request.recipient.name}（{i.request.recipient.unit}）"
                       + ("，未送达" if i.status == "undeliverable" else "") for i in items
                       if i.request.channel != "console" and i.request.template == KIND})
        await store.set_history_detail(conn, hid, {"told": told, "notifications": [i.request.id for i in items]})
    for row in active.values():  # no colour holds any more: 解除
        await store.lift_warning(conn, int(row["id"]), now)
        await store.insert_history(conn, int(row["id"]), "lift", row["level"], None, [], {}, actor, now)
        res.lifted += 1
        res.changes.append(("lift", row["scope"], row["name"], row["level"]))
    return res


async def run_pass(pool: asyncpg.Pool, ctx: ComposeContext, rules: AreaWarningRules, now: datetime,
                   actor: str = SYSTEM_ACTOR) -> PassResult:
    """Count, decide and record in one transaction (an advisory lock: one instance at a time)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await store.try_lock(conn):
            return PassResult(evaluated=False)
        facts = await read_facts(conn, rules, now)
        res = await apply(conn, ctx, evaluate(rules, facts, ctx.registry, now), now, actor)
    if res.changes:
        log.info("area warnings %s", kv(new=res.new, raised=res.raised, lowered=res.lowered, lifted=res.lifted,
                                        queued=res.queued))
    return res


#: the pool → (rules, file mtime, next due): the timers tick every second, the pass runs every ``every``
_STATE: dict[int, tuple[asyncpg.Pool, AreaWarningRules | None, float, datetime]] = {}


async def timer_pass(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime,
                     path: Path = DEFAULT_RULES_FILE) -> int:
    """The timers' pass: every ``every`` of the rules, the first one ``every`` after the service
    started; a bad or missing file is logged and the last good rules kept (nothing changes).
    Returns rows queued."""
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
