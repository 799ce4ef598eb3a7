"""The closed loop (闭环管理) of alarms and the hazards ledger (隐患台账), with audit.

Alarm: 报警 ``alarm`` → 研判 ``verified`` (real / false / test / fault) → 推送 ``dispatched`` →
处置 ``handling`` → 反馈 ``feedback`` (note, optional photo reference) → 办结 ``closed``.
A false alarm, a test or a device fault may be closed straight after 研判 (with a reason);
a real one only after feedback. Acknowledgement (确认, by SMS reply code, short link or an
operator) is orthogonal to the phase: it stops the 工作提醒单 timers.

Hazard: 排查发现 ``found`` → 建立台账 ``registered`` → 挂牌督办 ``supervised`` (deadline) →
整改 ``rectified`` → 销号 ``struck_off``. A hazard may be rectified without 挂牌督办.

Every call takes an asyncpg connection, the ``actor`` (user id, ``system``, or ``sms_reply:``/``link:`` + recipient id — never a number)
and ``now``; nothing reads the wall clock. Every attempt is written to ``alert_transitions`` /
``hazard_transitions``: applied or rejected, with who, when and why. Concurrency: the row is
locked (``SELECT … FOR UPDATE``) for the decision, so two operators closing one alert at once
end with one ``closed`` state, one applied and one rejected transition. Callers holding a
version from an earlier read may pass ``expected_version``; a stale one is rejected too.

Refusals are returned (``TransitionResult.applied is False`` with ``problem``), not raised, so
the audit row survives; :class:`~alerting.errors.NotFound` and
:class:`~alerting.errors.InvalidAction` are raised for unknown ids and input that can never be
valid (nothing is recorded then).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from alerting.errors import InvalidAction, NotFound
from hazmon.contracts import AlertPhase, Event, EventState, Verdict
from hazmon.logs import kv

__all__ = [
    "AlertRecord",
    "Transition",
    "TransitionResult",
    "HazardRecord",
    "HazardResult",
    "record_event",
    "Placement",
    "record_events",
    "get_alert",
    "alert_timeline",
    "verify",
    "acknowledge",
    "record_refused_acknowledgement",
    "dispatch",
    "start_handling",
    "feedback",
    "close",
    "find_hazard",
    "register_hazard",
    "supervise_hazard",
    "rectify_hazard",
    "strike_off_hazard",
    "get_hazard",
    "hazard_timeline",
    "ACK_CODE_ALPHABET",
]

log = logging.getLogger(__name__)

#: 回复码 alphabet: digits only, so a business can reply from any phone keypad. ``alerts.ack_code``
#: is the alert's reference code (shown to operators, the placeholder in a rendered text); what
#: acknowledges is each recipient's own code and link token (alerting/acks.py).
ACK_CODE_ALPHABET = "0123456789"
_ACK_CODE_LEN = 6


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One row of ``alerts`` (what the console shows and the escalation reads)."""

    id: str
    kind: str
    domain: str
    severity: str
    state: str
    device_id: str
    site_id: str
    township_id: str
    department_ids: tuple[str, ...]
    component: str
    zone: str
    summary: str
    labels: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    detected_at: datetime
    received_at: datetime
    route_id: str
    group_key: str
    suppressed_by: str
    notified_at: datetime | None
    phase: AlertPhase
    verdict: Verdict | None
    ack_code: str
    acked_at: datetime | None
    acked_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    timer_factor: float
    escalation_step: int
    next_escalation_at: datetime | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AlertRecord:
        labels = row["labels"]
        if isinstance(labels, str):
            labels = json.loads(labels)
        return cls(
            id=row["id"], kind=row["kind"], domain=row["domain"], severity=row["severity"], state=row["state"],
            device_id=row["device_id"], site_id=row["site_id"], township_id=row["township_id"],
            department_ids=tuple(row["department_ids"] or ()), component=row["component"], zone=row["zone"],
            summary=row["summary"], labels=labels, starts_at=row["starts_at"], ends_at=row["ends_at"],
            detected_at=row["detected_at"], received_at=row["received_at"], route_id=row["route_id"],
            group_key=row["group_key"], suppressed_by=row["suppressed_by"], notified_at=row["notified_at"],
            phase=AlertPhase(row["phase"]), verdict=Verdict(row["verdict"]) if row["verdict"] else None,
            ack_code=row["ack_code"], acked_at=row["acked_at"], acked_by=row["acked_by"],
            closed_at=row["closed_at"], closed_by=row["closed_by"], close_reason=row["close_reason"],
            timer_factor=row["timer_factor"], escalation_step=row["escalation_step"],
            next_escalation_at=row["next_escalation_at"], version=row["version"], updated_at=row["updated_at"],
        )

    @property
    def acknowledged(self) -> bool:
        return self.acked_at is not None


@dataclass(frozen=True, slots=True)
class Transition:
    """One audit row of ``alert_transitions`` or ``hazard_transitions``."""

    id: int
    action: str
    from_phase: str
    to_phase: str
    outcome: str
    actor: str
    at: datetime
    reason: str
    note: str
    photo_ref: str
    detail: Mapping[str, Any]
    version: int
    verdict: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """What an alert action did. ``applied`` False: refused and recorded; ``problem`` says why
    (API: 409 Conflict). ``alert`` is the state after the call either way."""

    applied: bool
    alert: AlertRecord
    transition_id: int
    problem: str = ""


# --- events → alerts (the service's side) -----------------------------------------------------


async def record_event(
    conn: asyncpg.Connection,
    event: Event,
    *,
    now: datetime,
    township_id: str = "",
    department_ids: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    route_id: str = "",
    group_key: str = "",
    timer_factor: float = 1.0,
    next_escalation_at: datetime | None = None,
) -> tuple[AlertRecord, str]:
    """Insert or update the alert for ``event`` (alert id = event id); idempotent.

    Returns the alert and what happened: ``"new"`` (first firing), ``"resolved"`` (it was
    firing and the resolved event arrived), ``"replay"`` (nothing changed: a replayed event).
    A resolved event for an unseen id creates the alert already resolved (``"new"``), so an
    episode whose firing record was lost is still on the books.
    """
    lbl = dict(labels or {})
    async with conn.transaction():
        row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1 FOR UPDATE", event.id)
        if row is None:
            code = await _new_ack_code(conn)
            row = await conn.fetchrow(
                """INSERT INTO alerts (id, kind, domain, severity, state, device_id, site_id, township_id,
                       department_ids, component, zone, summary, labels, evidence, starts_at, ends_at,
                       detected_at, received_at, route_id, group_key, ack_code, timer_factor,
                       next_escalation_at, updated_at)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13::jsonb,$14::jsonb,$15,$16,$17,$18,$19,$20,
                           $21,$22,$23,$18)
                   ON CONFLICT (id) DO NOTHING RETURNING *""",
                event.id, event.kind, event.domain, event.severity.value, event.state.value, event.device_id,
                event.site_id, township_id, list(department_ids), event.component, event.zone, event.summary,
                json.dumps(lbl, ensure_ascii=False),
                json.dumps([e.model_dump(mode="json") for e in event.evidence], ensure_ascii=False),
                event.starts_at, event.ends_at, event.detected_at, now, route_id, group_key, code, timer_factor,
                next_escalation_at if event.state == EventState.FIRING else None,
            )
            assert row is not None
            await _audit(conn, row["id"], "fire" if event.state == EventState.FIRING else "resolve",
                         "alarm", "alarm", "applied", "system", now, event.summary, version=1,
                         detail={"severity": event.severity.value, "kind": event.kind})
            return AlertRecord.from_row(row), "new"
        if event.state == EventState.RESOLVED and row["state"] == "firing":
            row = await conn.fetchrow(
                "UPDATE alerts SET state='resolved', ends_at=$2, updated_at=$3, version=version+1"
                " WHERE id=$1 RETURNING *",
                event.id, event.ends_at or event.detected_at, now,
            )
            await _audit(conn, event.id, "resolve", row["phase"], row["phase"], "applied", "system", now,
                         "event resolved", version=row["version"])
            return AlertRecord.from_row(row), "resolved"
        return AlertRecord.from_row(row), "replay"


@dataclass(frozen=True, slots=True)
class Placement:
    """An event with where the routing put it (the arguments of :func:`record_event`)."""

    event: Event
    township_id: str = ""
    department_ids: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    route_id: str = ""
    group_key: str = ""
    timer_factor: float = 1.0
    next_escalation_at: datetime | None = None


_SEP = "\x1f"  # joins a row's text[] into one text (ids and department codes hold no control character)


async def record_events(conn: asyncpg.Connection, items: Sequence[Placement], *, now: datetime
                        ) -> list[tuple[AlertRecord, str]]:
    """:func:`record_event` for a batch of *distinct* alert ids, with the same outcomes, in one
    transaction of a fixed handful of statements (a storm of a hundred alarms is a few round
    trips, not a thousand). Results are in the order of ``items``."""
    ids = [it.event.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError("record_events: alert ids must be distinct (apply repeats in order, one batch each)")
    out: dict[str, tuple[AlertRecord, str]] = {}
    async with conn.transaction():
        existing = {r["id"]: r for r in await conn.fetch(
            "SELECT * FROM alerts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", ids)}
        fresh = [it for it in items if it.event.id not in existing]
        audit: list[tuple[Any, ...]] = []
        if fresh:
            codes = await _new_ack_codes(conn, len(fresh))
            ev = [it.event for it in fresh]
            rows = await conn.fetch(
                """INSERT INTO alerts (id, kind, domain, severity, state, device_id, site_id, township_id,
                       department_ids, component, zone, summary, labels, evidence, starts_at, ends_at,
                       detected_at, received_at, route_id, group_key, ack_code, timer_factor,
                       next_escalation_at, updated_at)
                   SELECT u.id, u.kind, u.domain, u.severity, u.state, u.device_id, u.site_id, u.township_id,
                          string_to_array(u.departments, $23), u.component, u.zone, u.summary, u.labels::jsonb,
                          u.evidence::jsonb, u.starts_at, u.ends_at, u.detected_at, $22, u.route_id, u.group_key,
                          u.ack_code, u.timer_factor, u.next_escalation_at, $22
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                 $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                                 $14::text[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[],
                                 $18::text[], $19::text[], $20::text[], $21::float8[], $24::timestamptz[])
                          AS u(id, kind, domain, severity, state, device_id, site_id, township_id, departments,
                               component, zone, summary, labels, evidence, starts_at, ends_at, detected_at,
                               route_id, group_key, ack_code, timer_factor, next_escalation_at)
                   ON CONFLICT (id) DO NOTHING RETURNING *""",
                [e.id for e in ev], [e.kind for e in ev], [e.domain for e in ev], [e.severity.value for e in ev],
                [e.state.value for e in ev], [e.device_id for e in ev], [e.site_id for e in ev],
                [it.township_id for it in fresh], [_SEP.join(it.department_ids) for it in fresh],
                [e.component for e in ev], [e.zone for e in ev], [e.summary for e in ev],
                [json.dumps(dict(it.labels), ensure_ascii=False) for it in fresh],
                [json.dumps([x.model_dump(mode="json") for x in e.evidence], ensure_ascii=False) for e in ev],
                [e.starts_at for e in ev], [e.ends_at for e in ev], [e.detected_at for e in ev],
                [it.route_id for it in fresh], [it.group_key for it in fresh], codes,
                [it.timer_factor for it in fresh], now, _SEP,
                [it.next_escalation_at if it.event.state == EventState.FIRING else None for it in fresh],
            )
            by_id = {it.event.id: it.event for it in fresh}
            for r in rows:
                e = by_id[r["id"]]
                out[r["id"]] = (AlertRecord.from_row(r), "new")
                audit.append((r["id"], "fire" if e.state == EventState.FIRING else "resolve", "alarm", "alarm",
                              "applied", "system", now, e.summary, None, "", "",
                              json.dumps({"severity": e.severity.value, "kind": e.kind}, ensure_ascii=False), 1))
            lost = [i for i in by_id if i not in out]  # inserted meanwhile by another writer: it is theirs
            if lost:
                existing.update({r["id"]: r for r in await conn.fetch(
                    "SELECT * FROM alerts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", lost)})
        resolving = [it for it in items if it.event.id in existing and it.event.id not in out
                     and it.event.state == EventState.RESOLVED and existing[it.event.id]["state"] == "firing"]
        if resolving:
            rows = await conn.fetch(
                """UPDATE alerts a SET state='resolved', ends_at=u.ends_at, updated_at=$1, version=a.version+1
                   FROM unnest($2::text[], $3::timestamptz[]) AS u(id, ends_at) WHERE a.id=u.id RETURNING a.*""",
                now, [it.event.id for it in resolving], [it.event.ends_at or it.event.detected_at for it in resolving])
            for r in rows:
                out[r["id"]] = (AlertRecord.from_row(r), "resolved")
                audit.append((r["id"], "resolve", r["phase"], r["phase"], "applied", "system", now, "event resolved",
                              None, "", "", "{}", r["version"]))
        if audit:
            await conn.executemany(
                """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, outcome, actor, at, reason,
                       verdict, note, photo_ref, detail, version)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb,$13)""", audit)
    for i in ids:
        if i not in out:
            out[i] = (AlertRecord.from_row(existing[i]), "replay")
    return [out[i] for i in ids]


async def _new_ack_codes(conn: asyncpg.Connection, n: int) -> list[str]:
    """``n`` distinct 回复码 free among open alerts (one query per draw round)."""
    codes: list[str] = []
    for _ in range(20):
        want = n - len(codes)
        if want == 0:
            return codes
        drawn = {"".join(secrets.choice(ACK_CODE_ALPHABET) for _ in range(_ACK_CODE_LEN)) for _ in range(want)}
        drawn -= set(codes)
        taken = {r["ack_code"] for r in await conn.fetch(
            "SELECT ack_code FROM alerts WHERE ack_code = ANY($1::text[]) AND phase <> 'closed'", list(drawn))}
        codes.extend(sorted(drawn - taken))
    if len(codes) == n:
        return codes
    raise RuntimeError("no free 回复码 after 20 draws")  # > 10^5 open alarms: not a district's scale


async def _new_ack_code(conn: asyncpg.Connection) -> str:
    for _ in range(20):
        code = "".join(secrets.choice(ACK_CODE_ALPHABET) for _ in range(_ACK_CODE_LEN))
        if await conn.fetchval("SELECT 1 FROM alerts WHERE ack_code=$1 AND phase <> 'closed'", code) is None:
            return code
    raise RuntimeError("no free 回复码 after 20 draws")  # > 10^5 open alarms: not a district's scale


# --- reading ------------------------------------------------------------------------------------


async def get_alert(conn: asyncpg.Connection, alert_id: str) -> AlertRecord:
    row = await conn.fetchrow("SELECT * FROM alerts WHERE id=$1", alert_id)
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    return AlertRecord.from_row(row)


async def alert_timeline(conn: asyncpg.Connection, alert_id: str) -> list[Transition]:
    """Every recorded action on the alert, oldest first (applied and rejected)."""
    rows = await conn.fetch("SELECT * FROM alert_transitions WHERE alert_id=$1 ORDER BY id", alert_id)
    return [_transition(r) for r in rows]


def _transition(r: Mapping[str, Any]) -> Transition:
    detail = r["detail"]
    if isinstance(detail, str):
        detail = json.loads(detail)
    return Transition(
        id=r["id"], action=r["action"], from_phase=r["from_phase"], to_phase=r["to_phase"], outcome=r["outcome"],
        actor=r["actor"], at=r["at"], reason=r["reason"], note=r["note"], photo_ref=r["photo_ref"],
        detail=detail, version=r["version"], verdict=r["verdict"],
    )


# --- alarm actions -------------------------------------------------------------------------------

_Check = Callable[[asyncpg.Record], str]


async def _audit(
    conn: asyncpg.Connection, alert_id: str, action: str, from_phase: str, to_phase: str, outcome: str,
    actor: str, at: datetime, reason: str, *, version: int, verdict: str | None = None, note: str = "",
    photo_ref: str = "", detail: Mapping[str, Any] | None = None,
) -> int:
    return int(await conn.fetchval(
        """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, outcome, actor, at, reason,
               verdict, note, photo_ref, detail, version)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb,$13) RETURNING id""",
        alert_id, action, from_phase, to_phase, outcome, actor, at, reason, verdict, note, photo_ref,
        json.dumps(dict(detail or {}), ensure_ascii=False), version,
    ))


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
        row = await conn.fetchrow("SELECT * FROM alerts WHERE id=$1 FOR UPDATE", alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id!r}")
        problem = ""
        if expected_version is not None and expected_version != row["version"]:
            problem = f"stale version {expected_version}: the alert is at version {row['version']} (changed by someone else)"
        if not problem:
            problem = check(row)
        if problem:
            tid = await _audit(conn, alert_id, action, row["phase"], row["phase"], "rejected", actor, now, reason,
                               version=row["version"], verdict=verdict, note=note, photo_ref=photo_ref,
                               detail={**(detail or {}), "problem": problem})
            log.info("alert action rejected %s", kv(alert=alert_id, action=action, actor=actor, problem=problem))
            return TransitionResult(False, AlertRecord.from_row(row), tid, problem)
        target = to_phase or row["phase"]
        cols = {"phase": target, **sets, "updated_at": now}
        if implies_ack and row["acked_at"] is None:  # any operator action on it means it was seen
            cols.update(acked_at=now, acked_by=actor)
        assigns = ", ".join(f"{k}=${i + 2}" for i, k in enumerate(cols))
        new = await conn.fetchrow(
            f"UPDATE alerts SET {assigns}, version=version+1 WHERE id=$1 RETURNING *", alert_id, *cols.values()
        )
        tid = await _audit(conn, alert_id, action, row["phase"], target, "applied", actor, now, reason,
                           version=new["version"], verdict=verdict, note=note, photo_ref=photo_ref, detail=detail)
        if target == "closed":
            await conn.execute("UPDATE notices SET status='closed', closed_at=$2 WHERE alert_id=$1 AND status='open'",
                               alert_id, now)
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
    return await _act(conn, alert_id, action="verify", actor=actor, now=now, check=_phase_is("alarm"),
                      to_phase="verified",
                      sets={"verdict": verdict.value, **({} if verdict in (Verdict.REAL, Verdict.FAULT)
                                                         else {"next_escalation_at": None})}, reason=reason, verdict=verdict.value,
                      expected_version=expected_version)


async def acknowledge(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, via: str = "console", reason: str = "",
    expected_version: int | None = None, detail: Mapping[str, Any] | None = None,
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

    result = await _act(conn, alert_id, action="acknowledge", actor=actor, now=now, check=check, to_phase=None,
                        sets={"acked_at": now, "acked_by": actor}, reason=reason, detail={**(detail or {}), "via": via},
                        expected_version=expected_version, implies_ack=False)
    if result.applied:
        await conn.execute("UPDATE notices SET status='answered' WHERE alert_id=$1 AND status='open'", alert_id)
    return result


async def record_refused_acknowledgement(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, via: str, problem: str,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """A refused acknowledgement attempt on the alert's timeline (a reply from a number that
    never received it): a rejected ``acknowledge`` transition; the alert is not changed."""
    row = await conn.fetchrow("SELECT phase, version FROM alerts WHERE id=$1", alert_id)
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    return await _audit(conn, alert_id, "acknowledge", row["phase"], row["phase"], "rejected", actor, now, problem,
                        version=row["version"], detail={**(detail or {}), "via": via, "problem": problem})


async def dispatch(
    conn: asyncpg.Connection, alert_id: str, *, actor: str, now: datetime, units: Sequence[str], reason: str = "",
    expected_version: int | None = None,
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

    return await _act(conn, alert_id, action="dispatch", actor=actor, now=now, check=check, to_phase="dispatched",
                      sets={}, reason=reason, detail={"units": list(units)}, expected_version=expected_version)


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
        return f"alert is {row['phase']} ({row['verdict'] or '未研判'}); a real alarm closes after feedback, others after 研判"

    return await _act(conn, alert_id, action="close", actor=actor, now=now, check=check, to_phase="closed",
                      sets={"closed_at": now, "closed_by": actor, "close_reason": reason, "next_escalation_at": None},
                      reason=reason, expected_version=expected_version)


# --- hazards ledger (隐患台账) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HazardRecord:
    id: str
    site_id: str
    township_id: str
    domain: str
    department_ids: tuple[str, ...]
    title: str
    description: str
    grade: str
    source_alert_id: str | None
    phase: str
    found_at: datetime
    found_by: str
    deadline: datetime | None
    supervisor: str
    rectified_at: datetime | None
    struck_off_at: datetime | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> HazardRecord:
        return cls(
            id=r["id"], site_id=r["site_id"], township_id=r["township_id"], domain=r["domain"],
            department_ids=tuple(r["department_ids"] or ()), title=r["title"], description=r["description"],
            grade=r["grade"], source_alert_id=r["source_alert_id"], phase=r["phase"], found_at=r["found_at"],
            found_by=r["found_by"], deadline=r["deadline"], supervisor=r["supervisor"],
            rectified_at=r["rectified_at"], struck_off_at=r["struck_off_at"], version=r["version"],
            updated_at=r["updated_at"],
        )

    def overdue(self, now: datetime) -> bool:
        """逾期: past its 限期 and not yet rectified."""
        return self.deadline is not None and now > self.deadline and self.phase in ("registered", "supervised")


@dataclass(frozen=True, slots=True)
class HazardResult:
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
    township and the matrix departments of ``domain``. ``hazard_id`` makes the call idempotent."""
    if not title.strip():
        raise InvalidAction("a hazard needs a title")
    if grade not in ("general", "major"):
        raise InvalidAction("grade must be general (一般隐患) or major (重大隐患)")
    if township_id is None:
        township_id = await conn.fetchval("SELECT township_id FROM sites WHERE id=$1", site_id) or ""
    if department_ids is None:
        rows = await conn.fetch("SELECT department_ids FROM matrix_rules WHERE domain=$1 ORDER BY id", domain)
        department_ids = sorted({d for r in rows for d in r[0]})
    hid = hazard_id or f"HZ-{now:%Y%m%d}-{secrets.token_hex(4)}"
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO hazards (id, site_id, township_id, domain, department_ids, title, description, grade,
                   source_alert_id, phase, found_at, found_by, updated_at)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,'found',$10,$11,$10) ON CONFLICT (id) DO NOTHING RETURNING *""",
            hid, site_id, township_id, domain, list(department_ids), title, description, grade, source_alert_id,
            now, actor,
        )
        if row is None:
            return await get_hazard(conn, hid)
        await _hazard_audit(conn, hid, "find", "found", "found", "applied", actor, now, description, version=1)
    return HazardRecord.from_row(row)


async def _hazard_audit(
    conn: asyncpg.Connection, hazard_id: str, action: str, from_phase: str, to_phase: str, outcome: str,
    actor: str, at: datetime, reason: str, *, version: int, photo_ref: str = "",
    detail: Mapping[str, Any] | None = None,
) -> int:
    return int(await conn.fetchval(
        """INSERT INTO hazard_transitions (hazard_id, action, from_phase, to_phase, outcome, actor, at, reason,
               photo_ref, detail, version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10::jsonb,$11) RETURNING id""",
        hazard_id, action, from_phase, to_phase, outcome, actor, at, reason, photo_ref,
        json.dumps(dict(detail or {}), ensure_ascii=False), version,
    ))


async def _hazard_act(
    conn: asyncpg.Connection, hazard_id: str, *, action: str, actor: str, now: datetime, allowed: Sequence[str],
    to_phase: str, sets: Mapping[str, Any], reason: str, photo_ref: str = "",
    expected_version: int | None = None,
) -> HazardResult:
    if not actor:
        raise InvalidAction("actor is required")
    if not reason.strip():
        raise InvalidAction(f"{action} needs a reason")
    async with conn.transaction():
        row = await conn.fetchrow("SELECT * FROM hazards WHERE id=$1 FOR UPDATE", hazard_id)
        if row is None:
            raise NotFound(f"no hazard {hazard_id!r}")
        problem = ""
        if expected_version is not None and expected_version != row["version"]:
            problem = f"stale version {expected_version}: the hazard is at version {row['version']}"
        elif row["phase"] not in allowed:
            problem = f"hazard is {row['phase']}; {action} needs {' or '.join(allowed)}"
        if problem:
            tid = await _hazard_audit(conn, hazard_id, action, row["phase"], row["phase"], "rejected", actor, now,
                                      reason, version=row["version"], photo_ref=photo_ref, detail={"problem": problem})
            return HazardResult(False, HazardRecord.from_row(row), tid, problem)
        cols = {"phase": to_phase, **sets, "updated_at": now}
        assigns = ", ".join(f"{k}=${i + 2}" for i, k in enumerate(cols))
        new = await conn.fetchrow(f"UPDATE hazards SET {assigns}, version=version+1 WHERE id=$1 RETURNING *",
                                  hazard_id, *cols.values())
        detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in sets.items()}
        tid = await _hazard_audit(conn, hazard_id, action, row["phase"], to_phase, "applied", actor, now, reason,
                                  version=new["version"], photo_ref=photo_ref, detail=detail)
        return HazardResult(True, HazardRecord.from_row(new), tid)


async def register_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, reason: str,
    expected_version: int | None = None,
) -> HazardResult:
    """建立台账: the hazard enters the ledger."""
    return await _hazard_act(conn, hazard_id, action="register", actor=actor, now=now, allowed=("found",),
                             to_phase="registered", sets={}, reason=reason, expected_version=expected_version)


async def supervise_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, deadline: datetime, supervisor: str,
    reason: str, expected_version: int | None = None,
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
                             allowed=("registered", "supervised"), to_phase="rectified", sets={"rectified_at": now},
                             reason=reason, photo_ref=photo_ref, expected_version=expected_version)


async def strike_off_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, actor: str, now: datetime, reason: str,
    expected_version: int | None = None,
) -> HazardResult:
    """销号: the rectification is checked and the hazard is struck off the ledger."""
    return await _hazard_act(conn, hazard_id, action="strike_off", actor=actor, now=now, allowed=("rectified",),
                             to_phase="struck_off", sets={"struck_off_at": now}, reason=reason,
                             expected_version=expected_version)


async def get_hazard(conn: asyncpg.Connection, hazard_id: str) -> HazardRecord:
    row = await conn.fetchrow("SELECT * FROM hazards WHERE id=$1", hazard_id)
    if row is None:
        raise NotFound(f"no hazard {hazard_id!r}")
    return HazardRecord.from_row(row)


async def hazard_timeline(conn: asyncpg.Connection, hazard_id: str) -> list[Transition]:
    rows = await conn.fetch("SELECT *, ''::text AS note, NULL::text AS verdict FROM hazard_transitions WHERE hazard_id=$1 ORDER BY id",
                            hazard_id)
    return [_transition(r) for r in rows]
