"""The rows behind the KPIs of one period (alerting/kpi/), read in one snapshot by the caller.

Presence and the registry per day come from the daily snapshots (migration 035,
alerting/kpi_snapshot.py); a day without one is read from the live tables through the same
"state at a moment" rule (:data:`alerting.store.kpi_snapshot.LIVE_RUNS`), at the day's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from alerting.store.kpi_snapshot import LIVE_RUNS

__all__ = ["KpiInputs", "kpi_inputs"]

@dataclass(frozen=True, slots=True)
class KpiInputs:
    townships: dict[str, str]
    departments: dict[str, str]
    #: domain → its Chinese name
    domains: dict[str, str]
    vendors: dict[str, str]
    #: site id → name
    site_names: dict[str, str]
    #: matrix rules: domain, department_ids, industries
    rules: list[Any]
    #: the sites at the period's last day: site_id, township_id, industry, gas_alarm_required
    sites: dict[str, Any]
    #: per device, runs of consecutive days of the period with one row: device_id, site_id,
    #: domain, vendor_id, model, state (online / offline / never_seen) at each day's end, since,
    #: first_day, last_day
    device_runs: list[Any]
    #: which days were read from a snapshot (the rest from the live tables)
    snapshot_days: frozenset[date]
    #: offline alerts clipped to [start, as_of): device_id, s, e
    offline: list[Any]
    #: alerts starting in [start, end), not silenced or inhibited, with the device's vendor/model,
    #: first 到场 (arrived_at: the lift 到场, a field check-in or a 工单's 到场) and whether they
    #: were overdue by as_of (escalated, 到场 missed)
    alerts: list[Any]
    #: work orders of those alerts: alert_id, overdue (open past their deadline by as_of)
    orders: list[Any]
    #: hazards found in [start, end): township_id, domain, department_ids, site_id, phase
    hazards: list[Any]
    #: hazards found before as_of, open past their 整改期限 at as_of
    overdue_hazards: list[Any]


async def kpi_inputs(conn: Any, *, start: datetime, end: datetime, as_of: datetime,
                     first_day: date, last_day: date) -> KpiInputs:
    """The rows behind the KPIs of [start, end) as of ``as_of`` (= min(end, now)); the CST days
    ``first_day``..``last_day`` are those the period covers up to ``as_of``."""
    townships = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM townships")}
    departments = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM departments")}
    domains = {r["name"]: r["name_zh"] for r in await conn.fetch("SELECT name, name_zh FROM domains")}
    vendors = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM vendors")}
    site_names = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM sites")}
    rules = await conn.fetch("SELECT domain, department_ids, industries FROM matrix_rules")
    taken = frozenset(r["day"] for r in await conn.fetch(
        "SELECT day FROM kpi_snapshot_days WHERE day BETWEEN $1 AND $2", first_day, last_day))
    if last_day in taken:
        site_rows = await conn.fetch("SELECT site_id, township_id, industry, gas_alarm_required"
                                     " FROM kpi_site_days WHERE day = $1", last_day)
    else:
        site_rows = await conn.fetch(
            "SELECT id AS site_id, township_id, industry, gas_alarm_required FROM sites")
    # the days as runs of consecutive days with one device row (gaps and islands over the
    # snapshots; the live days as runs already): a month of an unchanged district is one row per
    # device, not thirty
    device_runs = await conn.fetch(
        f"""WITH r AS (
              SELECT s.*, day - (row_number() OVER (
                       PARTITION BY device_id, site_id, domain, vendor_id, model, state, since
                       ORDER BY day))::int AS grp
              FROM kpi_device_days s WHERE day BETWEEN $1 AND $2),
            {LIVE_RUNS}
            SELECT device_id, site_id, domain, vendor_id, model, state, since,
                   min(day) AS first_day, max(day) AS last_day
            FROM r GROUP BY device_id, site_id, domain, vendor_id, model, state, since, grp
            UNION ALL
            SELECT * FROM live_runs""",
        first_day, last_day, sorted(taken),
    )
    offline = await conn.fetch(
        """SELECT device_id, greatest(starts_at, $1) AS s, least(coalesce(ends_at, $2), $2) AS e
           FROM alerts WHERE kind LIKE '%offline%' AND starts_at < $2 AND coalesce(ends_at, $2) > $1""",
        start, as_of,
    )
    alerts = await conn.fetch(
        """SELECT a.id, a.kind, a.domain, a.township_id, a.department_ids, a.site_id, a.device_id,
                  coalesce(d.vendor_id, '') AS vendor_id, coalesce(d.model, '') AS model,
                  a.starts_at, a.acked_at, a.closed_at, a.phase, a.verdict,
                  least(la.arrived_at, fc.at, wo.at) AS arrived_at,
                  (EXISTS (SELECT 1 FROM notices n WHERE n.alert_id = a.id AND n.issued_at <= $3)
                   OR (la.due_at <= $3 AND (la.arrived_at IS NULL OR la.arrived_at > la.due_at))) AS overdue
           FROM alerts a
           LEFT JOIN devices d ON d.id = a.device_id
           LEFT JOIN lift_arrivals la ON la.alert_id = a.id
           LEFT JOIN LATERAL (SELECT min(at) AS at FROM field_checkins f WHERE f.alert_id = a.id) fc ON true
           LEFT JOIN LATERAL (SELECT min(arrived_at) AS at FROM work_orders o
                              WHERE o.alert_id = a.id) wo ON true
           WHERE a.starts_at >= $1 AND a.starts_at < $2 AND a.suppressed_by = ''
             AND a.kind NOT LIKE 'system.%'""",
        start, end, as_of,
    )
    # 超时工单 (alerting/workorders.is_overdue: open past its deadline), as of as_of: not fed
    # back or closed by the deadline
    orders = await conn.fetch(
        """SELECT o.alert_id,
                  (o.deadline <= $3 AND coalesce(least(o.fed_back_at, o.closed_at), 'infinity') > o.deadline)
                    AS overdue
           FROM work_orders o JOIN alerts a ON a.id = o.alert_id
           WHERE a.starts_at >= $1 AND a.starts_at < $2 AND a.suppressed_by = ''""",
        start, end, as_of,
    )
    hazards = await conn.fetch(
        """SELECT h.township_id, h.domain, h.department_ids, h.site_id,
                  (h.rectified_at IS NOT NULL AND h.rectified_at <= $3
                   OR h.struck_off_at IS NOT NULL AND h.struck_off_at <= $3) AS rectified
           FROM hazards h WHERE h.found_at >= $1 AND h.found_at < $2""",
        start, end, as_of,
    )
    # 隐患逾期 as the ledger's list means it (alerting/queries.py list_hazards: past its deadline,
    # not rectified), as of as_of
    overdue_hazards = await conn.fetch(
        """SELECT h.township_id, h.domain, h.department_ids, h.site_id FROM hazards h
           WHERE h.found_at < $1 AND h.deadline IS NOT NULL AND h.deadline < $1
             AND NOT coalesce(h.rectified_at <= $1 OR h.struck_off_at <= $1, false)""",
        as_of,
    )
    return KpiInputs(townships, departments, domains, vendors, site_names, rules,
                     {r["site_id"]: r for r in site_rows}, device_runs, taken, offline, alerts, orders,
                     hazards, overdue_hazards)
