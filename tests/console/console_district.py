"""A small, fixed district for the console tests: two townships, four sites, three domains.

Small on purpose: every scoping assertion can name exactly what a role must and must not see.
(The registry's sample district is loaded separately, in test_sample_district.py.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from alerting import ledger, silence
from alerting.store import Placement, record_events
from console.auth import hash_password, new_session
from console.scope import Role
from hazmon.contracts import Event, EventState, Evidence, Severity, event_id

__all__ = ["NOW", "PASSWORD", "USERS", "Seeded", "seed_district", "make_alert", "sessions_for"]

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 CST
PASSWORD = "correct horse battery"

#: username → (role, scope kwargs)
USERS: dict[str, tuple[Role, dict[str, Any]]] = {
    "centre1": (Role.CENTRE, {}),
    "admin1": (Role.ADMIN, {}),
    "dept-zj": (Role.DEPARTMENT, {"department_id": "D-ZJ"}),  # 住建: gas
    "town-t1": (Role.TOWNSHIP, {"township_id": "T1"}),
    "town-t2": (Role.TOWNSHIP, {"township_id": "T2"}),
    "biz-s1": (Role.BUSINESS, {"site_ids": ("S1",)}),
    "vendor-acme": (Role.VENDOR, {"vendor_id": "acme"}),
    "grid-v1": (Role.GRID_MEMBER, {"village_ids": ("V1",)}),  # 东门社区: S1, S2
    "maint-m1": (Role.MAINTAINER, {"maintainer_id": "M1"}),  # the lift E1 at S2
    "victim": (Role.CENTRE, {}),  # deactivated by the authorization test
}
#: one representative account per role
ROLE_USER = {Role.CENTRE: "centre1", Role.ADMIN: "admin1", Role.DEPARTMENT: "dept-zj", Role.TOWNSHIP: "town-t1",
             Role.BUSINESS: "biz-s1", Role.VENDOR: "vendor-acme", Role.GRID_MEMBER: "grid-v1",
             Role.MAINTAINER: "maint-m1"}
__all__.append("ROLE_USER")


_HASH = ""


@dataclass
class Seeded:
    alerts: dict[str, str] = field(default_factory=dict)  # name → alert id
    events: dict[str, str] = field(default_factory=dict)


_SQL = """
INSERT INTO domains (name, name_zh, default_interval_s) VALUES
  ('gas', '燃气', 60), ('elevator', '电梯', 30), ('fire', '消防', 60);
INSERT INTO townships (id, name, kind, duty_name, duty_phone) VALUES
  ('T1', '城关镇', '镇', '李值班', '0571-88881111'), ('T2', '新河街道', '街道', '赵值班', '0571-88882222');
INSERT INTO villages (id, township_id, name, kind, grid_member, grid_member_phone) VALUES
  ('V1', 'T1', '东门社区', '社区', '陈网格', '13900001111'), ('V2', 'T2', '河西村', '村', '周网格', '13900002222');
INSERT INTO departments (id, name, duty_name, duty_phone) VALUES
  ('D-ZJ', '区住建局', '住建值班', '0571-1000'), ('D-SJ', '区市场监管局', '市监值班', '0571-2000'),
  ('D-YJ', '区应急管理局', '应急值班', '0571-3000');
INSERT INTO leaders (id, name, title, phone) VALUES ('L1', '张副区长', '副区长', '13700007777');
INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES
  ('acme', '艾克美', 'json', 'acme'), ('beta', '贝塔', 'senml', 'beta');
INSERT INTO sites (id, name, address, industry, township_id, village_id, lon, lat, gas_alarm_required, critical) VALUES
  ('S1', '老王饭店', '东门路1号', '餐饮', 'T1', 'V1', 120.10, 30.20, true, false),
  ('S2', '城关商场', '东门路9号', '商场', 'T1', 'V1', 120.12, 30.21, false, true),
  ('S3', '新河五金厂', '河西路3号', '工厂', 'T2', 'V2', 120.20, 30.25, false, false),
  ('S4', '河西面馆', '河西路8号', '餐饮', 'T2', 'V2', 120.22, 30.24, true, false);
INSERT INTO site_contacts (site_id, name, role, phone) VALUES
  ('S1', '王老板', '主要负责人', '13812345678'), ('S2', '刘经理', '主要负责人', '13812340002'),
  ('S3', '孙厂长', '主要负责人', '13812340003'), ('S4', '吴老板', '主要负责人', '13812340004');
INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s) VALUES
  ('G1', 'acme', 'GD-1', 'gas', 'S1', 60), ('E1', 'beta', 'EL-9', 'elevator', 'S2', 30),
  ('F1', 'acme', 'FP-2', 'fire', 'S3', 60), ('G4', 'beta', 'GD-2', 'gas', 'S4', 60);
INSERT INTO maintainers (id, name, duty_name, duty_phone, duty_mobile) VALUES
  ('M1', '钱江电梯维保', '张工', '0571-89990001', '13900003333');
UPDATE devices SET maintainer_id = 'M1' WHERE id = 'E1';
INSERT INTO matrix_rules (id, domain, department_ids, leader_id, committee) VALUES
  ('R-gas', 'gas', '{D-ZJ}', 'L1', '城市运行专委会'), ('R-elev', 'elevator', '{D-SJ}', 'L1', '特种设备专委会'),
  ('R-fire', 'fire', '{D-YJ}', 'L1', '消防专委会');
"""


async def seed_district(conn: Any, *, now: datetime = NOW) -> Seeded:
    """Registry rows, telemetry, dead letters, alerts and one user per role."""
    await conn.execute(_SQL)
    await conn.executemany(
        "INSERT INTO device_presence (device_id, state, since, last_seen) VALUES ($1, $2, $3, $4)",
        [("G1", "online", now - timedelta(days=1), now), ("E1", "offline", now - timedelta(hours=2), now - timedelta(hours=2)),
         ("F1", "online", now - timedelta(days=1), now - timedelta(hours=1))],
    )
    readings = [("G1", "gas_lel", now - timedelta(minutes=m), 2.0 + (30 if m < 5 else 0), "%LEL") for m in range(30, -1, -1)]
    readings += [("F1", "temperature_c", now - timedelta(hours=1), 24.0, "°C")]
    await conn.executemany(
        "INSERT INTO readings (device_id, metric, ts, value, unit, received_at) VALUES ($1,$2,$3,$4,$5,$3)", readings
    )
    await conn.executemany(
        "INSERT INTO latest_readings (device_id, metric, ts, value, unit) VALUES ($1,$2,$3,$4,$5)",
        [("G1", "gas_lel", now, 32.0, "%LEL"), ("G1", "battery_pct", now, 80.0, "%"),
         ("F1", "temperature_c", now - timedelta(hours=1), 24.0, "°C")],
    )
    await conn.executemany(
        "INSERT INTO deadletters (id, stage, source, vendor, device_id, reason, detail, raw, received_at)"
        " VALUES ($1, 'ingest', $2, $3, $4, $5, $6, $7, $8)",
        [("dl-1", "hazmon/v1/acme/G1/data", "acme", "G1", "malformed", "not JSON at byte 0", b"\x00garbage", now),
         ("dl-2", "hazmon/v1/acme/G9/data", "acme", "G9", "unknown_device", "device G9 not registered", b"{}", now),
         ("dl-3", "hazmon/v1/beta/E1/data", "beta", "E1", "schema", "samples: field required", b"{\"x\":1}", now)],
    )
    seeded = Seeded()
    seeded.alerts["gas_s1"] = await make_alert(conn, "G1", "S1", "gas", "gas.high", Severity.RED, now=now - timedelta(minutes=4),
                                               township_id="T1", department_ids=("D-ZJ",), summary="老王饭店 燃气浓度 32%LEL")
    seeded.alerts["elev_s2"] = await make_alert(conn, "E1", "S2", "elevator", "elevator.trapped", Severity.ORANGE,
                                                now=now - timedelta(minutes=20), township_id="T1", department_ids=("D-SJ",),
                                                summary="城关商场 电梯困人")
    seeded.alerts["fire_s3"] = await make_alert(conn, "F1", "S3", "fire", "fire.alarm", Severity.YELLOW,
                                                now=now - timedelta(minutes=50), township_id="T2", department_ids=("D-YJ",),
                                                summary="新河五金厂 火警")
    seeded.events = dict(seeded.alerts)
    await ledger.find_hazard(conn, actor="centre:centre1", now=now, site_id="S1", domain="gas",
                                title="燃气管道老化", hazard_id="HZ-S1")
    await ledger.find_hazard(conn, actor="centre:centre1", now=now, site_id="S3", domain="fire",
                                title="消防通道堵塞", hazard_id="HZ-S3")
    await silence.create_silence(conn, actor="centre:centre1", now=now, silence_id="sil-1",
                                 matchers=[{"name": "site_id", "op": "=", "value": "S2"}],
                                 ends_at=now + timedelta(hours=2), reason="电梯维保")
    # one argon2 hash for every test account: hashing is deliberately slow
    global _HASH
    _HASH = _HASH or hash_password(PASSWORD)
    for name, (role, kw) in USERS.items():
        await conn.execute(
            "INSERT INTO console_users (username, display_name, role, password_hash, department_id, township_id,"
            " site_ids, vendor_id, village_ids, maintainer_id) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9)",
            name, role.value, _HASH, kw.get("department_id"), kw.get("township_id"), list(kw.get("site_ids", ())),
            kw.get("vendor_id"), list(kw.get("village_ids", ())), kw.get("maintainer_id"),
        )
    return seeded


async def make_alert(
    conn: Any, device_id: str, site_id: str, domain: str, kind: str, severity: Severity, *, now: datetime,
    township_id: str, department_ids: tuple[str, ...], summary: str = "",
) -> str:
    """An event in ``events`` and its alert (through alerting's own record_events)."""
    eid = event_id(device_id, kind, now)
    ev = Event(id=eid, kind=kind, domain=domain, severity=severity, state=EventState.FIRING, device_id=device_id,
               site_id=site_id, starts_at=now, detected_at=now, summary=summary,
               evidence=(Evidence(ts=now, metric="gas_lel", value=32.0),))
    await conn.execute(
        """INSERT INTO events (id, kind, domain, severity, state, device_id, site_id, starts_at, detected_at, summary,
                               evidence, updated_at)
           VALUES ($1,$2,$3,$4,'firing',$5,$6,$7,$7,$8,$9::jsonb,$7) ON CONFLICT DO NOTHING""",
        eid, kind, domain, severity.value, device_id, site_id, now, summary,
        json.dumps([e.model_dump(mode="json") for e in ev.evidence]),
    )
    await record_events(conn, [Placement(ev, township_id=township_id, department_ids=department_ids,
                                         labels={"site_id": site_id, "domain": domain, "severity": severity.value})],
                        now=now)
    return eid


async def sessions_for(conn: Any, usernames: list[str], *, now: datetime, ttl_s: int = 365 * 86400) -> dict[str, tuple[str, str]]:
    """username → (bearer token, csrf token), without going through the login endpoint."""
    out = {}
    for u in usernames:
        token, csrf, _ = await new_session(conn, u, ttl_s=ttl_s, now=now)
        out[u] = (token, csrf)
    return out
