"""The watchdog's checks, each one request: the stages' health endpoints, the SMS provider's
API, and one round on the database (a fresh connection each round — so a database that takes
no new session, or that a failover made read-only, is seen — which reads the outbox, the SMS
attempts, the canaries and the stages' heartbeats, and writes the watchdog's own heartbeat as
the write probe).

No Kafka and no alerting code: what alerting did is read from the tables it writes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

__all__ = ["CanaryFamily", "DbRound", "probe_endpoints", "probe_provider", "database_round",
           "CANARY_ALERT_MARK"]

#: the words of the canary's alarm (issue 20 item 1, alerting/canary.py): an open alert naming
#: them, or of its kind ``system.canary_broken`` (not the announcement ``system.canary``, nor the
#: warning ``system.canary_degraded``), means alerting has told the duty operator that the
#: monitoring path is broken
CANARY_ALERT_MARK = "监测链路中断"

#: connection-level failures: the database is unreachable (as opposed to refusing a write)
_UNREACHABLE = (OSError, TimeoutError, asyncio.TimeoutError, asyncpg.InterfaceError,
                asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError,
                asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError)


def _why(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", "")
    text = str(exc) or type(exc).__name__
    return (f"SQLSTATE {state}: {text}" if state else f"{type(exc).__name__}: {text}")[:300]


async def probe_endpoints(client: httpx.AsyncClient, stages: dict[str, str]) -> dict[str, str]:
    """Each stage's health endpoint: name → '' when it answered 200, else what went wrong."""

    async def one(url: str) -> str:
        try:
            resp = await client.get(url)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
        return "" if resp.status_code == 200 else f"HTTP {resp.status_code}"

    names = sorted(stages)
    got = await asyncio.gather(*(one(stages[n]) for n in names))
    return dict(zip(names, got, strict=True))


async def probe_provider(client: httpx.AsyncClient, url: str) -> str:
    """The SMS provider's API, reached without sending anything: any HTTP answer from its host
    (a bare GET of a send endpoint is refused, which proves it is there); '' or what failed.
    Whether it *sends* is read from alerting's attempts (:class:`DbRound` ``sms_failures``)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return f"短信接口地址无效：{url!r}"
    try:
        await client.get(url)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
    return ""


@dataclass(frozen=True, slots=True)
class CanaryFamily:
    family: str
    devices: int
    #: seconds since the family's last canary reached alerting (never: since its row was made)
    age_s: float
    #: alerting has raised 监测链路中断 for it (canary_state.broken_since, or an open alert)
    said: bool


@dataclass
class DbRound:
    """What one round on the database found. ``reachable`` False: nothing else is known."""

    reachable: bool = False
    error: str = ""
    #: the write probe (the watchdog's heartbeat): True, False (refused: ``write_error``), None unknown
    writable: bool | None = None
    write_error: str = ""
    #: seconds the oldest due outbox row has waited (None: none due, or unknown)
    outbox_overdue_s: float | None = None
    #: SMS attempts failed in a row since the last that succeeded, within the window, and the last error
    sms_failures: int | None = None
    sms_error: str = ""
    canaries: list[CanaryFamily] | None = None
    #: (stage, instance) → seconds since its heartbeat
    heartbeats: dict[tuple[str, str], float] | None = None
    conn: Any = field(default=None, repr=False)

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except Exception:  # noqa: BLE001 - a dead connection: drop it
                conn.terminate()


_HEARTBEAT = """
INSERT INTO stage_heartbeats (stage, instance, started_at, beat_at, detail)
VALUES ('watchdog', $1, $2, now(), $3::jsonb)
ON CONFLICT (stage, instance) DO UPDATE SET started_at = EXCLUDED.started_at, beat_at = now(),
    detail = EXCLUDED.detail"""

_OUTBOX = """
SELECT extract(epoch FROM now() - min(next_attempt_at))::float8 AS overdue
FROM notifications WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()"""

_SMS = """
WITH a AS (
    SELECT a.at, a.outcome, a.error FROM notification_attempts a
    JOIN notifications n ON n.id = a.notification_id
    WHERE n.channel = 'sms' AND a.at > now() - make_interval(secs => $1)),
ok AS (SELECT max(at) AS at FROM a WHERE outcome IN ('sent', 'delivered'))
SELECT count(*) AS failures, (array_agg(a.error ORDER BY a.at DESC))[1] AS error
FROM a, ok WHERE a.outcome IN ('failed', 'retrying') AND a.at > coalesce(ok.at, '-infinity')"""

_CANARIES = """
SELECT c.family, count(*) AS devices,
       extract(epoch FROM now() - max(coalesce(c.arrived_at, c.updated_at)))::float8 AS age,
       bool_or(c.broken_since IS NOT NULL) AS said
FROM canary_state c GROUP BY c.family ORDER BY c.family"""

_CANARY_ALERT = """
SELECT count(*) FROM alerts
WHERE state = 'firing' AND phase <> 'closed'
  AND (summary LIKE '%' || $1 || '%' OR kind = 'system.canary_broken')"""

_HEARTBEATS = """
SELECT stage, instance, extract(epoch FROM now() - beat_at)::float8 AS age FROM stage_heartbeats
WHERE NOT (stage = 'watchdog' AND instance = $1)"""


async def database_round(dsn: str, *, timeout_s: float, instance: str, started_at: Any,
                         detail: dict[str, Any], sms_window_s: float) -> DbRound:
    """Connect, probe a write, read what the other checks need; the connection stays open in
    the result (:meth:`DbRound.close`) so the round's state is written on it."""
    out = DbRound()
    try:
        out.conn = await asyncpg.connect(dsn, timeout=timeout_s, command_timeout=timeout_s,
                                         server_settings={"application_name": f"hazmon-watchdog {instance}"})
        await out.conn.fetchval("SELECT 1")
    except _UNREACHABLE as exc:
        out.error = _why(exc)
        await out.close()
        return out
    except asyncpg.PostgresError as exc:  # e.g. the role may not log in
        out.error = _why(exc)
        await out.close()
        return out
    out.reachable = True
    conn = out.conn
    try:
        try:
            await conn.execute(_HEARTBEAT, instance, started_at, json.dumps(detail, ensure_ascii=False))
            out.writable = True
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _UNREACHABLE):
                raise
            out.writable, out.write_error = False, _why(exc)
        out.outbox_overdue_s = await conn.fetchval(_OUTBOX)
        row = await conn.fetchrow(_SMS, float(sms_window_s))
        out.sms_failures, out.sms_error = int(row["failures"]), str(row["error"] or "")
        said_by_alert = int(await conn.fetchval(_CANARY_ALERT, CANARY_ALERT_MARK)) > 0
        out.canaries = [CanaryFamily(r["family"], int(r["devices"]), r["age"], bool(r["said"]) or said_by_alert)
                        for r in await conn.fetch(_CANARIES)]
        out.heartbeats = {(r["stage"], r["instance"]): float(r["age"])
                          for r in await conn.fetch(_HEARTBEATS, instance)}
    except _UNREACHABLE as exc:
        out.reachable, out.error = False, _why(exc)
        await out.close()
    except asyncpg.PostgresError as exc:  # a read refused (a missing table, permissions): unknown
        out.error = _why(exc)
    return out
