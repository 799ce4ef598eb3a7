"""The storage writer: one micro-batch's rows and events into PostgreSQL, in one transaction.

Readings go in with binary COPY. The fast path copies straight into ``readings``; when that
hits an existing primary key (a replay after a restart, a duplicate delivery) the savepoint
is rolled back and the batch goes through a temporary staging table with
``INSERT … SELECT … ON CONFLICT DO NOTHING`` — so a replay adds no row, and the common case
costs one COPY. After a conflict the next batches use the staging path directly for a while
(a replay comes in runs). On TimescaleDB (docs/timescaledb.md) the staging path first leaves out
the rows already stored (``NOT EXISTS``): TimescaleDB 2.17 drops every row after the first
conflict with a compressed chunk (timescale/timescaledb#7672, fixed in 2.18.1), and a late row
into a compressed chunk may decompress its batch, so that one statement runs without the
``timescaledb.max_tuples_decompressed_per_dml_transaction`` limit, and a COPY that hits the limit
("tuple decompression limit exceeded", SQLSTATE 53400) goes through staging instead.

Everything else is small per batch and goes in with ``unnest`` arrays: the newest reading per
device and metric (``latest_readings``, never moved backwards by a late reading), presence
(``device_presence``: last seen, online/offline transitions in order), device status, device
events and events (upserted by id: firing, then resolved; a replayed "firing" never reopens a
resolved episode).

The restart path's reads (firing events, the recent window, presence) are in
:mod:`detectors.warmup`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hazmon.contracts import DeadLetter, DeadLetterReason, Event
from hazmon.logs import kv
from hazmon.pgerrors import classify, refusal_detail

from .batch import BatchOutput, Message
from .deadletter_retention import DeadLetterPolicy

__all__ = ["Storage", "WriteStats", "READING_COLUMNS", "CLEAN_COLUMNS"]

log = logging.getLogger(__name__)

READING_COLUMNS = ["device_id", "metric", "ts", "value", "unit", "seq", "flags", "received_at"]
#: clean rows leave flags to its default '{}'
CLEAN_COLUMNS = ["device_id", "metric", "ts", "value", "unit", "seq", "received_at"]

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS det_readings_stage (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""

#: the rows of the staging table not stored yet (a replay's duplicates never reach the INSERT)
_MERGE = """
INSERT INTO readings
SELECT s.* FROM det_readings_stage s
WHERE NOT EXISTS (SELECT 1 FROM readings r
                  WHERE r.device_id = s.device_id AND r.metric = s.metric AND r.ts = s.ts)
ON CONFLICT DO NOTHING
"""
#: TimescaleDB's per-statement limit on decompressed tuples; NULL on plain PostgreSQL
_DECOMPRESS_GUC = "timescaledb.max_tuples_decompressed_per_dml_transaction"

_LATEST = """
INSERT INTO latest_readings (device_id, metric, ts, value, unit, flags)
SELECT d, m, t, v, u, CASE WHEN f = '' THEN '{}'::text[] ELSE string_to_array(f, ',') END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[], $6::text[]) AS x(d, m, t, v, u, f)
ON CONFLICT (device_id, metric) DO UPDATE
SET ts = EXCLUDED.ts, value = EXCLUDED.value, unit = EXCLUDED.unit, flags = EXCLUDED.flags
WHERE latest_readings.ts < EXCLUDED.ts
"""

_SEEN = """
INSERT INTO device_presence (device_id, state, since, last_seen)
SELECT d, 'online', t, t FROM unnest($1::text[], $2::timestamptz[]) AS x(d, t)
ON CONFLICT (device_id) DO UPDATE
SET last_seen = GREATEST(device_presence.last_seen, EXCLUDED.last_seen)
"""

_PRESENCE = """
INSERT INTO device_presence (device_id, state, since, last_seen)
SELECT d, s, t, t FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x(d, s, t)
ON CONFLICT (device_id) DO UPDATE
SET state = EXCLUDED.state, since = EXCLUDED.since,
    last_seen = CASE WHEN EXCLUDED.state = 'online' THEN GREATEST(device_presence.last_seen, EXCLUDED.last_seen)
                     ELSE device_presence.last_seen END
WHERE device_presence.since <= EXCLUDED.since
"""

_STATUS = """
INSERT INTO device_status (device_id, ts, reason, state, battery_pct, signal_dbm, mains_power, received_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::float8[], $6::float8[],
                     $7::bool[], $8::timestamptz[])
ON CONFLICT DO NOTHING
"""

_DEVICE_EVENTS = """
INSERT INTO device_events (device_id, ts, code, component, active, zone, detail, received_at)
SELECT d, t, c, comp, a, z, det::jsonb, r
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[],
            $8::timestamptz[]) AS x(d, t, c, comp, a, z, det, r)
ON CONFLICT DO NOTHING
"""

_EVENT = """
INSERT INTO events (id, kind, domain, severity, state, device_id, site_id, component, zone, starts_at,
                    ends_at, detected_at, summary, evidence, labels, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15::jsonb, now())
ON CONFLICT (id) DO UPDATE
SET state = EXCLUDED.state, ends_at = EXCLUDED.ends_at, evidence = EXCLUDED.evidence, updated_at = now()
WHERE events.state = 'firing'
"""

_DEADLETTERS = """
INSERT INTO deadletters (id, stage, source, vendor, device_id, reason, detail, raw, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::bytea[], $9::timestamptz[])
ON CONFLICT (id) DO NOTHING
"""


@dataclass
class WriteStats:
    readings: int = 0
    seconds: float = 0.0
    merged: bool = False  # the staging (replay) path was used
    #: records the database refused for a data reason (hazmon.pgerrors), as dead letters to produce
    refused: list[DeadLetter] = field(default_factory=list)
    #: derived rows (latest value, presence, a dead letter itself) refused and left out, logged
    dropped: int = 0


def _event_args(ev: Event) -> tuple[Any, ...]:
    return (
        ev.id, ev.kind, ev.domain, ev.severity.value, ev.state.value, ev.device_id, ev.site_id, ev.component,
        ev.zone, ev.starts_at, ev.ends_at, ev.detected_at, ev.summary,
        json.dumps([e.model_dump(mode="json") for e in ev.evidence], ensure_ascii=False),
        json.dumps(ev.labels, ensure_ascii=False),
    )


@dataclass(slots=True)
class _Part:
    """The rows of one consumed message (or one event): what is stored, or refused, together."""

    msg: Message | None
    readings: list[tuple]
    flagged: list[tuple]
    device_events: list[tuple]
    statuses: list[tuple]
    events: list[Event]

    @property
    def device_id(self) -> str:
        for rows in (self.readings, self.flagged, self.device_events, self.statuses):
            if rows:
                return str(rows[0][0])
        return self.events[0].device_id if self.events else ""


def _parts(out: BatchOutput) -> list[_Part]:
    parts: list[_Part] = []
    r0 = f0 = d0 = s0 = 0
    for msg, r1, f1, d1, s1 in out.marks:
        if r1 > r0 or f1 > f0 or d1 > d0 or s1 > s0:
            parts.append(_Part(msg, out.readings[r0:r1], out.flagged_readings[f0:f1], out.device_events[d0:d1],
                               out.statuses[s0:s1], []))
        r0, f0, d0, s0 = r1, f1, d1, s1
    if r0 < len(out.readings) or f0 < len(out.flagged_readings) or d0 < len(out.device_events) or s0 < len(out.statuses):
        # rows no mark covers (a caller that fills a BatchOutput by hand): one part
        parts.append(_Part(None, out.readings[r0:], out.flagged_readings[f0:], out.device_events[d0:],
                           out.statuses[s0:], []))
    parts.extend(_Part(None, [], [], [], [], [ev]) for ev in out.events)
    return parts


def _refused_letter(part: _Part, exc: BaseException, at: datetime) -> DeadLetter:
    if part.msg is not None:
        source, raw = part.msg.source, part.msg.value
    else:
        ev = part.events[0] if part.events else None
        source = f"events:{ev.id}" if ev else "detectors"
        raw = ev.model_dump_json().encode() if ev else b""
    return DeadLetter(
        id=hashlib.sha256(f"detectors|{source}|refused".encode()).hexdigest()[:32], stage="detectors", source=source,
        device_id=part.device_id, reason=DeadLetterReason.REFUSED, detail=refusal_detail(exc), raw=raw,
        received_at=at,
    )


class Storage:
    """Writes batches on one dedicated connection (its temp staging table lives there).

    Poison-proof (issue 17): a batch the database refuses for a data reason
    (:func:`hazmon.pgerrors.classify`) is written again by bisection, message by message in
    savepoints, in one transaction: every message the database takes is stored, each one it
    refuses comes back in :attr:`WriteStats.refused` as a dead letter ``refused`` with the
    SQLSTATE and PostgreSQL's message (the service produces it before committing the offsets).
    Any other error is raised (the service retries: an outage, or a bug that is the same for
    every record)."""

    #: after a COPY conflict, this many batches go through staging before trying COPY again
    REPLAY_RUN = 20

    #: latest values and last-seen times are coalesced over batches for this long: the
    #: console reads them at human speed, and one upsert per device per second is what keeps
    #: the write near bare COPY speed
    COALESCE_S = 1.0

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.deadletter_policy = DeadLetterPolicy()
        self._staging_left = 0
        self._latest: dict[tuple[str, str], tuple] = {}
        self._seen: dict[str, datetime] = {}
        self._flushed = time.monotonic()
        #: TimescaleDB's decompression limit as configured (``None``: plain PostgreSQL)
        self._decompress_limit: str | None = None

    def _merge(self, out: BatchOutput) -> None:
        latest = self._latest
        for key, row in out.latest.items():
            prev = latest.get(key)
            if prev is None or prev[2] < row[2]:
                latest[key] = row
        seen = self._seen
        for dev, t in out.seen.items():
            prev_t = seen.get(dev)
            if prev_t is None or prev_t < t:
                seen[dev] = t

    async def flush(self) -> None:
        """Write the coalesced latest values and last-seen times now."""
        try:
            async with self.conn.transaction():
                await self._flush_coalesced()
        except Exception as exc:
            if classify(exc) != "data":
                raise
            async with self.conn.transaction():
                await self._coalesced_each()
        self._clear_coalesced()

    async def _flush_coalesced(self) -> None:
        conn = self.conn
        if self._latest:
            cols = list(zip(*self._latest.values(), strict=True))
            flags = [",".join(f) for f in cols[5]]
            await conn.execute(_LATEST, cols[0], cols[1], cols[2], cols[3], cols[4], flags)
        if self._seen:
            await conn.execute(_SEEN, list(self._seen.keys()), list(self._seen.values()))

    def _clear_coalesced(self) -> None:
        # only once the transaction that wrote them committed: a rolled-back write keeps them
        self._latest = {}
        self._seen = {}
        self._flushed = time.monotonic()

    async def prepare(self) -> None:
        await self.conn.execute(_STAGING)
        self._decompress_limit = await self.conn.fetchval("SELECT current_setting($1, true)", _DECOMPRESS_GUC)

    async def write(self, out: BatchOutput) -> WriteStats:
        stats = WriteStats(readings=len(out.readings) + len(out.flagged_readings))
        started = time.perf_counter()
        self._merge(out)
        flush = bool(out.presence or out.statuses or time.monotonic() - self._flushed >= self.COALESCE_S)
        try:
            async with self.conn.transaction():
                if out.readings or out.flagged_readings:
                    stats.merged = await self._readings(out.readings, out.flagged_readings)
                if flush:
                    await self._flush_coalesced()  # presence transitions need last_seen written first
                await self._small(out.device_events, out.statuses, out.events)
                await self._presence_and_letters(out)
        except Exception as exc:
            if classify(exc) != "data":
                raise
            log.warning("batch refused by the database, isolating the record %s", kv(error=refusal_detail(exc)[:300]))
            await self._write_isolated(out, stats, flush)
        if flush:
            self._clear_coalesced()
        stats.seconds = time.perf_counter() - started
        return stats

    async def _small(self, device_events: list[tuple], statuses: list[tuple], events: Sequence[Event]) -> None:
        conn = self.conn
        if statuses:
            await conn.execute(_STATUS, *map(list, zip(*statuses, strict=True)))
        if device_events:
            await conn.execute(_DEVICE_EVENTS, *map(list, zip(*device_events, strict=True)))
        if events:
            await conn.executemany(_EVENT, [_event_args(e) for e in events])

    async def _presence_and_letters(self, out: BatchOutput) -> None:
        if out.presence:
            items = sorted(out.presence.items())
            await self.conn.execute(_PRESENCE, [d for d, _ in items], [s for _, (s, _t) in items],
                                    [t for _, (_s, t) in items])
        if out.deadletters:
            await self._deadletters(out.deadletters)

    # --- the poison path ------------------------------------------------------------------
    async def _write_isolated(self, out: BatchOutput, stats: WriteStats, flush: bool) -> None:
        """The batch again, in one transaction: parts (messages, events) by bisection in
        savepoints, then the derived rows, each alone when they are refused together."""
        refused: list[tuple[_Part, BaseException]] = []
        async with self.conn.transaction():
            parts = _parts(out)
            await self._bisect(parts, refused, stats)
            at = datetime.now(UTC)
            for part, exc in refused:
                letter = _refused_letter(part, exc, at)
                stats.refused.append(letter)
                log.error("record refused by the database, dead-lettered %s",
                          kv(source=letter.source, device=letter.device_id, detail=letter.detail[:300]))
                bad = {(r[0], r[1], r[2]) for r in (*part.readings, *part.flagged)}
                for key, row in list(self._latest.items()):
                    if (key[0], key[1], row[2]) in bad:
                        del self._latest[key]
            if flush:
                await self._each_or_drop(self._flush_coalesced, self._coalesced_each, stats)
            await self._each_or_drop(lambda: self._presence_and_letters(out), lambda: self._rest_each(out, stats), stats)

    async def _bisect(self, parts: list[_Part], refused: list[tuple[_Part, BaseException]], stats: WriteStats) -> None:
        if not parts:
            return
        try:
            async with self.conn.transaction():  # savepoint
                clean = [r for p in parts for r in p.readings]
                flagged = [r for p in parts for r in p.flagged]
                if clean or flagged:
                    stats.merged = await self._readings(clean, flagged) or stats.merged
                await self._small([r for p in parts for r in p.device_events], [r for p in parts for r in p.statuses],
                                  [e for p in parts for e in p.events])
            return
        except Exception as exc:
            if classify(exc) != "data":
                raise
            if len(parts) == 1:
                refused.append((parts[0], exc))
                return
        mid = len(parts) // 2
        await self._bisect(parts[:mid], refused, stats)
        await self._bisect(parts[mid:], refused, stats)

    async def _each_or_drop(self, together: Any, each: Any, stats: WriteStats) -> None:
        try:
            async with self.conn.transaction():
                await together()
        except Exception as exc:
            if classify(exc) != "data":
                raise
            await each()

    async def _one(self, what: str, key: object, sql: str, *args: Any) -> bool:
        try:
            async with self.conn.transaction():
                await self.conn.execute(sql, *args)
            return True
        except Exception as exc:
            if classify(exc) != "data":
                raise
            log.error("row refused by the database, left out %s", kv(table=what, key=str(key)[:200],
                                                                       detail=refusal_detail(exc)[:300]))
            return False

    async def _coalesced_each(self) -> None:
        for (dev, metric), row in self._latest.items():
            await self._one("latest_readings", (dev, metric), _LATEST, [row[0]], [row[1]], [row[2]], [row[3]], [row[4]],
                            [",".join(row[5])])
        for dev, t in self._seen.items():
            await self._one("device_presence", dev, _SEEN, [dev], [t])

    async def _rest_each(self, out: BatchOutput, stats: WriteStats) -> None:
        for dev, (state, since) in sorted(out.presence.items()):
            if not await self._one("device_presence", dev, _PRESENCE, [dev], [state], [since]):
                stats.dropped += 1
        for d in out.deadletters:
            if await self._one("deadletters", d.id, _DEADLETTERS, *([v] for v in _letter_row(d))):
                continue
            # the landing place itself refused it: keep the raw bytes under a plain detail
            plain = d.model_copy(update={"vendor": ascii(d.vendor)[1:-1][:64], "device_id": ascii(d.device_id)[1:-1][:64],
                                         "source": ascii(d.source)[1:-1][:1000],
                                         "detail": f"dead letter refused by the database; original detail: {ascii(d.detail)}"[:2000]})
            if not await self._one("deadletters", d.id, _DEADLETTERS, *([v] for v in _letter_row(plain))):
                stats.dropped += 1

    async def _copy(self, table: str, clean: list[tuple], flagged: list[tuple]) -> None:
        if clean:
            await self.conn.copy_records_to_table(table, records=clean, columns=CLEAN_COLUMNS)
        if flagged:
            await self.conn.copy_records_to_table(table, records=flagged, columns=READING_COLUMNS)

    async def _readings(self, clean: list[tuple], flagged: list[tuple]) -> bool:
        conn = self.conn
        if self._staging_left <= 0:
            try:
                async with conn.transaction():  # savepoint
                    await self._copy("readings", clean, flagged)
                return False
            except (asyncpg.UniqueViolationError, asyncpg.ConfigurationLimitExceededError) as exc:
                # a duplicate, or (TimescaleDB) the decompression limit of a compressed chunk
                self._staging_left = self.REPLAY_RUN
                log.info("readings already stored, merging %s",
                         kv(rows=len(clean) + len(flagged), sqlstate=exc.sqlstate))
        self._staging_left -= 1
        await self._copy("det_readings_stage", clean, flagged)
        limit = self._decompress_limit
        if limit is not None:  # for this statement only (set_config(…, true) ends with the transaction)
            await conn.execute("SELECT set_config($1, '0', true)", _DECOMPRESS_GUC)
        await conn.execute(_MERGE)
        if limit is not None:
            await conn.execute("SELECT set_config($1, $2, true)", _DECOMPRESS_GUC, limit)
        await conn.execute("TRUNCATE det_readings_stage")
        return True

    async def _deadletters(self, letters: Sequence[DeadLetter]) -> None:
        # retention and per-vendor quota; a full disk degrades to counting (detectors/deadletter_retention.py)
        await self.deadletter_policy.store(self.conn, letters, self._insert_deadletters)

    async def _insert_deadletters(self, letters: Sequence[DeadLetter]) -> None:
        cols: list[list[Any]] = [[] for _ in range(9)]
        for d in letters:
            for i, v in enumerate(_letter_row(d)):
                cols[i].append(v)
        await self.conn.execute(_DEADLETTERS, *cols)

    async def write_deadletters(self, letters: Sequence[DeadLetter]) -> None:
        if letters:
            await self._deadletters(letters)


def _letter_row(d: DeadLetter) -> tuple[Any, ...]:
    return (d.id, d.stage, d.source, d.vendor, d.device_id, d.reason.value, d.detail, d.raw, d.received_at)
