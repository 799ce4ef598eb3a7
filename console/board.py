"""The live alarm board (报警看板): a hub that watches the alerts table and fans changes out
to every open page over server-sent events, each filtered by its viewer's scope.

Why polling and not LISTEN/NOTIFY: alerting writes alerts from several processes and may not
notify; a cursor on ``alerts.updated_at`` sees every writer. Rows committed late with an older
``updated_at`` are caught by re-reading an overlap window; ``(id, version)`` pairs already sent
are skipped, so a change is pushed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from console.scope import Scope
from hazmon.logs import kv

__all__ = ["BoardHub", "Subscriber", "BOARD_COLUMNS", "board_item"]

log = logging.getLogger(__name__)

BOARD_COLUMNS = """a.id, a.kind, a.domain, a.severity, a.state, a.phase, a.verdict, a.device_id, a.site_id,
    a.township_id, a.department_ids, a.summary, a.starts_at, a.ends_at, a.acked_at, a.acked_by, a.closed_at,
    a.escalation_step, a.suppressed_by, a.version, a.updated_at,
    coalesce(s.name, a.site_id) AS site_name, coalesce(t.name, a.township_id) AS township_name"""
BOARD_FROM = "alerts a LEFT JOIN sites s ON s.id = a.site_id LEFT JOIN townships t ON t.id = a.township_id"


def board_item(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["department_ids"] = list(d.get("department_ids") or [])
    return d


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@dataclass(eq=False)
class Subscriber:
    scope: Scope
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=500))
    overflowed: bool = False


class BoardHub:
    def __init__(self, pool: Any, *, clock: Callable[[], datetime], poll_s: float = 1.0, overlap_s: float = 5.0) -> None:
        self.pool = pool
        self.clock = clock
        self.poll_s = poll_s
        self.overlap = timedelta(seconds=overlap_s)
        self.subscribers: set[Subscriber] = set()
        self._sent: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._cursor: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            self._cursor = await conn.fetchval("SELECT max(updated_at) FROM alerts") or self.clock()
        self._task = asyncio.create_task(self._run(), name="board-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in list(self.subscribers):
            sub.queue.put_nowait("") if not sub.queue.full() else None

    def subscribe(self, scope: Scope) -> Subscriber:
        sub = Subscriber(scope)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a DB hiccup must not end the board; the next poll retries
                log.warning("board poll failed %s", kv(error=repr(exc)))
            await asyncio.sleep(self.poll_s)

    async def poll_once(self) -> int:
        """Read changed alerts and push them; returns how many changes were pushed."""
        assert self._cursor is not None
        since = self._cursor - self.overlap
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {BOARD_COLUMNS} FROM {BOARD_FROM} WHERE a.updated_at > $1 ORDER BY a.updated_at LIMIT 1000",
                since,
            )
        pushed = 0
        for row in rows:
            key = (row["id"], row["version"])
            if row["updated_at"] > self._cursor:
                self._cursor = row["updated_at"]
            if key in self._sent:
                continue
            self._sent[key] = None
            while len(self._sent) > 20_000:
                self._sent.popitem(last=False)
            item = board_item(row)
            data = json.dumps({"type": "alert", "alert": item}, default=_json_default, ensure_ascii=False)
            for sub in list(self.subscribers):
                if sub.scope.sees_alert(item):
                    self._offer(sub, data)
            pushed += 1
        return pushed

    def _offer(self, sub: Subscriber, data: str) -> None:
        try:
            sub.queue.put_nowait(data)
        except asyncio.QueueFull:
            # a stalled page: tell it to reload the board instead of queueing without bound
            sub.overflowed = True
