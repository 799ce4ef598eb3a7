"""Intake: events become alerts in their aggregation groups (the consume loop's decisions and writes).

* :func:`alert_labels` and :func:`place` (pure: registry, routes and key periods in memory) —
  the routing labels of an event, its first route and group, its 责任矩阵 and its first
  escalation timer;
* :func:`rounds` — records repeating an alert id go in later rounds, so the records of one
  alert are applied in order (:func:`~alerting.store.record_events` takes distinct ids);
* :func:`store_isolating` — one transaction per round (the alerts and their groups); when the
  database refuses a round for a data reason (:func:`hazmon.pgerrors.classify`), its halves,
  down to the one event it refuses, so the others are stored.

An alert's own group (``alerts.group_key``, its escalation ladder) is that of the first route
it reaches; with ``continue: true`` it also joins the group of every later route it reaches,
created here, its members found at flush time by label containment (:mod:`alerting.flush`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Collection, Sequence
from datetime import datetime

import asyncpg

from alerting import store
from alerting.config import AlertingConfig
from alerting.escalation import KeyPeriod, first_due_at, timer_factor
from alerting.late import LatePolicy, timing
from alerting.matrix import Responsibility, resolve
from alerting.risk import risk_label
from alerting.route import Route, group_key, group_labels
from alerting.store import AlertRecord, NewGroup, Placement
from hazmon.contracts import DeadLetter, DeadLetterReason, Event, EventState
from hazmon.logs import kv
from hazmon.pgerrors import classify, refusal_detail
from hazmon.registry import Registry

__all__ = ["Placed", "alert_labels", "route_warnings", "place", "rounds", "groups_of", "store_isolating",
           "store_round", "first_error", "dead_letter"]

log = logging.getLogger(__name__)

#: an event with where routing put it, its first route and who is responsible
Placed = tuple[Placement, Route, Responsibility]


def first_error(exc: BaseException) -> str:
    """A decoding error in one line: pydantic's first error with its field, else the exception."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            errs = errors()
            if errs:
                loc = ".".join(str(p) for p in errs[0].get("loc", ()))
                return f"{loc}: {errs[0].get('msg', '')} ({len(errs)} error(s))"
    return f"{type(exc).__name__}: {exc}"


def dead_letter(source: str, raw: bytes, detail: str, reason: DeadLetterReason, *, device_id: str,
                now: datetime) -> DeadLetter:
    """The dead-letter record of an event alerting cannot take (``source``: topic:partition:offset).
    Its id is the record's: a batch fetched again after a crash dead-letters it once."""
    return DeadLetter(id=hashlib.sha256(f"alerting|{source}|{reason.value}".encode()).hexdigest()[:32],
                      stage="alerting", source=source, device_id=device_id[:64], reason=reason,
                      detail=detail[:2000], raw=raw[:65536], received_at=now)


def alert_labels(event: Event, registry: Registry) -> dict[str, str]:
    """The routing labels of an event (see :mod:`alerting.route` for the list)."""
    dev = registry.devices.get(event.device_id)
    site = registry.sites.get(event.site_id)
    labels = {str(k): str(v) for k, v in event.labels.items()}
    labels.update({
        "domain": event.domain,
        "severity": event.severity.value,
        "kind": event.kind,
        "device_id": event.device_id,
        "site_id": event.site_id,
        "component": event.component,
        "zone": event.zone,
        "panel": (dev.parent_id if dev and dev.parent_id else event.device_id),
        "hub": "true" if event.device_id in registry.children else "false",
        "township_id": site.township_id if site else "",
        "village_id": (site.village_id or "") if site else "",
        "industry": site.industry if site else "",
        "critical": "true" if site and site.critical else "false",
        "risk_grade": risk_label(event.site_id),  # 企业风险分级 as the risk pass last stored it
    })
    return labels


def route_warnings(config: AlertingConfig, registry: Registry) -> list[str]:
    """Routes naming a domain, site or township the registry does not have match nothing."""
    known = {"domain": set(registry.domains), "site_id": set(registry.sites),
             "township_id": set(registry.townships)}
    out = []
    for r in config.route.walk():
        for m in r.matchers:
            if m.op == "=" and m.name in known and known[m.name] and m.value not in known[m.name]:
                out.append(f"{config.file}: route {r.id!r}: {m} names no {m.name} in the registry "
                           "(the route matches nothing)")
    return out


def place(ev: Event, registry: Registry, config: AlertingConfig, key_periods: Sequence[KeyPeriod],
          late: LatePolicy | None = None, now: datetime | None = None) -> Placed:
    """Routing of one event (pure; ``now``: alerting's receipt). A late or mis-clocked alarm's
    first escalation timer counts from when hazmon learned of it (:func:`alerting.late.timing`)."""
    labels = alert_labels(ev, registry)
    resp = resolve(registry, site_id=ev.site_id, domain=ev.domain)
    route = config.routes_for(labels)[0]
    factor = timer_factor(key_periods, ev.starts_at, ev.domain, resp.township_id)
    dev = registry.devices.get(ev.device_id)
    t = timing(ev.starts_at, ev.received_at or ev.detected_at, now or ev.detected_at, late or LatePolicy(),
               dev.installed_on if dev else None)
    if t.flag and ev.state == EventState.FIRING:
        log.warning("alarm reported late or with a wrong device clock %s",
                    kv(alert=ev.id, flag=t.flag, starts_at=ev.starts_at.isoformat(),
                       reported_at=t.reported_at.isoformat()))
    due = first_due_at(config.policy(ev.severity), t.clock_from, factor)
    return (Placement(ev, resp.township_id, tuple(resp.department_ids), labels, route.id,
                      group_key(route, labels), factor, due, t.reported_at, t.flag), route, resp)


def rounds(events: Sequence[Event], skip: Collection[int]) -> list[list[int]]:
    """Indexes of ``events`` (but ``skip``) in rounds of distinct alert ids, in order."""
    out: list[list[int]] = []
    seen_in: dict[str, int] = {}
    for i, ev in enumerate(events):
        if i in skip:
            continue
        k = seen_in.get(ev.id, -1) + 1
        seen_in[ev.id] = k
        if k == len(out):
            out.append([])
        out[k].append(i)
    return out


async def store_isolating(pool: asyncpg.Pool, config: AlertingConfig, idx: list[int],
                          placed: Sequence[Placed | None], now: datetime, refused: dict[int, BaseException]
                          ) -> list[tuple[int, tuple[AlertRecord, str]]]:
    """:func:`store_round`; when the database refuses the round for a data reason, its
    halves, down to the one event it refuses (added to ``refused``)."""
    try:
        return list(zip(idx, await store_round(pool, config, [placed[i] for i in idx], now), strict=True))
    except Exception as exc:
        if classify(exc) != "data":
            raise
        if len(idx) == 1:
            log.error("event refused by the database %s", kv(detail=refusal_detail(exc)[:300]))
            refused[idx[0]] = exc
            return []
    mid = len(idx) // 2
    return (await store_isolating(pool, config, idx[:mid], placed, now, refused)
            + await store_isolating(pool, config, idx[mid:], placed, now, refused))


def _labels_json(labels: dict[str, str]) -> str:
    return json.dumps(labels, ensure_ascii=False)


def groups_of(config: AlertingConfig, placed: Sequence[Placed], results: Sequence[tuple[AlertRecord, str]],
              now: datetime) -> tuple[list[NewGroup], list[NewGroup]]:
    """The groups stored alerts joined (new alerts) and those to pull forward (resolved ones):
    their own first route's group and, after ``continue: true``, each later route's (pure)."""
    joined: list[NewGroup] = []
    resolved: list[NewGroup] = []
    for (pl, route, _resp), (alert, what) in zip(placed, results, strict=True):
        if what == "new":
            joined.append(NewGroup(pl.group_key, route.id,
                                   _labels_json({n: pl.labels.get(n, "") for n in route.group_by}),
                                   now + route.group_wait))
            joined.extend(NewGroup(k2, r2.id, _labels_json(group_labels(r2, pl.labels)), now + r2.group_wait)
                          for r2, k2 in config.later_groups(pl.labels))
        elif what == "resolved":
            # 恢复 is told within group_wait, not at the next group_interval (up to 5 min later):
            # the group's flush is pulled forward; a group dropped meanwhile is recreated so
            # send_resolved receivers still hear it
            resolved.append(NewGroup(alert.group_key or pl.group_key, alert.route_id or route.id, "{}",
                                     now + route.group_wait))
            resolved.extend(NewGroup(k2, r2.id, _labels_json(group_labels(r2, alert.labels)),
                                     now + r2.group_wait) for r2, k2 in config.later_groups(alert.labels))
    return joined, resolved


async def store_round(pool: asyncpg.Pool, config: AlertingConfig, placed: Sequence[Placed | None],
                      now: datetime) -> list[tuple[AlertRecord, str]]:
    """One transaction: the round's alerts (:func:`~alerting.store.record_events`) and their groups."""
    items = [p for p in placed if p is not None]
    for attempt in range(3):
        try:
            async with pool.acquire() as conn, conn.transaction():
                results = await store.record_events(conn, [pl for pl, _r, _resp in items], now=now)
                joined, resolved = groups_of(config, items, results, now)
                await store.create_groups(conn, now, joined)
                await store.pull_forward(conn, now, resolved)
            return results
        except asyncpg.UniqueViolationError:  # a 回复码 drawn at once by another writer: draw again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
