"""``kpi_snapshot_days``, ``kpi_site_days``, ``kpi_device_days`` (migration 035): one day's
registry and presence as the KPIs read them later (alerting/kpi_snapshot.py takes them).

:data:`STATE_AT` is the one home of "a device's presence at a moment" from the live
``device_presence`` row: the snapshot uses it, and :data:`LIVE_RUNS` says the same over a run
of days for the KPI read of days that have no snapshot (alerting/queries_kpi.py). A row changed after that moment tells what it was before:
online now since later → it was offline (or not yet heard, the same for the online rate);
offline now since later → it was online.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

__all__ = ["STATE_AT", "SINCE_AT", "DEVICES_OF_DAY", "LIVE_RUNS", "snapshot_taken", "take_snapshot",
           "snapshot_days"]

#: presence of ``d``/``p`` (devices, device_presence) at the moment ``{t}`` (an SQL expression)
STATE_AT = ("CASE WHEN p.device_id IS NULL THEN 'never_seen' WHEN p.since <= {t} THEN p.state"
            " WHEN p.state = 'online' THEN 'offline' ELSE 'online' END")
#: since when a device offline at ``{t}`` has been offline (NULL: online, never heard, or unknown)
SINCE_AT = "CASE WHEN p.state = 'offline' AND p.since <= {t} THEN p.since END"
#: the district's devices on day ``{day}`` (a date expression): active, installed by then, not canaries
DEVICES_OF_DAY = ("d.active AND NOT d.is_canary AND (d.installed_on IS NULL OR d.installed_on <= {day})")

#: :data:`STATE_AT` over runs of days, for the days of [$1, $2] not in $3 (dates) read live: a
#: device's state changes once, on day ``k``, the first whose end is not before its ``since``;
#: before ``k`` it was the other state (since unknown), from ``k`` on its state. Rows:
#: device_id, site_id, domain, vendor_id, model, state, since, first_day, last_day.
LIVE_RUNS = """
  gaps AS (
    SELECT min(day) AS a, max(day) AS b FROM (
      SELECT x::date AS day, x::date - (row_number() OVER (ORDER BY x))::int AS g
      FROM generate_series($1::date, $2::date, interval '1 day') x
      WHERE x::date <> ALL($3::date[])) q
    GROUP BY g),
  live AS (
    SELECT d.id AS device_id, d.site_id, d.domain, d.vendor_id, d.model, p.device_id IS NOT NULL AS heard,
           p.state AS pstate, p.since AS psince, greatest(gaps.a, coalesce(d.installed_on, gaps.a)) AS a,
           gaps.b,
           ((p.since AT TIME ZONE 'Asia/Shanghai') - interval '1 microsecond')::date AS k
    FROM gaps CROSS JOIN devices d LEFT JOIN device_presence p ON p.device_id = d.id
    WHERE d.active AND NOT d.is_canary AND (d.installed_on IS NULL OR d.installed_on <= gaps.b)),
  live_runs AS (
    SELECT device_id, site_id, domain, vendor_id, model, 'never_seen' AS state, NULL::timestamptz AS since,
           a AS first_day, b AS last_day FROM live WHERE NOT heard
    UNION ALL
    SELECT device_id, site_id, domain, vendor_id, model,
           CASE WHEN pstate = 'online' THEN 'offline' ELSE 'online' END, NULL, a, least(b, k - 1)
    FROM live WHERE heard AND a <= k - 1
    UNION ALL
    SELECT device_id, site_id, domain, vendor_id, model, pstate, CASE WHEN pstate = 'offline' THEN psince END,
           greatest(a, k), b
    FROM live WHERE heard AND greatest(a, k) <= b)"""


async def snapshot_taken(conn: Any, day: date) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM kpi_snapshot_days WHERE day = $1)", day))


async def take_snapshot(conn: Any, day: date, *, at: datetime, taken_at: datetime,
                        source: str) -> tuple[int, int] | None:
    """Write ``day``'s snapshot as of ``at`` (the day's end); None when the day was taken already.
    Returns (sites, devices). Call inside a transaction."""
    inserted = await conn.fetchval(
        "INSERT INTO kpi_snapshot_days (day, taken_at, source, sites, devices) VALUES ($1, $2, $3, 0, 0)"
        " ON CONFLICT (day) DO NOTHING RETURNING true", day, taken_at, source)
    if not inserted:
        return None
    sites = await conn.execute(
        """INSERT INTO kpi_site_days (day, site_id, township_id, industry, gas_alarm_required)
           SELECT $1, id, township_id, industry, gas_alarm_required FROM sites""", day)
    devices = await conn.execute(
        f"""INSERT INTO kpi_device_days (day, device_id, site_id, domain, vendor_id, model, state, since)
            SELECT $1, d.id, d.site_id, d.domain, d.vendor_id, d.model, {STATE_AT.format(t='$2')},
                   {SINCE_AT.format(t='$2')}
            FROM devices d LEFT JOIN device_presence p ON p.device_id = d.id
            WHERE {DEVICES_OF_DAY.format(day='$1')}""", day, at)
    n_sites, n_devices = int(sites.split()[-1]), int(devices.split()[-1])
    await conn.execute("UPDATE kpi_snapshot_days SET sites = $2, devices = $3 WHERE day = $1",
                       day, n_sites, n_devices)
    return n_sites, n_devices


async def snapshot_days(conn: Any, first: date, last: date) -> list[date]:
    """The days in [first, last] that have a snapshot."""
    return [r["day"] for r in await conn.fetch(
        "SELECT day FROM kpi_snapshot_days WHERE day BETWEEN $1 AND $2 ORDER BY day", first, last)]
