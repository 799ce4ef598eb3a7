"""Silences (静默): mute matching alerts for a window — an elevator's 维保 visit, a fire-panel
test, a restaurant under renovation. Stored in PostgreSQL, every change audited.

A silence needs matchers, a creator, a reason and an expiry: an open-ended silence is how
alarms get lost, so one without ``ends_at`` is refused (:class:`~alerting.errors.InvalidAction`),
as is one whose matchers would match every alert. A silenced alert is still stored and shown
(``alerts.suppressed_by``); when the silence ends, the alert's group notifies at its next flush
if it is still firing.

The pure part (:class:`Silence`, :func:`silencing`) decides; the async functions do the I/O,
through :mod:`alerting.store.silences`.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from alerting.errors import InvalidAction, NotFound
from alerting.labels import Matcher, matches_all, parse_matcher
from alerting.store import silences as store
from hazmon.logs import kv

__all__ = [
    "Silence",
    "MAX_SILENCE",
    "silencing",
    "create_silence",
    "expire_silence",
    "get_silence",
    "list_silences",
    "active_silences",
    "silence_audit",
]

log = logging.getLogger(__name__)

#: A silence longer than this is refused: maintenance windows are hours or days, not months.
MAX_SILENCE = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str
    created_at: datetime
    expired_at: datetime | None = None
    expired_by: str | None = None

    @property
    def effective_end(self) -> datetime:
        return min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.effective_end

    def status(self, now: datetime) -> str:
        """``pending`` (not started), ``active`` or ``expired``: the window is half-open,
        [starts_at, ends_at), ended early by ``expired_at`` — a pending silence expired before
        its start is expired from then on, never active."""
        if now >= self.effective_end:
            return "expired"
        return "pending" if now < self.starts_at else "active"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Silence:
        raw = r["matchers"]
        if isinstance(raw, str):
            raw = json.loads(raw)
        return cls(
            id=r["id"], matchers=tuple(parse_matcher(m) for m in raw), starts_at=r["starts_at"],
            ends_at=r["ends_at"], created_by=r["created_by"], reason=r["reason"], created_at=r["created_at"],
            expired_at=r["expired_at"],
            expired_by=r["expired_by"],
        )


def _readable(rows: Iterable[Mapping[str, Any]]) -> list[Silence]:
    """Stored silences, skipping (and logging) one whose matchers no longer parse — e.g. a
    regex outside RE2's syntax stored before it was refused: it mutes nothing (the alarm is
    told) rather than stopping every flush."""
    out = []
    for r in rows:
        try:
            out.append(Silence.from_row(r))
        except ValueError as exc:
            log.error("silence ignored: its matchers no longer parse %s", kv(id=r["id"], problem=str(exc)))
    return out


def silencing(labels: Mapping[str, str], silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The first silence active at ``now`` that mutes an alert with ``labels``, or None."""
    for s in silences:
        if s.active(now) and s.matches(labels):
            return s
    return None


def _validate(matchers: Sequence[Any], starts_at: datetime, ends_at: datetime | None, reason: str,
              actor: str) -> tuple[Matcher, ...]:
    if not actor:
        raise InvalidAction("a silence needs its creator")
    if not reason or not reason.strip():
        raise InvalidAction("a silence needs a reason (e.g. 电梯维保 2026-11-03 9:00-11:00)")
    if ends_at is None:
        raise InvalidAction("a silence needs an expiry (ends_at); open-ended silences lose alarms")
    if ends_at <= starts_at:
        raise InvalidAction("ends_at must be after starts_at")
    if ends_at - starts_at > MAX_SILENCE:
        raise InvalidAction(f"a silence may last at most {MAX_SILENCE.days} days")
    if not matchers:
        raise InvalidAction("a silence needs at least one matcher")
    try:
        parsed = tuple(parse_matcher(m) for m in matchers)
    except ValueError as exc:
        raise InvalidAction(f"bad matcher: {exc}") from None
    if all(m.matches({}) for m in parsed):
        raise InvalidAction("these matchers would silence every alert; name a site, device or kind")
    return parsed


async def create_silence(
    conn: asyncpg.Connection,
    *,
    actor: str,
    now: datetime,
    matchers: Sequence[Matcher | str | Mapping[str, str]],
    ends_at: datetime | None,
    reason: str,
    starts_at: datetime | None = None,
    silence_id: str | None = None,
) -> Silence:
    """Create a silence (audited as ``create``). ``starts_at`` defaults to ``now``."""
    start = starts_at or now
    parsed = _validate(matchers, start, ends_at, reason, actor)
    assert ends_at is not None
    sid = silence_id or f"sil-{now:%Y%m%d}-{secrets.token_hex(4)}"
    async with conn.transaction():
        row = await store.insert_silence(conn, sid, matchers=[m.to_json() for m in parsed], starts_at=start,
                                         ends_at=ends_at, actor=actor, reason=reason, now=now)
        await store.insert_silence_audit(conn, sid, "create", actor, now, reason,
                     {"matchers": [str(m) for m in parsed], "starts_at": start.isoformat(),
                      "ends_at": ends_at.isoformat()})
    log.info("silence created %s", kv(id=sid, actor=actor, matchers=",".join(map(str, parsed))))
    return Silence.from_row(row)


async def expire_silence(conn: asyncpg.Connection, silence_id: str, *, actor: str, now: datetime,
                         reason: str = "") -> Silence:
    """End a silence now (audited as ``expire``); expiring an ended silence changes nothing
    but is still recorded."""
    async with conn.transaction():
        row = await store.lock_silence(conn, silence_id)
        if row is None:
            raise NotFound(f"no silence {silence_id!r}")
        current = Silence.from_row(row)
        if current.effective_end > now:
            row = await store.expire_silence_row(conn, silence_id, actor=actor, now=now)
            detail: dict[str, Any] = {}
        else:
            detail = {"problem": "already expired"}
        await store.insert_silence_audit(conn, silence_id, "expire", actor, now, reason, detail)
    return Silence.from_row(row)


async def get_silence(conn: asyncpg.Connection, silence_id: str) -> Silence:
    row = await store.silence_row(conn, silence_id)
    if row is None:
        raise NotFound(f"no silence {silence_id!r}")
    return Silence.from_row(row)


async def list_silences(conn: asyncpg.Connection, *, now: datetime, include_expired: bool = False
                        ) -> list[Silence]:
    """Silences pending or active at ``now`` (and, on request, the expired ones), newest first."""
    out = _readable(await store.silence_rows(conn))
    return out if include_expired else [s for s in out if s.effective_end > now]


async def active_silences(conn: asyncpg.Connection, now: datetime) -> list[Silence]:
    return _readable(await store.active_silence_rows(conn, now))


async def silence_audit(conn: asyncpg.Connection, silence_id: str) -> list[dict[str, Any]]:
    rows = await store.silence_audit_rows(conn, silence_id)
    return [{"action": r["action"], "actor": r["actor"], "at": r["at"], "reason": r["reason"],
             "detail": json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]}
            for r in rows]

