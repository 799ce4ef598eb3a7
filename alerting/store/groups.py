"""``alert_groups``: the aggregation groups and their notification log (nflog).

A group row is created when its first alert is stored (``next_flush_at`` = now + group_wait);
a resolved alert pulls its group's next flush forward, never back. A flush locks the due
rows (``FOR UPDATE SKIP LOCKED``: two workers never flush one group), then advances or drops
them. The decisions are :mod:`alerting.group`'s.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alerting.group import GroupState

__all__ = ["NewGroup", "GroupAdvance", "create_groups", "pull_forward", "due_group_keys", "lock_due_groups",
           "group_state", "drop_groups", "advance_groups"]

_SEP = "\x1f"  # joins id lists sent as one text per row (ids never hold a control character)


@dataclass(frozen=True, slots=True)
class NewGroup:
    """A group an alert joins: its key, route, ``group_by`` labels (JSON) and first flush."""

    key: str
    route_id: str
    labels: str
    due: datetime


@dataclass(frozen=True, slots=True)
class GroupAdvance:
    """A flushed group that stays: its next flush and nflog (``notify``: it told someone now)."""

    key: str
    next_flush_at: datetime
    notify: bool
    notified_ids: Sequence[str]
    resolved_ids: Sequence[str]


async def _insert(conn: asyncpg.Connection, now: datetime, rows: Sequence[NewGroup], on_conflict: str
                  ) -> None:
    # one row per group: two alerts of a group resolved in one round would make
    # ON CONFLICT DO UPDATE touch the row twice (CardinalityViolationError)
    unique = list({g.key: g for g in rows}.values())
    if not unique:
        return
    await conn.execute(
        """INSERT INTO alert_groups (key, route_id, labels, created_at, next_flush_at)
           SELECT u.key, u.route_id, u.labels::jsonb, $1, u.due
             FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
                  AS u(key, route_id, labels, due)
           ON CONFLICT (key) """ + on_conflict,
        now, [g.key for g in unique], [g.route_id for g in unique], [g.labels for g in unique],
        [g.due for g in unique])


async def create_groups(conn: asyncpg.Connection, now: datetime, rows: Sequence[NewGroup]) -> None:
    """The groups new alerts joined (an existing group keeps its timers)."""
    await _insert(conn, now, rows, "DO NOTHING")


async def pull_forward(conn: asyncpg.Connection, now: datetime, rows: Sequence[NewGroup]) -> None:
    """Groups of resolved alerts flush by ``due`` at the latest (a dropped group is recreated,
    so send_resolved receivers still hear it)."""
    await _insert(conn, now, rows,
                  "DO UPDATE SET next_flush_at = LEAST(alert_groups.next_flush_at, EXCLUDED.next_flush_at)")


async def due_group_keys(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, limit: int = 500
                         ) -> list[str]:
    """Keys of groups due at ``now``, soonest first."""
    return [r["key"] for r in await conn.fetch(
        "SELECT key FROM alert_groups WHERE next_flush_at <= $1 ORDER BY next_flush_at LIMIT $2", now, limit)]


async def lock_due_groups(conn: asyncpg.Connection, now: datetime, *, limit: int, done: Collection[str] = (),
                          only: Sequence[str] | None = None) -> list[asyncpg.Record]:
    """Up to ``limit`` due groups not in ``done`` (and among ``only``, when given), locked;
    groups another worker holds are skipped."""
    among = "" if only is None else " AND key = ANY($4::text[])"
    return list(await conn.fetch(
        f"""SELECT * FROM alert_groups WHERE next_flush_at <= $1 AND NOT (key = ANY($3::text[])){among}
            ORDER BY next_flush_at, key LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now, limit, list(done), *(() if only is None else (list(only),))))


def group_state(g: asyncpg.Record) -> GroupState:
    """The :class:`~alerting.group.GroupState` of an ``alert_groups`` row."""
    return GroupState(g["key"], g["route_id"], g["created_at"], g["next_flush_at"], g["last_flush_at"],
                      g["last_notify_at"], frozenset(g["notified_ids"]), frozenset(g["resolved_ids"]),
                      g["flushes"])


async def drop_groups(conn: asyncpg.Connection, keys: Sequence[str]) -> None:
    """Finished groups (nothing fires any more)."""
    if keys:
        await conn.execute("DELETE FROM alert_groups WHERE key = ANY($1::text[])", list(keys))


async def advance_groups(conn: asyncpg.Connection, now: datetime, rows: Sequence[GroupAdvance]) -> None:
    """Store each flushed group's next flush and notification log."""
    if not rows:
        return
    await conn.execute(
        """UPDATE alert_groups g SET next_flush_at=u.next_at, last_flush_at=$1, flushes=g.flushes+1,
               last_notify_at=CASE WHEN u.notify THEN $1 ELSE g.last_notify_at END,
               notified_ids=string_to_array(u.notified, $7), resolved_ids=string_to_array(u.resolved, $7)
           FROM unnest($2::text[], $3::timestamptz[], $4::bool[], $5::text[], $6::text[])
                AS u(key, next_at, notify, notified, resolved)
           WHERE g.key=u.key""",
        now, [k.key for k in rows], [k.next_flush_at for k in rows], [k.notify for k in rows],
        [_SEP.join(k.notified_ids) for k in rows], [_SEP.join(k.resolved_ids) for k in rows], _SEP)
