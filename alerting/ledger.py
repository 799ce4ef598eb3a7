"""The hazards ledger (隐患台账): a hazard's way from discovery to 销号, with audit.

排查发现 ``found`` → 建立台账 ``registered`` → 挂牌督办 ``supervised`` (deadline) →
整改 ``rectified`` → 销号 ``struck_off``. A hazard may be rectified without 挂牌督办.

As in :mod:`alerting.lifecycle`: every call takes an asyncpg connection, the ``actor`` and
``now`` (nothing reads the wall clock); every attempt, applied or rejected, is written to
``hazard_transitions``; the row is locked for the decision, and a stale ``expected_version``
is rejected. Refusals are returned (``HazardResult.applied is False``); unknown ids and input
that can never be valid raise :class:`~alerting.errors.NotFound` /
:class:`~alerting.errors.InvalidAction`. The SQL is :mod:`alerting.store.ledger`'s.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from alerting import store
from alerting.errors import InvalidAction, NotFound
from alerting.store import HazardRecord, Transition

__all__ = [
    "HazardRecord",
    "HazardResult",
    "find_hazard",
    "register_hazard",
    "supervise_hazard",
    "rectify_hazard",
    "strike_off_hazard",
    "get_hazard",
    "hazard_timeline",
]


@dataclass(frozen=True, slots=True)
class HazardResult:
    """What a ledger action did: ``applied`` False is a refusal, recorded, ``problem`` says why."""

    applied: bool
    hazard: HazardRecord
    transition_id: int
    problem: str = ""


async def find_hazard(
    conn: asyncpg.Connection, *, actor: str, now: datetime, site_id: str, domain: str, title: str,
    description: str = "", grade: str = "general", source_alert_id: str | None = None,
    hazard_id: str | None = None, township_id: str | None = None, department_ids: Sequence[str] | None = None,
) -> HazardRecord:
    """排查发现: put a hazard on record. Township and departments default to the site's
    township and the matrix departments of ``domain`` for the site's industry (the rules that
    route its alarms). ``hazard_id`` makes the call idempotent."""
    if not title.strip():
        raise InvalidAction("a hazard needs a title")
    if grade not in ("general", "major"):
        raise InvalidAction("grade must be general (一般隐患) or major (重大隐患)")
    if township_id is None:
        township_id = await store.site_township(conn, site_id)
    if department_ids is None:
        department_ids = await store.site_departments(conn, site_id, domain)
    hid = hazard_id or f"HZ-{now:%Y%m%d}-{secrets.token_hex(4)}"
    async with conn.transaction():
        hazard = await store.insert_hazard(
            conn, hid, site_id=site_id, township_id=township_id, domain=domain, department_ids=department_ids,
            title=title, description=description, grade=grade, source_alert_id=source_alert_id, now=now,
            actor=actor)
        if hazard is None:
            return await get_hazard(conn, hid)
        await store.insert_hazard_transition(conn, hid, "find", "found", "found", "applied", actor, now,
                                             description, version=1)
    return hazard


async def _hazard_act(
    conn: asyncpg.Connection, hazard_id: str, *, action: str, actor: str, now: datetime,
    allowed: Sequence[str], to_phase: str, sets: Mapping[str, Any], reason: str, photo_ref: str = "",
    expected_version: int | None = None,
) -> HazardResult:
    if not actor:
        raise InvalidAction("actor is required")
    if not reason.strip():
        raise InvalidAction(f"{action} needs a reason")
    async with conn.transaction():
        current = await store.lock_hazard(conn, hazard_id)
        if current is None:
            raise NotFound(f"no hazard {hazard_id!r}")
        problem = ""
        if expected_version is not None and expected_version != current.version:
            problem = f"stale version {expected_version}: the hazard is at version {current.version}"
        elif current.phase not in allowed:
            problem = f"hazard is {current.phase}; {action} needs {' or '.join(allowed)}"
        if problem:
            tid = await store.insert_hazard_transition(
                conn, hazard_id, action, current.phase, current.phase, "rejected", actor, now, reason,
                version=current.version, photo_ref=photo_ref, detail={"problem": problem})
            return HazardResult(False, current, tid, problem)
        new = await store.update_hazard(conn, hazard_id, {"phase": to_phase, **sets, "updated_at": now})
        detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in sets.items()}
        tid = await store.insert_hazard_transition(
            conn, hazard_id, action, current.phase, to_phase, "applied", actor, now, reason,
            version=new.version, photo_ref=photo_ref, detail=detail)
        return HazardResult(True, new, tid)


async def register_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, reason: str,
    expected_version: int | None = None,
) -> HazardResult:
    """建立台账: the hazard enters the ledger."""
    return await _hazard_act(conn, hazard_id, action="register", actor=actor, now=now, allowed=("found",),
                             to_phase="registered", sets={}, reason=reason, expected_version=expected_version)


async def supervise_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, deadline: datetime,
    supervisor: str, reason: str, expected_version: int | None = None,
) -> HazardResult:
    """挂牌督办: a supervising unit and a rectification deadline (限期整改)."""
    if deadline <= now:
        raise InvalidAction("the deadline must be in the future")
    if not supervisor.strip():
        raise InvalidAction("挂牌督办 needs a supervising unit")
    return await _hazard_act(conn, hazard_id, action="supervise", actor=actor, now=now,
                             allowed=("found", "registered"), to_phase="supervised",
                             sets={"deadline": deadline, "supervisor": supervisor}, reason=reason,
                             expected_version=expected_version)


async def rectify_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, reason: str, photo_ref: str = "",
    expected_version: int | None = None,
) -> HazardResult:
    """整改完成: rectification reported, with evidence."""
    return await _hazard_act(conn, hazard_id, action="rectify", actor=actor, now=now,
                             allowed=("registered", "supervised"), to_phase="rectified",
                             sets={"rectified_at": now}, reason=reason, photo_ref=photo_ref,
                             expected_version=expected_version)


async def strike_off_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, reason: str,
    expected_version: int | None = None,
) -> HazardResult:
    """销号: the rectification is checked and the hazard is struck off the ledger."""
    return await _hazard_act(conn, hazard_id, action="strike_off", actor=actor, now=now,
                             allowed=("rectified",), to_phase="struck_off", sets={"struck_off_at": now},
                             reason=reason, expected_version=expected_version)


async def get_hazard(conn: asyncpg.Connection, hazard_id: str) -> HazardRecord:
    hazard = await store.fetch_hazard(conn, hazard_id)
    if hazard is None:
        raise NotFound(f"no hazard {hazard_id!r}")
    return hazard


async def hazard_timeline(conn: asyncpg.Connection, hazard_id: str) -> list[Transition]:
    """Every recorded action on the hazard, oldest first (applied and rejected)."""
    return await store.hazard_transitions(conn, hazard_id)
