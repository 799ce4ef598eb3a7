"""The live alarm board (报警看板): a hub that watches the alerts table and fans changes out
to every open page over server-sent events, each filtered by its viewer's scope.

Why polling and not LISTEN/NOTIFY: alerting writes alerts from several processes and may not
notify; a cursor on ``alerts.updated_at`` sees every writer. Rows committed late with an older
``updated_at`` are caught by re-reading an overlap window; ``(id, version)`` pairs already sent
are skipped, so a change is pushed once.

One hub per console process serves every stream: one poll query per ``poll_s`` however many
pages are open, and a stream holds no database connection (issue 17: eight tabs used to take
the pool). Streams are capped per user and in total (:class:`StreamLimitError` → 429), and the
hub re-checks all open streams' sessions in one query every ``recheck_s``, so a logout, a
deactivated account or an expired session ends its streams.
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

from alerting import queries
from alerting.queries import BOARD_COLUMNS, BOARD_FROM
from console.scope import Scope
from console.words import summary_words, suppressed_words
from hazmon.errors import HazmonError
from hazmon.logs import kv

__all__ = ["BoardHub", "Subscriber", "StreamLimitError", "END", "BOARD_COLUMNS", "BOARD_FROM", "board_item"]
# BOARD_COLUMNS and BOARD_FROM are alerting.queries'; named here too, as bench/console_api.py imports them

log = logging.getLogger(__name__)


def board_item(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["department_ids"] = list(d.get("department_ids") or [])
    # what happened in words: 电梯困人, not the detector's "设备上报 trapped" (console/words.py)
    d["summary_zh"] = summary_words(str(d.get("kind") or ""), str(d.get("summary") or ""))
    if "suppressed_by" in d:
        d["suppressed_zh"] = suppressed_words(d["suppressed_by"])
    return d


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class StreamLimitError(HazmonError):
    """A new stream would exceed the per-user or the process-wide cap; the message is for users."""


#: what a subscriber's queue receives when its stream must end (hub stopping, session gone)
END = ""


@dataclass(eq=False)
class Subscriber:
    scope: Scope
    username: str = ""
    session_hash: str = ""
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=500))
    overflowed: bool = False
    #: why the hub ended this stream ("stopping", "session"), empty while it runs
    ended: str = ""


class BoardHub:
    def __init__(
        self, pool: Any, *, clock: Callable[[], datetime], poll_s: float = 1.0, overlap_s: float = 5.0,
        per_user: int = 10, max_streams: int = 1000, recheck_s: float = 30.0,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.poll_s = poll_s
        self.overlap = timedelta(seconds=overlap_s)
        self.per_user = per_user
        self.max_streams = max_streams
        self.recheck_s = recheck_s
        self.subscribers: set[Subscriber] = set()
        self._by_user: dict[str, int] = {}
        self._sent: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._cursor: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_recheck = 0.0

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            self._cursor = await queries.latest_change(conn) or self.clock()
        self._task = asyncio.create_task(self._run(), name="board-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in list(self.subscribers):
            self._end(sub, "stopping")

    def subscribe(self, scope: Scope, *, username: str = "", session_hash: str = "") -> Subscriber:
        """Register a stream, or :class:`StreamLimitError` when a cap is reached (checked and
        counted in one step: no await in between, so concurrent opens cannot overshoot)."""
        if len(self.subscribers) >= self.max_streams:
            log.warning("stream refused %s", kv(user=username, reason="max_streams", open=len(self.subscribers)))
            raise StreamLimitError(f"实时推送连接已满（{self.max_streams} 个），请稍后重试 (too many live streams)")
        if self._by_user.get(username, 0) >= self.per_user:
            log.warning("stream refused %s", kv(user=username, reason="per_user", open=self._by_user[username]))
            raise StreamLimitError(
                f"同一账号最多同时打开 {self.per_user} 个实时推送，请关闭多余的页面后重试 "
                f"(at most {self.per_user} live streams per user)"
            )
        sub = Subscriber(scope, username=username, session_hash=session_hash)
        self.subscribers.add(sub)
        self._by_user[username] = self._by_user.get(username, 0) + 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Idempotent: the stream's ``finally`` and the response's background task both call it."""
        if sub not in self.subscribers:
            return
        self.subscribers.discard(sub)
        left = self._by_user.get(sub.username, 0) - 1
        if left > 0:
            self._by_user[sub.username] = left
        else:
            self._by_user.pop(sub.username, None)

    def _end(self, sub: Subscriber, reason: str) -> None:
        sub.ended = reason
        while True:  # make room for the end marker: an ending stream needs no backlog
            try:
                sub.queue.put_nowait(END)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.poll_once()
                if self.subscribers and loop.time() - self._last_recheck >= self.recheck_s:
                    await self.recheck_sessions()
                    self._last_recheck = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a DB hiccup must not end the board; the next poll retries
                log.warning("board poll failed %s", kv(error=repr(exc)))
            await asyncio.sleep(self.poll_s)

    async def recheck_sessions(self) -> int:
        """End the streams whose session ended (logout, deactivation, expiry); one query for
        all of them. Returns how many were ended."""
        hashes = sorted({s.session_hash for s in self.subscribers if s.session_hash})
        if not hashes:
            return 0
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT s.token_hash FROM console_sessions s JOIN console_users u USING (username)
                   WHERE s.token_hash = ANY($1::text[]) AND s.expires_at > $2 AND u.active""",
                hashes, self.clock(),
            )
        gone = set(hashes) - {r["token_hash"] for r in rows}
        ended = 0
        for sub in list(self.subscribers):
            # only streams whose session was asked about: one opened meanwhile is not judged
            if sub.session_hash in gone and not sub.ended:
                self._end(sub, "session")
                ended += 1
        if ended:
            log.info("streams ended %s", kv(reason="session ended", streams=ended))
        return ended

    async def poll_once(self) -> int:
        """Read changed alerts and push them; returns how many changes were pushed."""
        assert self._cursor is not None
        since = self._cursor - self.overlap
        async with self.pool.acquire() as conn:
            rows = await queries.changed_since(conn, since, limit=1000)
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
