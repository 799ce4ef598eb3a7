"""The hazards ledger (隐患台账): a hazard's way from discovery to 销号, with audit.

排查发现 ``found`` → 建立台账 ``registered`` → 挂牌督办 ``supervised`` (deadline, the 五落实) →
整改 ``rectified`` (with photos) → 复查 ``reviewed`` (passed; a failed 复查 sends it back to 整改
with its reason) → 销号 ``struck_off``, only after a passed 复查. A hazard may be rectified without
挂牌督办; 转隐患 (:func:`hazard_from_alert`) puts an alarm's site and domain on the ledger, linked.

As in :mod:`alerting.lifecycle`: every call takes an asyncpg connection, the ``actor`` and
``now`` (nothing reads the wall clock); every attempt, applied or rejected, is written to
``hazard_transitions``; the row is locked for the decision, and a stale ``expected_version``
is rejected. Refusals are returned (``HazardResult.applied is False``, ``problem`` in Chinese:
the console shows it as it is); unknown ids and input that can never be valid raise
:class:`~alerting.errors.NotFound` / :class:`~alerting.errors.InvalidAction`. The SQL is
:mod:`alerting.store.ledger`'s; the overdue pass is :mod:`alerting.hazard_overdue`'s.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
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
    "review_hazard",
    "strike_off_hazard",
    "hazard_from_alert",
    "PHASE_ZH",
    "ACTION_ZH",
    "get_hazard",
    "hazard_timeline",
]


#: a phase in words (the console's and the refusals')
PHASE_ZH = {"found": "排查发现", "registered": "已登记", "supervised": "挂牌督办中",
            "rectified": "已整改待复查", "reviewed": "复查通过待销号", "struck_off": "已销号"}
#: an action in words
ACTION_ZH = {"find": "排查发现", "register": "登记", "supervise": "挂牌督办", "rectify": "整改",
             "review": "复查", "strike_off": "销号", "overdue_notify": "逾期提醒",
             "overdue_escalate": "逾期升级"}
#: 五落实 other than 时限 (the deadline): the fields 挂牌督办 must fill
FIVE_ZH = {"owner": "责任人", "measures": "整改措施", "funds": "整改资金", "plan": "应急预案"}


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
        raise InvalidAction("隐患须填写名称")
    if grade not in ("general", "major"):
        raise InvalidAction("隐患等级须为一般隐患或重大隐患")
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
    allowed: Sequence[str], to_phase: str | Callable[[HazardRecord], str], sets: Mapping[str, Any],
    reason: str, photo_ref: str = "", expected_version: int | None = None,
    extra: Callable[[HazardRecord], Mapping[str, Any]] | None = None, noted: Mapping[str, Any] | None = None,
) -> HazardResult:
    if not actor:
        raise InvalidAction("操作须记录操作人")
    if not reason.strip():
        raise InvalidAction(f"{ACTION_ZH.get(action, action)}须填写说明")
    async with conn.transaction():
        current = await store.lock_hazard(conn, hazard_id)
        if current is None:
            raise NotFound(f"no hazard {hazard_id!r}")
        problem = ""
        if expected_version is not None and expected_version != current.version:
            problem = "该隐患已被他人更新，请刷新后再操作"
        elif current.phase not in allowed:
            need = "或".join(PHASE_ZH[p] for p in allowed)
            problem = (f"隐患当前{PHASE_ZH.get(current.phase, current.phase)}，"
                       f"不能{ACTION_ZH.get(action, action)}（须在{need}时）")
        if problem:
            tid = await store.insert_hazard_transition(
                conn, hazard_id, action, current.phase, current.phase, "rejected", actor, now, reason,
                version=current.version, photo_ref=photo_ref, detail={"problem": problem})
            return HazardResult(False, current, tid, problem)
        phase = to_phase(current) if callable(to_phase) else to_phase
        sets = {**sets, **(extra(current) if extra else {})}
        new = await store.update_hazard(conn, hazard_id, {"phase": phase, **sets, "updated_at": now})
        detail = {k: (v.isoformat() if isinstance(v, datetime) else v)
                  for k, v in {**sets, **(noted or {})}.items()}
        tid = await store.insert_hazard_transition(
            conn, hazard_id, action, current.phase, phase, "applied", actor, now, reason,
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
    supervisor: str, reason: str, owner: str = "", measures: str = "", funds: str = "", plan: str = "",
    expected_version: int | None = None,
) -> HazardResult:
    """挂牌督办: a supervising unit, a rectification deadline (限期整改, the 时限) and the other four
    of the 五落实 — 责任人 ``owner``, 措施 ``measures``, 资金 ``funds``, 预案 ``plan``. The overdue
    pass looks at it again at the deadline."""
    if deadline <= now:
        raise InvalidAction("整改期限须晚于现在")
    if not supervisor.strip():
        raise InvalidAction("挂牌督办须指定督办单位")
    five = {"owner": owner.strip(), "measures": measures.strip(), "funds": funds.strip(),
            "plan": plan.strip()}
    missing = [FIVE_ZH[k] for k, v in five.items() if not v]
    if missing:
        raise InvalidAction(f"挂牌督办须落实五落实，缺少：{'、'.join(missing)}")
    return await _hazard_act(conn, hazard_id, action="supervise", actor=actor, now=now,
                             allowed=("found", "registered"), to_phase="supervised",
                             sets={"deadline": deadline, "supervisor": supervisor.strip(), **five,
                                   "overdue_level": 0, "overdue_due_at": deadline},
                             reason=reason, expected_version=expected_version)


async def rectify_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, reason: str, photo_ref: str = "",
    attachment_ids: Sequence[str] = (), expected_version: int | None = None,
) -> HazardResult:
    """整改完成: rectification reported, with evidence (``attachment_ids``: the photos, already
    checked by the caller to be this hazard's); it waits for 复查. The overdue pass stops."""
    return await _hazard_act(conn, hazard_id, action="rectify", actor=actor, now=now,
                             allowed=("registered", "supervised"), to_phase="rectified",
                             sets={"rectified_at": now, "rectify_note": reason.strip(),
                                   "attachment_ids": list(attachment_ids), "overdue_due_at": None},
                             reason=reason, photo_ref=photo_ref, expected_version=expected_version)


async def review_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, passed: bool, reason: str,
    unit: str = "", expected_version: int | None = None,
) -> HazardResult:
    """复查 by the township or the department (``unit``): passed → 复查通过，待销号; failed → back
    to 整改 (挂牌督办中 when it was supervised, else 已登记) with ``reason``, and the overdue pass
    looks at it again from its deadline (逾期提醒 anew when that is past)."""
    sets: dict[str, Any] = {"reviewed_at": now, "reviewed_by": unit.strip() or actor,
                            "review_note": reason.strip()}

    def back(h: HazardRecord) -> str:
        return "reviewed" if passed else ("supervised" if h.deadline is not None else "registered")

    def again(h: HazardRecord) -> Mapping[str, Any]:
        if passed or h.deadline is None:
            return {}
        return {"overdue_level": 0, "overdue_due_at": h.deadline}

    result = await _hazard_act(conn, hazard_id, action="review", actor=actor, now=now, allowed=("rectified",),
                               to_phase=back, sets=sets, reason=reason, noted={"passed": passed},
                               expected_version=expected_version, extra=again)
    return result


async def strike_off_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, reason: str,
    expected_version: int | None = None,
) -> HazardResult:
    """销号: struck off the ledger, only after a passed 复查."""
    return await _hazard_act(conn, hazard_id, action="strike_off", actor=actor, now=now,
                             allowed=("reviewed",), to_phase="struck_off", sets={"struck_off_at": now},
                             reason=reason, expected_version=expected_version)


async def hazard_from_alert(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, title: str, description: str = "",
    grade: str = "general", reason: str = "",
) -> HazardRecord:
    """转隐患: the alarm's site and domain put on the ledger (登记 at once), linked by
    ``source_alert_id``, and the alarm's own audit names the hazard. One hazard per alarm and
    title (its id is derived: a double click makes none twice)."""
    alert = await store.fetch_alert(conn, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}")
    hid = f"HZ-{now:%Y%m%d}-{hashlib.sha256(f'{alert_id}|{title.strip()}'.encode()).hexdigest()[:8]}"
    async with conn.transaction():
        hazard = await find_hazard(conn, actor=actor, now=now, site_id=alert.site_id, domain=alert.domain,
                                   title=title, description=description, grade=grade,
                                   source_alert_id=alert_id, hazard_id=hid,
                                   township_id=alert.township_id or None)
        if hazard.phase == "found":
            await register_hazard(conn, hid, actor=actor, now=now, reason=reason.strip() or "报警转隐患登记")
            await store.insert_transition(conn, alert_id, "to_hazard", alert.phase, alert.phase, "applied",
                                          actor, now, f"转隐患 {hid}", version=alert.version,
                                          detail={"hazard_id": hid})
    return await get_hazard(conn, hid)


async def get_hazard(conn: asyncpg.Connection, hazard_id: str) -> HazardRecord:
    hazard = await store.fetch_hazard(conn, hazard_id)
    if hazard is None:
        raise NotFound(f"no hazard {hazard_id!r}")
    return hazard


async def hazard_timeline(conn: asyncpg.Connection, hazard_id: str) -> list[Transition]:
    """Every recorded action on the hazard, oldest first (applied and rejected)."""
    return await store.hazard_transitions(conn, hazard_id)
