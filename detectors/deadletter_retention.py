"""Retention and per-vendor quota of the ``deadletters`` table (issue 17 item 15).

A dead letter keeps up to 256 KB of raw bytes, and a misbehaving vendor can make thousands a
second. Without bounds one vendor fills the disk and the detectors stop storing everybody's
readings. So, per vendor and within ``ingest.deadletter_retention_days``:

- at most ``ingest.deadletter_quota_rows`` dead letters are kept as rows; the rest are counted
  in ``deadletter_overflow`` (vendor, reason, cause ``quota``, day) and in
  ``hazmon_deadletters_dropped_total``;
- at most ``ingest.deadletter_quota_raw_bytes`` of raw bytes are kept; later dead letters are
  stored without their raw bytes (the detail says so; ``hazmon_deadletters_raw_dropped_total``);
- rows stored longer ago than the retention are deleted (``hazmon_deadletters_pruned_total``).

Retention and quota count by ``stored_at`` (migration 010), not by ``received_at``: a late or
replayed dead letter of an old message still takes disk now.

A full disk (SQLSTATE class 53: ``disk_full``, ``out_of_memory``…) degrades to counting: the
insert runs in a savepoint, so the rest of the detector's write (readings, events) commits, and
the letters are counted (cause ``disk_full``) instead of crashing the stage.

The usage per vendor is read from the table at most every :attr:`DeadLetterPolicy.usage_ttl_s`
and counted locally in between (several detectors share the table: a vendor may overshoot by
what the others stored meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from prometheus_client import Counter

from hazmon.contracts import DeadLetter
from hazmon.logs import kv

__all__ = ["DROPPED", "PRUNED", "RAW_DROPPED", "DeadLetterPolicy"]

log = logging.getLogger(__name__)

DROPPED = Counter("hazmon_deadletters_dropped_total", "dead letters counted but not stored (vendor quota or full disk)",
                  ["vendor", "reason", "cause"])
RAW_DROPPED = Counter("hazmon_deadletters_raw_dropped_total", "dead letters stored without their raw bytes (vendor raw quota)", ["vendor"])
PRUNED = Counter("hazmon_deadletters_pruned_total", "dead letters deleted after the retention")

RAW_NOT_KEPT = "（原始报文未保存：该厂商死信原文配额已满 / raw bytes not kept: the vendor's dead-letter raw quota is full）"

_USAGE = """
SELECT vendor, count(*) AS n, coalesce(sum(octet_length(raw)), 0)::bigint AS b
FROM deadletters WHERE vendor = ANY($1::text[]) AND stored_at > now() - make_interval(secs => $2)
GROUP BY vendor
"""

_OVERFLOW = """
INSERT INTO deadletter_overflow (vendor, reason, cause, day, letters, raw_bytes)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::bigint[], $6::bigint[])
ON CONFLICT (vendor, reason, cause, day)
DO UPDATE SET letters = deadletter_overflow.letters + EXCLUDED.letters, raw_bytes = deadletter_overflow.raw_bytes + EXCLUDED.raw_bytes
"""

_PRUNE = """
DELETE FROM deadletters WHERE ctid IN (
    SELECT ctid FROM deadletters WHERE stored_at < now() - make_interval(secs => $1) LIMIT $2)
"""

#: SQLSTATE class 53 (insufficient resources): disk full, out of memory, too many connections
_RESOURCES = "53"

Insert = Callable[[Sequence[DeadLetter]], Awaitable[None]]


@dataclass
class DeadLetterPolicy:
    retention_s: float = 30 * 86400.0
    quota_rows: int = 10_000
    quota_raw_bytes: int = 64 * 1024 * 1024
    prune_every_s: float = 300.0
    prune_batch: int = 5000
    usage_ttl_s: float = 30.0
    _usage: dict[str, list[float]] = field(default_factory=dict)  # vendor → [rows, raw bytes, read at]
    _pruned_at: float = 0.0

    @classmethod
    def from_settings(cls, ingest: object) -> DeadLetterPolicy:
        """From :class:`hazmon.settings.IngestSettings`."""
        return cls(
            retention_s=float(getattr(ingest, "deadletter_retention_days")) * 86400.0,  # noqa: B009 - duck-typed section
            quota_rows=int(getattr(ingest, "deadletter_quota_rows")),  # noqa: B009
            quota_raw_bytes=int(getattr(ingest, "deadletter_quota_raw_bytes")),  # noqa: B009
        )

    async def store(self, conn: asyncpg.Connection, letters: Sequence[DeadLetter], insert: Insert) -> int:
        """Insert what the quota admits (through ``insert``), count the rest; returns how many
        were inserted. Never raises for a full disk."""
        if not letters:
            return 0
        kept, over = await self._admit(conn, letters)
        if kept:
            try:
                async with conn.transaction():  # a savepoint inside the detector's write
                    await insert(kept)
            except asyncpg.PostgresError as exc:
                if not str(getattr(exc, "sqlstate", "") or "").startswith(_RESOURCES):
                    raise
                log.error("dead letters not stored, counted only %s", kv(letters=len(kept), error=str(exc)[:200]))
                await self._count(conn, kept, "disk_full")
                kept = []
        if over:
            await self._count(conn, over, "quota")
        await self._maybe_prune(conn)
        return len(kept)

    async def _admit(self, conn: asyncpg.Connection, letters: Sequence[DeadLetter]) -> tuple[list[DeadLetter], list[DeadLetter]]:
        now = time.monotonic()
        stale = sorted({d.vendor for d in letters if now - self._usage.get(d.vendor, (0, 0, -1e18))[2] > self.usage_ttl_s})
        if stale:
            rows = {r["vendor"]: r for r in await conn.fetch(_USAGE, stale, self.retention_s)}
            for v in stale:
                r = rows.get(v)
                self._usage[v] = [float(r["n"]) if r else 0.0, float(r["b"]) if r else 0.0, now]
        kept: list[DeadLetter] = []
        over: list[DeadLetter] = []
        for d in letters:
            u = self._usage[d.vendor]
            if u[0] >= self.quota_rows:
                over.append(d)
                continue
            if d.raw and u[1] + len(d.raw) > self.quota_raw_bytes:
                RAW_DROPPED.labels(d.vendor or "(unknown)").inc()
                d = d.model_copy(update={"raw": b"", "detail": (d.detail + " " + RAW_NOT_KEPT)[-2000:]})
            u[0] += 1
            u[1] += len(d.raw)
            kept.append(d)
        return kept, over

    async def _count(self, conn: asyncpg.Connection, letters: Sequence[DeadLetter], cause: str) -> None:
        agg: dict[tuple[str, str, object], list[int]] = {}
        today = datetime.now(UTC).date()
        for d in letters:
            DROPPED.labels(d.vendor or "(unknown)", d.reason.value, cause).inc()
            a = agg.setdefault((d.vendor, d.reason.value, today), [0, 0])
            a[0] += 1
            a[1] += len(d.raw)
        keys = list(agg)
        try:
            async with conn.transaction():
                await conn.execute(_OVERFLOW, [k[0] for k in keys], [k[1] for k in keys], [cause] * len(keys),
                                   [k[2] for k in keys], [agg[k][0] for k in keys], [agg[k][1] for k in keys])
        except asyncpg.PostgresError as exc:  # full disk: the Prometheus counter and the log line stay
            if not str(getattr(exc, "sqlstate", "") or "").startswith(_RESOURCES):
                raise
            log.error("dead-letter overflow not counted in the table %s", kv(letters=len(letters), cause=cause, error=str(exc)[:200]))

    async def _maybe_prune(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._pruned_at < self.prune_every_s:
            return
        self._pruned_at = now
        await self.prune(conn)

    async def prune(self, conn: asyncpg.Connection) -> int:
        """Delete dead letters (and overflow counts) older than the retention, a batch at a time."""
        total = 0
        try:
            async with conn.transaction():
                status = await conn.execute(_PRUNE, self.retention_s, self.prune_batch)
                total = int(status.split()[-1])
                await conn.execute("DELETE FROM deadletter_overflow WHERE day < (now() - make_interval(secs => $1))::date",
                                   self.retention_s)
        except asyncpg.PostgresError as exc:  # retried at the next sweep; the write goes on
            log.warning("dead-letter retention sweep failed %s", kv(error=str(exc)[:200]))
        if total:
            PRUNED.inc(total)
            self._usage.clear()  # re-read: the pruned rows no longer count
            log.info("dead letters pruned %s", kv(rows=total, retention_days=round(self.retention_s / 86400, 2)))
        return total
