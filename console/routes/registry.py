"""Sites, devices and their latest readings, the district map (read-only, scoped)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from alerting import queries
from console.auth import access
from console.routes._common import (
    TEXT_FILTER,
    Conn,
    CurrentScope,
    DomainFilter,
    IdFilter,
    IdPath,
    PageParams,
    Since,
    Until,
    check_range,
    equal,
    fetch_page,
    in_range,
    in_township,
    not_found,
    page_of,
)
from console.scope import Params, Role, Scope

__all__ = ["router", "SITE_READERS", "DEVICE_READERS"]

router = APIRouter(prefix="/api", tags=["registry"])

SITE_READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP, Role.BUSINESS, Role.GRID_MEMBER,
                Role.MAINTAINER)
DEVICE_READERS = (*SITE_READERS, Role.VENDOR)


@router.get("/townships", summary="镇/街道 (with duty contact; phones masked by role)", **access(*SITE_READERS))
async def townships(conn: Conn, scope: CurrentScope) -> list[dict]:
    p = Params()
    rows = await conn.fetch(
        f"""SELECT t.id, t.name, t.kind, t.duty_name, t.duty_phone,
                   (SELECT count(*) FROM sites s WHERE s.township_id = t.id AND {scope.sites_sql(p)}) AS sites
            FROM townships t ORDER BY t.id""",
        *p.values,
    )
    out = []
    for r in rows:
        if not scope.unrestricted and r["sites"] == 0 and r["id"] != scope.township_id:
            continue
        d = dict(r)
        d["duty_phone"] = scope.phone(d["duty_phone"]) if (scope.unrestricted or r["id"] == scope.township_id) else (
            None
        )
        out.append(d)
    return out


def _site_filters(
    scope: Scope, p: Params, township_id: str | None, domain: str | None, q: str | None, critical: bool | None
) -> str:
    where = [scope.sites_sql(p)]
    if township_id:
        where.append(f"s.township_id = {p(township_id)}")
    if domain:
        where.append(f"EXISTS (SELECT 1 FROM devices fd WHERE fd.site_id = s.id AND fd.domain = {p(domain)})")
    if q:
        where.append(f"(s.name ILIKE {p('%' + q + '%')} OR s.address ILIKE {p('%' + q + '%')} OR s.id = {p(q)})")
    if critical is not None:
        where.append(f"s.critical = {p(critical)}")
    return " AND ".join(where)


@router.get("/sites", summary="场所列表 (filters, paging)", **access(*SITE_READERS))
async def list_sites(
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    township_id: IdFilter = None,
    domain: DomainFilter = None,
    q: Annotated[str | None, Query(max_length=64, pattern=TEXT_FILTER, description="name/address contains")] = None,
    critical: bool | None = None,
) -> dict:
    p = Params()
    where = _site_filters(scope, p, township_id, domain, q, critical)
    total, rows = await fetch_page(
        conn, p, paging, source=f"sites s WHERE {where}", order_by="s.id",
        columns="""s.id, s.name, s.address, s.industry, s.township_id, s.village_id, s.lon, s.lat,
                   s.critical, s.gas_alarm_required,
                   (SELECT count(*) FROM devices d WHERE d.site_id = s.id) AS devices""",
    )
    return page_of([dict(r) for r in rows], total, paging)


@router.get("/sites/{site_id}", summary="场所详情 (contacts, devices, open alerts)", **access(*SITE_READERS))
async def get_site(site_id: IdPath, conn: Conn, scope: CurrentScope) -> dict:
    p = Params()
    row = await conn.fetchrow(
        f"""SELECT s.*, t.name AS township_name, v.name AS village_name, v.grid_member, v.grid_member_phone
            FROM sites s JOIN townships t ON t.id = s.township_id LEFT JOIN villages v ON v.id = s.village_id
            WHERE s.id = {p(site_id)} AND {scope.sites_sql(p)}""",
        *p.values,
    )
    if row is None:
        raise not_found("site", site_id)
    site = dict(row)
    site["grid_member_phone"] = scope.phone(site["grid_member_phone"])
    contacts = await conn.fetch("SELECT name, role, phone FROM site_contacts WHERE site_id = $1 ORDER BY name", site_id)
    site["contacts"] = [{**dict(c), "phone": scope.phone(c["phone"])} for c in contacts]
    p2 = Params()
    devices = await conn.fetch(
        f"""SELECT d.id, d.vendor_id, d.model, d.domain, d.expected_interval_s, d.active,
                   pr.state AS presence, pr.last_seen
            FROM devices d LEFT JOIN device_presence pr ON pr.device_id = d.id
            WHERE d.site_id = {p2(site_id)} AND {scope.devices_sql(p2)} ORDER BY d.id""",
        *p2.values,
    )
    site["devices"] = [dict(d) for d in devices]
    return site


def _device_filters(
    scope: Scope, p: Params, site_id: str | None, domain: str | None, vendor_id: str | None,
    presence: str | None, township_id: str | None,
) -> str:
    where = [scope.devices_sql(p),
             *equal(p, ("d.site_id", site_id), ("d.domain", domain), ("d.vendor_id", vendor_id))]
    where += in_township(p, "d.site_id", township_id)
    if presence == "never_seen":
        where.append("pr.device_id IS NULL")
    elif presence:
        where.append(f"pr.state = {p(presence)}")
    return " AND ".join(where)


@router.get("/devices", summary="设备列表 (filters, paging)", **access(*DEVICE_READERS))
async def list_devices(
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    site_id: IdFilter = None,
    township_id: IdFilter = None,
    domain: DomainFilter = None,
    vendor_id: IdFilter = None,
    presence: Literal["online", "offline", "never_seen"] | None = None,
) -> dict:
    p = Params()
    where = _device_filters(scope, p, site_id, domain, vendor_id, presence, township_id)
    total, rows = await fetch_page(
        conn, p, paging, order_by="d.id",
        source=f"devices d LEFT JOIN device_presence pr ON pr.device_id = d.id WHERE {where}",
        columns="""d.id, d.vendor_id, d.model, d.domain, d.site_id, d.expected_interval_s, d.active,
                   d.parent_id, coalesce(pr.state, 'never_seen') AS presence, pr.since, pr.last_seen""",
    )
    return page_of([dict(r) for r in rows], total, paging)


async def _device_or_404(conn: Any, scope: Scope, device_id: str) -> dict:
    p = Params()
    row = await conn.fetchrow(
        f"""SELECT d.*, coalesce(pr.state, 'never_seen') AS presence, pr.since, pr.last_seen
            FROM devices d LEFT JOIN device_presence pr ON pr.device_id = d.id
            WHERE d.id = {p(device_id)} AND {scope.devices_sql(p)}""",
        *p.values,
    )
    if row is None:
        raise not_found("device", device_id)
    return dict(row)


@router.get("/devices/{device_id}", summary="设备详情 (latest readings, last status)", **access(*DEVICE_READERS))
async def get_device(device_id: IdPath, conn: Conn, scope: CurrentScope) -> dict:
    device = await _device_or_404(conn, scope, device_id)
    latest = await conn.fetch(
        "SELECT metric, ts, value, unit, flags FROM latest_readings WHERE device_id = $1 ORDER BY metric", device_id
    )
    device["latest"] = [dict(r) for r in latest]
    status = await conn.fetchrow(
        """SELECT ts, reason, state, battery_pct, signal_dbm, mains_power FROM device_status
           WHERE device_id = $1 ORDER BY ts DESC LIMIT 1""",
        device_id,
    )
    device["last_status"] = dict(status) if status else None
    return device


@router.get("/devices/{device_id}/readings", summary="读数序列 (for the chart)", **access(*DEVICE_READERS))
async def device_readings(
    device_id: IdPath,
    conn: Conn,
    scope: CurrentScope,
    metric: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict:
    check_range(since, until)
    await _device_or_404(conn, scope, device_id)
    p = Params()
    where = [f"device_id = {p(device_id)}"]
    if metric:
        where.append(f"metric = {p(metric)}")
    where += in_range(p, "ts", since, until)
    rows = await conn.fetch(
        f"""SELECT metric, ts, value, unit, flags FROM readings WHERE {' AND '.join(where)}
            ORDER BY ts DESC LIMIT {p(limit)}""",
        *p.values,
    )
    return {"device_id": device_id, "items": [dict(r) for r in reversed(rows)]}


@router.get("/map", summary="辖区地图 (sites with coordinates and state colour)", **access(*SITE_READERS))
async def district_map(conn: Conn, scope: CurrentScope, township_id: IdFilter = None) -> dict:
    """State per site: the most severe open alert (红/橙/黄/蓝), else 'offline' when a device is
    offline, else 'normal'; and ``boundaries``, the 辖区边界 the viewer sees. The page draws it as
    SVG from lon/lat: no map tiles."""
    p = Params()
    where = [scope.sites_sql(p), "s.lon IS NOT NULL", "s.lat IS NOT NULL"]
    if township_id:
        where.append(f"s.township_id = {p(township_id)}")
    rows = await conn.fetch(
        f"""SELECT s.id, s.name, s.township_id, s.lon, s.lat, s.critical,
                   (SELECT count(*) FROM devices d JOIN device_presence pr ON pr.device_id = d.id
                      WHERE d.site_id = s.id AND pr.state = 'offline') AS offline
            FROM sites s WHERE {' AND '.join(where)} ORDER BY s.id""",
        *p.values,
    )
    alarmed = await queries.open_severity_by_site(conn, [r["id"] for r in rows])
    sites = []
    for r in rows:
        state = alarmed.get(r["id"]) or ("offline" if r["offline"] else "normal")
        sites.append({"id": r["id"], "name": r["name"], "township_id": r["township_id"], "lon": r["lon"],
                      "lat": r["lat"], "critical": r["critical"], "state": state})
    seen = {r["township_id"] for r in rows}
    return {"sites": sites, "boundaries": await _boundaries(conn, scope, township_id, seen)}


async def _boundaries(conn: Conn, scope: Scope, township_id: str | None, seen: set[str]) -> dict[str, Any]:
    """辖区边界 (registry boundaries.geojson, migration 038) as a GeoJSON FeatureCollection, townships
    first, then villages: every township for the centre, otherwise those of the sites the viewer
    sees and its own (as ``/townships``); empty when the registry has none."""
    rows = await conn.fetch(
        """SELECT b.level, b.area_id, b.township_id, b.geometry::text AS geometry,
                  coalesce(v.name, t.name) AS name, t.name AS township_name
           FROM area_boundaries b JOIN townships t ON t.id = b.township_id
           LEFT JOIN villages v ON v.id = b.village_id
           ORDER BY b.level = 'village', b.area_id"""
    )
    features = [
        {"type": "Feature", "geometry": json.loads(r["geometry"]),
         "properties": {"level": r["level"], "id": r["area_id"], "name": r["name"],
                        "township_id": r["township_id"], "township_name": r["township_name"]}}
        for r in rows
        if (not township_id or r["township_id"] == township_id)
        and (scope.unrestricted or r["township_id"] in seen or r["township_id"] == scope.township_id)
    ]
    return {"type": "FeatureCollection", "features": features}
