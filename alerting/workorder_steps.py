"""工单's I/O: 派发 (one order per unit or person the centre picked from the matrix) and each
order's steps — 接单, 到场签到, 反馈, 审核通过 (办结), 退回 — with their audit, and what they do to
the alarm's closed loop (闭环, alerting/lifecycle.py):

* 派发 of a 研判'd alarm (real or fault) moves it ``verified`` → ``dispatched`` (the ``dispatch``
  transition names the units); more orders may follow while it is being handled;
* the first 到场签到 moves it ``dispatched`` → ``handling``; the first 反馈 → ``feedback``;
* the centre's approval of the **last** open order closes (办结) the alarm with that reason —
  the verdict (real / false / test / fault) confirmed or corrected — so the business gets its
  outcome SMS (alerting/followup.py).

Concurrency as the alarms': the alarm's row, then the order's, are locked (``FOR UPDATE``) for
the decision, in that order everywhere, so two operators approving one order end with one
applied and one rejected step (API: 409), and two approving the last two orders of an alarm
close it once. A refused step is returned (``applied`` False, ``problem`` in Chinese) with its
audit row; :class:`~alerting.errors.InvalidAction` (input that can never be valid) and
:class:`~alerting.errors.NotFound` are raised, nothing recorded. Decisions:
alerting/workorders.py; SQL: alerting/store/workorders.py.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from alerting import lifecycle, store
from alerting.errors import InvalidAction, NotFound
from alerting.store import workorders as wstore
from alerting.templates import format_when
from alerting.workorders import (
    REASON_ZH,
    STEPS,
    OrderTimer,
    Person,
    UnitOption,
    check_step,
    deadline_after,
    next_due,
)
from hazmon.logs import kv

__all__ = ["Pick", "DispatchResult", "StepResult", "dispatch", "accept", "arrive", "feedback", "approve",
           "return_order", "timer_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pick:
    """One order to issue: a unit of the alarm's options, and its person (None: the whole unit)."""

    unit: UnitOption
    person: Person | None = None


@dataclass(frozen=True, slots=True)
class DispatchResult:
    applied: bool
    orders: list[asyncpg.Record] = field(default_factory=list)
    problem: str = ""


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a step did: ``applied`` False when refused (recorded), ``problem`` why (Chinese);
    ``order`` the row after the call; ``alert_closed`` when it closed the alarm."""

    applied: bool
    order: asyncpg.Record
    transition_id: int
    problem: str = ""
    alert_closed: bool = False


def timer_of(row: Mapping[str, Any]) -> OrderTimer:
    return OrderTimer(row["state"], row["notify_step"], row["created_at"], row["deadline"],
                      row["returned_at"], row["return_told_at"])


def _order_id(now: datetime) -> str:
    return f"WO-{now:%Y%m%d}-{secrets.token_hex(4).upper()}"


_DISPATCHABLE = ("verified", "dispatched", "handling", "feedback")


async def dispatch(conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime,
                   picks: Sequence[Pick], deadline_minutes: int, note: str = "") -> DispatchResult:
    """派发: one order per pick, due ``deadline_minutes`` from now, each to be told by the timer
    pass at once. Refused (recorded on the alarm) when the alarm is not a 研判'd real alarm or
    fault, or a pick already has an open order of this alarm."""
    if not picks:
        raise InvalidAction("派发须至少选择一个单位或人员")
    try:
        deadline = deadline_after(now, deadline_minutes)
    except ValueError as exc:
        raise InvalidAction(str(exc)) from None
    async with conn.transaction():
        alert = await store.lock_alert(conn, alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id!r}")
        problem = ""
        if alert["phase"] not in _DISPATCHABLE:
            problem = ("报警已办结，不能派发" if alert["phase"] == "closed" else "报警尚未研判，请先研判再派发")
        elif alert["verdict"] not in ("real", "fault"):
            problem = f"已研判为{REASON_ZH.get(alert['verdict'], '非真实警情')}的报警直接办结，不派发"
        for p in picks if not problem else ():
            cid = p.person.contact_id if p.person else None
            if await wstore.open_same_unit(conn, alert_id, p.unit.unit_kind, p.unit.unit_id, cid):
                who = f"{p.unit.unit_name}{'的' + p.person.recipient.name if p.person else ''}"
                problem = f"{who}已有该报警未办结的工单，不能重复派发"
                break
        units = [p.unit.unit_name + (f"（{p.person.recipient.name}）" if p.person else "") for p in picks]
        if problem:
            await store.insert_transition(conn, alert_id, "dispatch", alert["phase"], alert["phase"],
                                          "rejected", actor, now, problem, version=alert["version"],
                                          detail={"units": units, "problem": problem})
            return DispatchResult(False, [], problem)
        orders = []
        for p in picks:
            people = [p.person] if p.person else list(p.unit.people)
            row = await wstore.insert_order(conn, {
                "id": _order_id(now), "alert_id": alert_id, "site_id": alert["site_id"],
                "township_id": alert["township_id"], "unit_kind": p.unit.unit_kind, "unit_id": p.unit.unit_id,
                "unit_name": p.unit.unit_name, "contact_id": p.person.contact_id if p.person else None,
                "assignee_name": p.person.recipient.name if p.person else "",
                "assignee_phone": p.person.recipient.phone if p.person else None,
                "recipients": [x.recipient.model_dump(mode="json") for x in people],
                "note": note, "deadline": deadline, "created_at": now, "created_by": actor,
                "next_due_at": now, "updated_at": now})
            await wstore.insert_order_transition(conn, row["id"], "issue", "issued", "issued", "applied",
                                                 actor, now, note, version=row["version"],
                                                 detail={"deadline": deadline.isoformat(), "why": p.unit.why})
            orders.append(row)
        ids = [o["id"] for o in orders]
        if alert["phase"] == "verified":
            res = await lifecycle.dispatch(conn, alert_id, actor=actor, now=now, units=units, reason=note)
            assert res.applied, res.problem
        else:  # more orders while it is handled: on the timeline, the phase unchanged
            new = await store.update_alert(conn, alert_id, {"updated_at": now})
            await store.insert_transition(conn, alert_id, "dispatch", alert["phase"], alert["phase"],
                                          "applied", actor, now, note, version=new["version"],
                                          detail={"units": units, "orders": ids})
        log.info("work orders issued %s", kv(alert=alert_id, orders=len(ids), actor=actor))
        return DispatchResult(True, orders)


async def _step(conn: asyncpg.Connection, order_id: str, step: str, *, actor: str, now: datetime,
                sets: Mapping[str, Any], reason: str = "", detail: Mapping[str, Any] | None = None,
                expected_version: int | None = None, then: Any = None) -> StepResult:
    if not actor:
        raise InvalidAction("actor is required")
    async with conn.transaction():
        alert_id = await wstore.order_alert(conn, order_id)
        if alert_id is None:
            raise NotFound(f"no work order {order_id!r}")
        alert = await store.lock_alert(conn, alert_id)  # the alarm first, then the order: everywhere
        row = await wstore.lock_order(conn, order_id)
        assert alert is not None and row is not None
        problem = ""
        if expected_version is not None and expected_version != row["version"]:
            problem = "工单已被他人更新，请刷新后再操作"
        elif row["state"] == "closed":
            problem = f"工单已于{format_when(row['closed_at'])}办结，不能再操作"
        else:
            problem = check_step(step, row["state"])
        if problem:
            tid = await wstore.insert_order_transition(
                conn, order_id, step, row["state"], row["state"], "rejected", actor, now, problem,
                version=row["version"], detail={**(detail or {}), "problem": problem})
            log.info("work order step refused %s",
                     kv(order=order_id, step=step, actor=actor, problem=problem))
            return StepResult(False, row, tid, problem)
        target = STEPS[step][1]
        merged = {**dict(row), **sets, "state": target}
        cols = {**sets, "state": target, "updated_at": now, "next_due_at": next_due(timer_of(merged))}
        new = await wstore.update_order(conn, order_id, cols)
        tid = await wstore.insert_order_transition(conn, order_id, step, row["state"], target, "applied",
                                                   actor, now, reason, version=new["version"], detail=detail)
        closed = bool(await then(alert, new)) if then is not None else False
        log.info("work order step %s", kv(order=order_id, step=step, actor=actor, state=target))
        return StepResult(True, new, tid, alert_closed=closed)


async def accept(conn: asyncpg.Connection, order_id: str, *, actor: str, now: datetime,
                 expected_version: int | None = None) -> StepResult:
    """接单: the person has it (the deadline still counts)."""
    return await _step(conn, order_id, "accept", actor=actor, now=now,
                       sets={"accepted_at": now, "accepted_by": actor}, expected_version=expected_version)


async def arrive(conn: asyncpg.Connection, order_id: str, *, actor: str, now: datetime,
                 lat: float | None = None, lon: float | None = None, accuracy_m: float | None = None,
                 expected_version: int | None = None) -> StepResult:
    """到场签到, with the browser's location where it was granted (and how accurate it was)."""
    if (lat is None) != (lon is None):
        raise InvalidAction("位置须同时包含纬度和经度")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidAction("位置的经纬度超出范围")
    if accuracy_m is not None and accuracy_m < 0:
        raise InvalidAction("定位精度不能为负数")

    async def then(alert: asyncpg.Record, order: asyncpg.Record) -> bool:
        if alert["phase"] == "dispatched":  # someone is on site: 处置
            await lifecycle.start_handling(conn, alert["id"], actor=actor, now=now,
                                           note=f"{order['unit_name']}到场签到（工单{order['id']}）")
        return False

    where = "未获取位置" if lat is None else f"位置 {lat:.5f},{lon:.5f}"
    return await _step(conn, order_id, "arrive", actor=actor, now=now,
                       sets={"arrived_at": now, "arrived_by": actor, "arrived_lat": lat, "arrived_lon": lon,
                             "arrived_accuracy_m": accuracy_m},
                       reason=where, detail={"lat": lat, "lon": lon, "accuracy_m": accuracy_m},
                       expected_version=expected_version, then=then)


async def feedback(conn: asyncpg.Connection, order_id: str, *, actor: str, now: datetime, note: str,
                   attachment_ids: Sequence[str] = (), request_close: bool = False,
                   expected_version: int | None = None) -> StepResult:
    """反馈: what was found and done, with photos (attachment ids, checked by the caller), and
    whether the person asks for 办结 (申请办结)."""
    if not note.strip():
        raise InvalidAction("反馈须填写处置情况")

    async def then(alert: asyncpg.Record, order: asyncpg.Record) -> bool:
        if alert["phase"] in ("dispatched", "handling"):
            await lifecycle.feedback(conn, alert["id"], actor=actor, now=now, note=note,
                                     photo_ref=",".join(attachment_ids)[:500])
        return False

    return await _step(conn, order_id, "feedback", actor=actor, now=now,
                       sets={"fed_back_at": now, "fed_back_by": actor, "feedback_note": note,
                             "attachment_ids": list(attachment_ids), "close_requested": request_close},
                       reason=note,
                       detail={"attachment_ids": list(attachment_ids), "request_close": request_close},
                       expected_version=expected_version, then=then)


async def approve(conn: asyncpg.Connection, order_id: str, *, actor: str, now: datetime, reason: str,
                  note: str = "", expected_version: int | None = None) -> StepResult:
    """审核通过: the centre accepts the feedback and the order is 办结; the last open order of the
    alarm closes the alarm with ``reason`` as its verdict (corrected when it differs)."""
    if reason not in REASON_ZH:
        raise InvalidAction("办结原因须为真实警情、误报、测试或设备故障")

    async def then(alert: asyncpg.Record, order: asyncpg.Record) -> bool:
        if alert["phase"] == "closed" or await wstore.open_orders_of_alert(conn, alert["id"]):
            return False  # 办结 already (by the centre itself), or other orders still open
        aid = alert["id"]
        if alert["phase"] in ("dispatched", "handling"):  # the feedback was given before 派发 moved it on
            await lifecycle.feedback(conn, aid, actor=actor, now=now, note=order["feedback_note"] or "工单反馈")
        if alert["verdict"] != reason:  # the field found otherwise: the verdict the outcome SMS tells
            new = await store.update_alert(conn, aid, {"verdict": reason, "updated_at": now})
            await store.insert_transition(conn, aid, "verify", new["phase"], new["phase"], "applied", actor,
                                          now, f"工单审核改判为{REASON_ZH[reason]}", version=new["version"],
                                          verdict=reason, detail={"order": order["id"]})
        words = f"工单全部办结：{REASON_ZH[reason]}" + (f"，{note}" if note.strip() else "")
        res = await lifecycle.close(conn, aid, actor=actor, now=now, reason=words)
        return res.applied

    return await _step(conn, order_id, "approve", actor=actor, now=now,
                       sets={"closed_at": now, "closed_by": actor, "close_reason": reason,
                             "close_note": note},
                       reason=note or REASON_ZH[reason], detail={"reason": reason},
                       expected_version=expected_version, then=then)


async def return_order(conn: asyncpg.Connection, order_id: str, *, actor: str, now: datetime, reason: str,
                       expected_version: int | None = None) -> StepResult:
    """退回: the feedback is not accepted; the person is told why and has a new deadline of the
    order's original length."""
    if not reason.strip():
        raise InvalidAction("退回须说明原因")
    row = await wstore.order_span(conn, order_id)
    if row is None:
        raise NotFound(f"no work order {order_id!r}")
    deadline = now + (row["deadline"] - row["created_at"])
    return await _step(conn, order_id, "return", actor=actor, now=now,
                       sets={"returned_at": now, "return_reason": reason, "deadline": deadline,
                             "notify_step": 1, "close_requested": False},
                       reason=reason, detail={"deadline": deadline.isoformat()},
                       expected_version=expected_version)
