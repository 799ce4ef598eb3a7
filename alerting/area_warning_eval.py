"""The pure decision of the 三色区域预警 (alerting/area_warning.py): per 点, 片 and 线, the figures the
rules (data/area_warnings.yaml) name and the highest colour whose conditions hold, with its reasons
in words. 点 are decided first: a 片 or 线 may count the 点 warnings inside it (a 点 is in its
township's 片 and in the 线 of every domain it has devices or records in)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerting.area_warning_rules import LEVELS, AreaWarningRules
from hazmon.registry import Registry

__all__ = ["Facts", "AreaLevel", "evaluate", "SCOPE_ZH", "LEVEL_ZH", "ACTION_ZH", "RANK"]

SCOPE_ZH = {"township": "片", "industry": "线", "site": "点"}
LEVEL_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
ACTION_ZH = {"new": "发布", "raise": "升级", "lower": "降级", "lift": "解除"}
RANK = {lv: i for i, lv in enumerate(reversed(LEVELS), 1)}  # yellow 1, orange 2, red 3


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
        ok = row["verdict"] in (spec.verdicts or ("real",)) and (
            not spec.severities or row["severity"] in spec.severities
        )
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
                    if add := _matches(spec, spec.source, row, now):
                        for key in _keys(scope, row, registry):
                            values[key][name] += add
            elif spec.source == "site_warnings":
                least = RANK[spec.level or "yellow"]
                for w in out:
                    if w.scope != "site" or RANK[w.level] < least:
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
                met = [
                    c
                    for c in rules.levels.get(scope, {}).get(level, ())
                    if all(vals.get(m, 0) >= least for m, least in c.items())
                ]
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
                    town = next(
                        (
                            r.get("township_id") or ""
                            for rs in sources.values()
                            for r in rs
                            if r.get("site_id") == key
                        ),
                        "",
                    )
                domains = (
                    (key,)
                    if scope == "industry"
                    else tuple(sorted(site_domains.get(key, ())))
                    if scope == "site"
                    else ()
                )
                out.append(
                    AreaLevel(
                        scope,
                        key,
                        _name(scope, key, registry),
                        town,
                        domains,
                        level,
                        tuple(reasons),
                        tuple(short),
                        {m: vals.get(m, 0.0) for m in sorted(used)},
                    )
                )
                break
    return out
