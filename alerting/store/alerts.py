"""``alerts`` and ``alert_transitions``: the rows of the closed loop and their audit trail.

:func:`record_events` turns a batch of events into alerts (alert id = event id, so a replay
changes nothing) in a fixed handful of statements; the rest are the reads and writes the
state machine (:mod:`alerting.lifecycle`) and the flush (:mod:`alerting.flush`) do. Every
function takes an asyncpg connection and ``now``; none reads the wall clock.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from hazmon.contracts import AlertPhase, Event, EventState, Verdict

__all__ = [
    "ACK_CODE_ALPHABET",
    "AlertRecord",
    "Transition",
    "Placement",
    "record_events",
    "fetch_alert",
    "lock_alert",
    "update_alert",
    "alert_phase_version",
    "alert_transitions",
    "insert_transition",
    "close_open_notices",
    "answer_open_notices",
    "alerts_of_groups",
    "alerts_labelled",
    "firing_by_site",
    "set_suppressions",
    "insert_notify_transitions",
    "mark_notified",
]

#: 回复码 alphabet: digits only, so a business can reply from any phone keypad. ``alerts.ack_code``
#: is the alert's reference code (shown to operators, the placeholder in a rendered text); what
#: acknowledges is each recipient's own code and link token (alerting/acks.py).
ACK_CODE_ALPHABET = "0123456789"
_ACK_CODE_LEN = 6

_SEP = "\x1f"  # joins a row's text[] into one text (ids and department codes hold no control character)


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
    #: when hazmon learned of it (None: stored before migration 019) and whether that was late
    #: or the device's clock is not to be trusted (:mod:`alerting.late`)
    reported_at: datetime | None = None
    time_flag: str = ""

    @property
    def clock_from(self) -> datetime:
        """Where the 四单 ladder counts from: the start, or the report of a late/mis-clocked alarm."""
        return self.reported_at if self.time_flag and self.reported_at else self.starts_at

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AlertRecord:
        labels = row["labels"]
        if isinstance(labels, str):
            labels = json.loads(labels)
        return cls(
            id=row["id"], kind=row["kind"], domain=row["domain"], severity=row["severity"],
            state=row["state"],
            device_id=row["device_id"], site_id=row["site_id"], township_id=row["township_id"],
            department_ids=tuple(row["department_ids"] or ()), component=row["component"], zone=row["zone"],
            summary=row["summary"], labels=labels, starts_at=row["starts_at"], ends_at=row["ends_at"],
            detected_at=row["detected_at"], received_at=row["received_at"], route_id=row["route_id"],
            group_key=row["group_key"], suppressed_by=row["suppressed_by"], notified_at=row["notified_at"],
            phase=AlertPhase(row["phase"]), verdict=Verdict(row["verdict"]) if row["verdict"] else None,
            ack_code=row["ack_code"], acked_at=row["acked_at"], acked_by=row["acked_by"],
            closed_at=row["closed_at"], closed_by=row["closed_by"], close_reason=row["close_reason"],
            timer_factor=row["timer_factor"], escalation_step=row["escalation_step"],
            next_escalation_at=row["next_escalation_at"], version=row["version"],
            updated_at=row["updated_at"], reported_at=row.get("reported_at"),
            time_flag=row.get("time_flag") or "",
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

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Transition:
        detail = r["detail"]
        if isinstance(detail, str):
            detail = json.loads(detail)
        return cls(
            id=r["id"], action=r["action"], from_phase=r["from_phase"], to_phase=r["to_phase"],
            outcome=r["outcome"],
            actor=r["actor"], at=r["at"], reason=r["reason"], note=r["note"], photo_ref=r["photo_ref"],
            detail=detail, version=r["version"], verdict=r["verdict"],
        )


@dataclass(frozen=True, slots=True)
class Placement:
    """An event with where the routing put it (one item of :func:`record_events`)."""

    event: Event
    township_id: str = ""
    department_ids: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    route_id: str = ""
    group_key: str = ""
    timer_factor: float = 1.0
    next_escalation_at: datetime | None = None
    reported_at: datetime | None = None  # None: alerting's receipt (``now``)
    time_flag: str = ""


_AUDIT_COLUMNS = """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, outcome, actor,
                       at, reason, verdict, note, photo_ref, detail, version)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb,$13)"""


async def record_events(conn: asyncpg.Connection, items: Sequence[Placement], *, now: datetime
                        ) -> list[tuple[AlertRecord, str]]:
    """Insert or update the alert of each placed event (alert id = event id); idempotent.

    Each result says what happened: ``"new"`` (first firing), ``"resolved"`` (it was firing
    and the resolved event arrived), ``"replay"`` (nothing changed: a replayed event). A
    resolved event for an unseen id creates the alert already resolved (``"new"``), so an
    episode whose firing record was lost is still on the books.

    The alert ids must be *distinct*; the batch is one transaction of a fixed handful of
    statements (a storm of a hundred alarms is a few round trips, not a thousand). Results
    are in the order of ``items``."""
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
                       next_escalation_at, updated_at, reported_at, time_flag)
                   SELECT u.id, u.kind, u.domain, u.severity, u.state, u.device_id, u.site_id,
                          u.township_id, string_to_array(u.departments, $23), u.component, u.zone,
                          u.summary, u.labels::jsonb, u.evidence::jsonb, u.starts_at, u.ends_at,
                          u.detected_at, $22, u.route_id, u.group_key, u.ack_code, u.timer_factor,
                          u.next_escalation_at, $22, coalesce(u.reported_at, $22), u.time_flag
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                                 $13::text[], $14::text[], $15::timestamptz[], $16::timestamptz[],
                                 $17::timestamptz[], $18::text[], $19::text[], $20::text[], $21::float8[],
                                 $24::timestamptz[], $25::timestamptz[], $26::text[])
                          AS u(id, kind, domain, severity, state, device_id, site_id, township_id,
                               departments, component, zone, summary, labels, evidence, starts_at, ends_at,
                               detected_at, route_id, group_key, ack_code, timer_factor, next_escalation_at,
                               reported_at, time_flag)
                   ON CONFLICT (id) DO NOTHING RETURNING *""",
                [e.id for e in ev], [e.kind for e in ev], [e.domain for e in ev],
                [e.severity.value for e in ev],
                [str(e.state) for e in ev], [e.device_id for e in ev], [e.site_id for e in ev],
                [it.township_id for it in fresh], [_SEP.join(it.department_ids) for it in fresh],
                [e.component for e in ev], [e.zone for e in ev], [e.summary for e in ev],
                [json.dumps(dict(it.labels), ensure_ascii=False) for it in fresh],
                [json.dumps([x.model_dump(mode="json") for x in e.evidence], ensure_ascii=False) for e in ev],
                [e.starts_at for e in ev], [e.ends_at for e in ev], [e.detected_at for e in ev],
                [it.route_id for it in fresh], [it.group_key for it in fresh], codes,
                [it.timer_factor for it in fresh], now, _SEP,
                [it.next_escalation_at if it.event.state == EventState.FIRING else None for it in fresh],
                [it.reported_at for it in fresh], [it.time_flag for it in fresh],
            )
            by_id = {it.event.id: it.event for it in fresh}
            for r in rows:
                e = by_id[r["id"]]
                out[r["id"]] = (AlertRecord.from_row(r), "new")
                what: dict[str, Any] = {"severity": e.severity.value, "kind": e.kind}
                if r["time_flag"]:  # late or mis-clocked: the audit says when it was reported
                    what.update(time_flag=r["time_flag"], reported_at=r["reported_at"].isoformat())
                detail = json.dumps(what, ensure_ascii=False)
                audit.append((r["id"], "fire" if e.state == EventState.FIRING else "resolve", "alarm",
                              "alarm", "applied", "system", now, e.summary, None, "", "", detail, 1))
            lost = [i for i in by_id if i not in out]  # inserted meanwhile by another writer: it is theirs
            if lost:
                existing.update({r["id"]: r for r in await conn.fetch(
                    "SELECT * FROM alerts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", lost)})
        resolving = [it for it in items if it.event.id in existing and it.event.id not in out
                     and it.event.state == EventState.RESOLVED and existing[it.event.id]["state"] == "firing"]
        if resolving:
            rows = await conn.fetch(
                """UPDATE alerts a SET state='resolved', ends_at=u.ends_at, updated_at=$1, version=a.version+1
                   FROM unnest($2::text[], $3::timestamptz[]) AS u(id, ends_at)
                   WHERE a.id=u.id RETURNING a.*""",
                now, [it.event.id for it in resolving],
                [it.event.ends_at or it.event.detected_at for it in resolving])
            for r in rows:
                out[r["id"]] = (AlertRecord.from_row(r), "resolved")
                audit.append((r["id"], "resolve", r["phase"], r["phase"], "applied", "system", now,
                              "event resolved", None, "", "", "{}", r["version"]))
        if audit:
            await conn.executemany(_AUDIT_COLUMNS, audit)
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
        drawn = {"".join(secrets.choice(ACK_CODE_ALPHABET) for _ in range(_ACK_CODE_LEN))
                 for _ in range(want)}
        drawn -= set(codes)
        taken = {r["ack_code"] for r in await conn.fetch(
            "SELECT ack_code FROM alerts WHERE ack_code = ANY($1::text[]) AND phase <> 'closed'",
            list(drawn))}
        codes.extend(sorted(drawn - taken))
    if len(codes) == n:
        return codes
    raise RuntimeError("no free 回复码 after 20 draws")  # > 10^5 open alarms: not a district's scale


async def fetch_alert(conn: asyncpg.Connection, alert_id: str) -> AlertRecord | None:
    row = await conn.fetchrow("SELECT * FROM alerts WHERE id=$1", alert_id)
    return None if row is None else AlertRecord.from_row(row)


async def lock_alert(conn: asyncpg.Connection, alert_id: str) -> asyncpg.Record | None:
    """The alert's row, locked for a decision (inside the caller's transaction)."""
    return await conn.fetchrow("SELECT * FROM alerts WHERE id=$1 FOR UPDATE", alert_id)


async def update_alert(conn: asyncpg.Connection, alert_id: str, cols: Mapping[str, Any]) -> asyncpg.Record:
    """Set ``cols`` (trusted column names) and bump the version; the new row."""
    assigns = ", ".join(f"{k}=${i + 2}" for i, k in enumerate(cols))
    row = await conn.fetchrow(
        f"UPDATE alerts SET {assigns}, version=version+1 WHERE id=$1 RETURNING *", alert_id, *cols.values())
    assert row is not None
    return row


async def alert_phase_version(conn: asyncpg.Connection, alert_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT phase, version FROM alerts WHERE id=$1", alert_id)


async def alert_transitions(conn: asyncpg.Connection, alert_id: str) -> list[Transition]:
    """Every recorded action on the alert, oldest first (applied and rejected)."""
    rows = await conn.fetch("SELECT * FROM alert_transitions WHERE alert_id=$1 ORDER BY id", alert_id)
    return [Transition.from_row(r) for r in rows]


async def insert_transition(
    conn: asyncpg.Connection, alert_id: str, action: str, from_phase: str, to_phase: str, outcome: str,
    actor: str, at: datetime, reason: str, *, version: int, verdict: str | None = None, note: str = "",
    photo_ref: str = "", detail: Mapping[str, Any] | None = None,
) -> int:
    """One audit row of ``alert_transitions``; its id."""
    return int(await conn.fetchval(
        _AUDIT_COLUMNS + " RETURNING id",
        alert_id, action, from_phase, to_phase, outcome, actor, at, reason, verdict, note, photo_ref,
        json.dumps(dict(detail or {}), ensure_ascii=False), version,
    ))


async def close_open_notices(conn: asyncpg.Connection, alert_id: str, now: datetime) -> None:
    await conn.execute("UPDATE notices SET status='closed', closed_at=$2 WHERE alert_id=$1 AND status='open'",
                       alert_id, now)


async def answer_open_notices(conn: asyncpg.Connection, alert_id: str) -> None:
    await conn.execute("UPDATE notices SET status='answered' WHERE alert_id=$1 AND status='open'", alert_id)


# --- what a group flush reads and writes -------------------------------------------------------


async def alerts_of_groups(conn: asyncpg.Connection, keys: Sequence[str]) -> dict[str, list[AlertRecord]]:
    """The alerts whose own group is one of ``keys``, oldest first per group."""
    out: dict[str, list[AlertRecord]] = {k: [] for k in keys}
    for r in await conn.fetch("SELECT * FROM alerts WHERE group_key = ANY($1::text[]) ORDER BY starts_at, id",
                              list(keys)):
        out[r["group_key"]].append(AlertRecord.from_row(r))
    return out


async def alerts_labelled(conn: asyncpg.Connection, *, not_group: str, labels: Mapping[str, str],
                          or_ids: Sequence[str]) -> list[AlertRecord]:
    """Alerts of other groups carrying ``labels`` (the non-empty ones), firing or among
    ``or_ids``, oldest first: the candidates for a later route's group (``continue: true``)."""
    rows = await conn.fetch(
        """SELECT * FROM alerts WHERE group_key <> $1 AND labels @> $2::jsonb
             AND (state='firing' OR id = ANY($3::text[])) ORDER BY starts_at, id""",
        not_group, json.dumps({n: v for n, v in labels.items() if v}, ensure_ascii=False), list(or_ids))
    return [AlertRecord.from_row(r) for r in rows]


async def firing_by_site(conn: asyncpg.Connection, sites: Sequence[str], *, every_site: bool
                         ) -> dict[str, list[tuple[str, Mapping[str, str]]]]:
    """The firing alerts (id, labels) of ``sites`` — of every site when ``every_site`` — by site."""
    out: dict[str, list[tuple[str, Mapping[str, str]]]] = {}
    for r in await conn.fetch(
            """SELECT id, site_id, labels FROM alerts
               WHERE state='firing' AND ($2 OR site_id = ANY($1::text[]))""",
            list(sites), every_site):
        out.setdefault(r["site_id"], []).append(
            (r["id"], json.loads(r["labels"]) if isinstance(r["labels"], str) else r["labels"]))
    return out


async def set_suppressions(conn: asyncpg.Connection, now: datetime, changes: Sequence[tuple[AlertRecord, str]]
                           ) -> None:
    """Store what mutes each alert now (``""``: nothing) with its ``suppress``/``unsuppress`` audit row."""
    if not changes:
        return
    await conn.execute(
        """UPDATE alerts a SET suppressed_by=u.sup, updated_at=$1
           FROM unnest($2::text[], $3::text[]) AS u(id, sup) WHERE a.id=u.id""",
        now, [a.id for a, _ in changes], [sup for _, sup in changes])
    await conn.executemany(
        """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason, version)
           VALUES ($1,$2,$3,$3,'system',$4,$5,$6)""",
        [(a.id, "suppress" if sup else "unsuppress", a.phase.value, now, sup or a.suppressed_by, a.version)
         for a, sup in changes])


async def insert_notify_transitions(conn: asyncpg.Connection, now: datetime,
                                    rows: Sequence[tuple[AlertRecord, str, str]]) -> None:
    """One ``notify`` audit row per (lead alert, template, detail JSON)."""
    if rows:
        await conn.executemany(
            """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason,
                   detail, version) VALUES ($1,'notify',$2,$2,'system',$3,$4,$5::jsonb,$6)""",
            [(lead.id, lead.phase.value, now, template, detail, lead.version)
             for lead, template, detail in rows])


async def mark_notified(conn: asyncpg.Connection, ids: Sequence[str], now: datetime) -> None:
    """The first time each of ``ids`` was told about (kept if already set)."""
    if ids:
        await conn.execute(
            "UPDATE alerts SET notified_at=$2 WHERE id = ANY($1::text[]) AND notified_at IS NULL",
            list(ids), now)
