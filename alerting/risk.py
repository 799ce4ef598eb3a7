"""企业风险分级 红橙黄蓝 per site (双重预防: 安全风险分级管控; seeds 000 and 002): the grading and its pass.

* :func:`grade` (pure): a site's figures through the rules of data/risk_rules.yaml
  (:mod:`alerting.risk_rules`) → its score, grade and the reasons shown
  ("餐饮 +20；近30天真实报警 2 起 +30；…"), a factor's ``min_grade`` a floor on the grade;
* :func:`grade_all` (the pass): every site of the registry graded at ``now`` in one transaction;
  a changed grade is a row of ``risk_grade_history`` (who, when, from → to, the reasons): the
  grade's record and audit (migration 036). Run by alerting's timers (:func:`periodic`, every
  :data:`EVERY`) and by ``hazmon risk grade``;
* :data:`LABELS` — site id → grade, as the pass last stored it: alerting's intake puts it on
  every alert as the label ``risk_grade`` so routes.yaml can match on it (tighter timers for 红).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from alerting.risk_rules import DEFAULT_RULES, GRADE_ZH, GRADES, Grade, RiskRules, RiskRulesError, load_rules
from alerting.store import risk as store
from alerting.store.risk import SiteFigures
from hazmon.logs import kv

__all__ = ["Graded", "GradeReport", "grade", "grade_all", "periodic", "LABELS", "EVERY", "SYSTEM_ACTOR",
           "risk_label"]

log = logging.getLogger(__name__)

#: the timers grade every site this often (the figures move with alarms and hazards)
EVERY = timedelta(minutes=15)
SYSTEM_ACTOR = "system:risk"
#: site id → grade as last stored: the alerts' ``risk_grade`` label (one process's copy)
LABELS: dict[str, str] = {}


def risk_label(site_id: str) -> str:
    """The ``risk_grade`` label of an alert at ``site_id`` ('' for a site not graded yet)."""
    return LABELS.get(site_id, "")


@dataclass(frozen=True, slots=True)
class Graded:
    grade: Grade
    score: int
    reasons: tuple[str, ...]
    #: factor name → points it gave (the figures behind the reasons)
    points: dict[str, int]


def _signed(points: int) -> str:
    return f"+{points}" if points >= 0 else f"−{-points}"


def grade(rules: RiskRules, site: SiteFigures) -> Graded:
    """Score ``site`` by ``rules`` (pure): each factor in order, a combination after its parts."""
    scored: dict[str, int] = {}
    reasons: list[str] = []
    floor: Grade = "blue"
    for name in rules.order():
        f = rules.factors[name]
        pts, value, n = 0, "", 0
        if f.all_of is not None:
            pts = (f.points or 0) if all(m in scored for m in f.all_of) else 0
        else:
            assert f.field is not None
            got = site.value(f.field)
            if f.values is not None:
                value = str(got)
                pts = f.values.get(value, 0)
            elif isinstance(got, bool):
                pts = (f.points or 0) if got else 0
            else:
                n = int(got)
                if n >= f.at_least:
                    pts = (f.points or 0) if f.per is None else n * f.per
                    pts = min(pts, f.max) if f.max is not None else pts
        fired = pts != 0
        if not fired:
            continue
        scored[name] = pts
        reasons.append(f"{f.reason.format(value=value, n=n, days=rules.window_days)} {_signed(pts)}")
        if f.min_grade is not None and GRADES.index(f.min_grade) < GRADES.index(floor):
            floor = f.min_grade
            reasons[-1] += f"（至少{GRADE_ZH[f.min_grade]}）"
    score = sum(scored.values())
    by_score = rules.grade_of(score)
    final: Grade = by_score if GRADES.index(by_score) <= GRADES.index(floor) else floor
    return Graded(final, score, tuple(reasons), scored)


@dataclass(frozen=True, slots=True)
class GradeReport:
    sites: int
    changed: int
    by_grade: dict[str, int]
    #: (site id, name, from grade or None, to grade) of each change
    changes: tuple[tuple[str, str, str | None, str], ...]


async def grade_all(conn: asyncpg.Connection, rules: RiskRules, digest: str, *, now: datetime,
                    actor: str = SYSTEM_ACTOR) -> GradeReport:
    """Grade every site at ``now`` (one transaction; two passes at once: the second waits on the lock)."""
    since = now - timedelta(days=rules.window_days)
    changes: list[tuple[str, str, str | None, str]] = []
    by_grade: dict[str, int] = dict.fromkeys(GRADES, 0)
    async with conn.transaction():
        await conn.execute("LOCK TABLE risk_grades IN SHARE ROW EXCLUSIVE MODE")
        previous = await store.current_grades(conn)
        figures = await store.site_figures(conn, since=since, now=now)
        for site in figures:
            g = grade(rules, site)
            by_grade[g.grade] += 1
            before = previous.get(site.site_id)
            measures: dict[str, Any] = {"points": g.points, "window_days": rules.window_days,
                                        **{k: site.value(k) for k in _MEASURES}}
            if await store.save_grade(conn, site_id=site.site_id, grade=g.grade, score=g.score,
                                      reasons=list(g.reasons), measures=measures, previous=before, now=now,
                                      actor=actor, digest=digest):
                changes.append((site.site_id, site.site_name, before.grade if before else None, g.grade))
        await store.drop_gone(conn, [s.site_id for s in figures])
    LABELS.clear()
    LABELS.update(await store.grade_map(conn))
    for site_id, name, old, new in changes:
        if old is not None:  # a first grade is counted below, not one line per site
            log.info("risk grade changed %s", kv(site=site_id, name=name, old=old, new=new, actor=actor))
    log.info("risk grading done %s", kv(sites=len(figures), changed=sum(1 for c in changes if c[2]),
                                        first=sum(1 for c in changes if not c[2]), actor=actor, **by_grade))
    return GradeReport(len(figures), len(changes), by_grade, tuple(changes))


_MEASURES = ("gas_use", "gas_devices", "alarms", "real_alarms", "false_alarms", "fault_alarms",
             "open_hazards", "major_hazards", "overdue_hazards")

#: the pool → when its pass last ran (the pool is held, so its id is never reused)
_LAST: dict[int, tuple[asyncpg.Pool, datetime]] = {}


async def periodic(pool: asyncpg.Pool, now: datetime, *, every: timedelta = EVERY,
                   rules_file: Path = DEFAULT_RULES) -> GradeReport | None:
    """The timers' pass: grade every site at the first tick and then every ``every`` (a tick
    between costs nothing). A risk_rules.yaml that fails validation is logged and changes nothing."""
    last = _LAST.get(id(pool))
    if last is not None and last[0] is pool and now - last[1] < every:
        return None
    _LAST[id(pool)] = (pool, now)
    try:
        rules, digest = load_rules(rules_file)
    except RiskRulesError as exc:
        log.error("risk rules refused, grades unchanged %s", kv(error=exc))
        return None
    try:
        async with pool.acquire() as conn:
            return await grade_all(conn, rules, digest, now=now)
    except (OSError, asyncpg.PostgresError) as exc:  # tried again after `every`
        log.warning("risk grading failed %s", kv(error=exc))
        return None
