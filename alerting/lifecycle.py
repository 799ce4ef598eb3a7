"""The closed loop (闭环管理) of alarms, with audit.

Alarm: 报警 ``alarm`` → 研判 ``verified`` (real / false / test / fault) → 推送 ``dispatched`` →
处置 ``handling`` → 反馈 ``feedback`` (note, optional photo reference) → 办结 ``closed``.
A false alarm, a test or a device fault may be closed straight after 研判 (with a reason);
a real one only after feedback. Acknowledgement (确认, by SMS reply code, short link or an
operator) is orthogonal to the phase: it stops the 工作提醒单 timers. The hazards ledger
(隐患台账) is :mod:`alerting.ledger`; events become alerts in :func:`alerting.store.record_events`.

Every call takes an asyncpg connection, the ``actor`` (user id, ``system``, or
``sms_reply:``/``link:`` + recipient id — never a number) and ``now``; nothing reads the wall
clock. Every attempt is written to ``alert_transitions``: applied or rejected, with who, when
and why. Concurrency: the row is locked (``SELECT … FOR UPDATE``) for the decision, so two
operators closing one alert at once end with one ``closed`` state, one applied and one
rejected transition. Callers holding a version from an earlier read may pass
``expected_version``; a stale one is rejected too. The SQL is :mod:`alerting.store.alerts`'s.

Refusals are returned (``TransitionResult.applied is False`` with ``problem``), not raised, so
the audit row survives; :class:`~alerting.errors.NotFound` and
:class:`~alerting.errors.InvalidAction` are raised for unknown ids and input that can never be
valid (nothing is recorded then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from alerting import store
from alerting.errors import InvalidAction, NotFound
from alerting.store import AlertRecord, Transition
from hazmon.contracts import Verdict
from hazmon.logs import kv

__all__ = [
    "TransitionResult",
    "get_alert",
    "alert_timeline",
    "verify",
    "acknowledge",
    "record_refused_acknowledgement",
    "dispatch",
    "start_handling",
    "feedback",
    "close",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """What an alert action did. ``applied`` False: refused and recorded; ``problem`` says why
    (API: 409 Conflict). ``alert`` is the state after the call either way."""

    applied: bool
    alert: AlertRecord
    transition_id: int
    problem: str = ""


# --- reading ------------------------------------------------------------------------------------


async def get_alert(conn: asyncpg.Connection, alert_id: str) -> AlertRecord:
    alert = await store.fetch_alert(conn, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}")
    return alert


async def alert_timeline(conn: asyncpg.Connection, alert_id: str) -> list[Transition]:
    """Every recorded action on the alert, oldest first (applied and rejected)."""
    return await store.alert_transitions(conn, alert_id)


# --- alarm actions -------------------------------------------------------------------------------

_Check = Callable[[asyncpg.Record], str]


async def _act(
    conn: asyncpg.Connection,
    alert_id: str,
    *,
    action: str,
    actor: str,
    now: datetime,
    check: _Check,
    to_phase: str | None,
    sets: Mapping[str, Any],
    reason: str = "",
    verdict: str | None = None,
    note: str = "",
    photo_ref: str = "",
    detail: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    implies_ack: bool = True,
) -> TransitionResult:
    if not actor:
        raise InvalidAction("actor is required")
    async with conn.transaction():
        row = await store.lock_alert(conn, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id!r}")
        problem = ""
        if expected_version is not None and expected_version != row["version"]:
            problem = (f"stale version {expected_version}: the alert is at version {row['version']}"
                       " (changed by someone else)")
        if not problem:
            problem = check(row)
        if problem:
            tid = await store.insert_transition(
                conn, alert_id, action, row["phase"], row["phase"], "rejected", actor, now, reason,
                version=row["version"], verdict=verdict, note=note, photo_ref=photo_ref,
                detail={**(detail or {}), "problem": problem})
            log.info("alert action rejected %s",
                     kv(alert=alert_id, action=action, actor=actor, problem=problem))
            return TransitionResult(False, AlertRecord.from_row(row), tid, problem)
        target = to_phase or row["phase"]
        cols = {"phase": target, **sets, "updated_at": now}
        if implies_ack and row["acked_at"] is None:  # any operator action on it means it was seen
            cols.update(acked_at=now, acked_by=actor)
        new = await store.update_alert(conn, alert_id, cols)
        tid = await store.insert_transition(
            conn, alert_id, action, row["phase"], target, "applied", actor, now, reason,
            version=new["version"], verdict=verdict, note=note, photo_ref=photo_ref, detail=detail)
        if target == "closed":
            await store.close_open_notices(conn, alert_id, now)
        log.info("alert action %s", kv(alert=alert_id, action=action, actor=actor, phase=target))
        return TransitionResult(True, AlertRecord.from_row(new), tid)


def _phase_is(*phases: str) -> _Check:
    def check(row: asyncpg.Record) -> str:
        if row["phase"] not in phases:
            return f"alert is {row['phase']}; this action needs {' or '.join(phases)}"
        return ""

    return check


async def verify(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, verdict: Verdict, reason: str,
    expected_version: int | None = None,
) -> TransitionResult:
    """研判: classify the alarm as real / false / test / device fault. Counts as acknowledged."""
    verdict = Verdict(verdict)
    if not reason.strip():
        raise InvalidAction("研判 needs a reason")
    stops = {} if verdict in (Verdict.REAL, Verdict.FAULT) else {"next_escalation_at": None}
    return await _act(conn, alert_id, action="verify", actor=actor, now=now, check=_phase_is("alarm"),
                      to_phase="verified", sets={"verdict": verdict.value, **stops}, reason=reason,
                      verdict=verdict.value, expected_version=expected_version)


async def acknowledge(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, via: str = "console",
    reason: str = "", expected_version: int | None = None, detail: Mapping[str, Any] | None = None,
) -> TransitionResult:
    """确认: someone responsible has seen the alarm (stops 工作提醒单 timers). ``via`` is
    ``console``, ``sms_reply`` or ``link``; ``actor`` names a user or a recipient
    (``sms_reply:site:S6:contact``), never a phone number. A second acknowledgement, or one
    of a closed alert, is recorded as rejected."""

    def check(row: asyncpg.Record) -> str:
        if row["phase"] == "closed":
            return "alert is closed"
        if row["acked_at"] is not None:
            return f"already acknowledged by {row['acked_by']} at {row['acked_at'].isoformat()}"
        return ""

    result = await _act(conn, alert_id, action="acknowledge", actor=actor, now=now, check=check,
                        to_phase=None, sets={"acked_at": now, "acked_by": actor}, reason=reason,
                        detail={**(detail or {}), "via": via}, expected_version=expected_version,
                        implies_ack=False)
    if result.applied:
        await store.answer_open_notices(conn, alert_id)
    return result


async def record_refused_acknowledgement(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, via: str, problem: str,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """A refused acknowledgement attempt on the alert's timeline (a reply from a number that
    never received it): a rejected ``acknowledge`` transition; the alert is not changed."""
    row = await store.alert_phase_version(conn, alert_id)
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    return await store.insert_transition(
        conn, alert_id, "acknowledge", row["phase"], row["phase"], "rejected", actor, now, problem,
        version=row["version"], detail={**(detail or {}), "via": via, "problem": problem})


async def dispatch(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, units: Sequence[str],
    reason: str = "", expected_version: int | None = None,
) -> TransitionResult:
    """推送: send the verified alarm to the responsible units (names or ids) for 处置."""
    if not units:
        raise InvalidAction("dispatch needs at least one unit")

    def check(row: asyncpg.Record) -> str:
        if row["phase"] != "verified":
            return f"alert is {row['phase']}; dispatch needs verified"
        if row["verdict"] not in ("real", "fault"):
            return f"a {row['verdict']} alarm is closed, not dispatched"
        return ""

    return await _act(conn, alert_id, action="dispatch", actor=actor, now=now, check=check,
                      to_phase="dispatched", sets={}, reason=reason, detail={"units": list(units)},
                      expected_version=expected_version)


async def start_handling(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, note: str = "",
    expected_version: int | None = None,
) -> TransitionResult:
    """处置: someone is on site handling it (stops the 督办 ladder's "unhandled" timers)."""
    return await _act(conn, alert_id, action="handle", actor=actor, now=now, check=_phase_is("dispatched"),
                      to_phase="handling", sets={}, note=note, expected_version=expected_version)


async def feedback(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, note: str, photo_ref: str = "",
    expected_version: int | None = None,
) -> TransitionResult:
    """反馈: what was found and done on site, with evidence (note, optional photo reference)."""
    if not note.strip():
        raise InvalidAction("反馈 needs a note")
    return await _act(conn, alert_id, action="feedback", actor=actor, now=now,
                      check=_phase_is("dispatched", "handling"), to_phase="feedback", sets={}, note=note,
                      photo_ref=photo_ref, expected_version=expected_version)


async def close(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, reason: str,
    expected_version: int | None = None,
) -> TransitionResult:
    """办结: close the alarm. Needs a reason; a real alarm needs feedback first, a false alarm /
    test / fault may close right after 研判. Closing stops escalation and closes open notices."""
    if not reason.strip():
        raise InvalidAction("办结 needs a reason")

    def check(row: asyncpg.Record) -> str:
        if row["phase"] == "closed":
            return f"already closed by {row['closed_by']} at {row['closed_at'].isoformat()}"
        if row["phase"] == "feedback":
            return ""
        if row["phase"] == "verified" and row["verdict"] != "real":
            return ""
        return (f"alert is {row['phase']} ({row['verdict'] or '未研判'}); a real alarm closes after feedback,"
                " others after 研判")

    return await _act(conn, alert_id, action="close", actor=actor, now=now, check=check, to_phase="closed",
                      sets={"closed_at": now, "closed_by": actor, "close_reason": reason,
                            "next_escalation_at": None},
                      reason=reason, expected_version=expected_version)
