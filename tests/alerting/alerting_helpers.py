"""Helpers for alerting tests (imported by conftest and the tests): a small hand-written district in the registry tables, the SMS
simulator over HTTP, a controllable clock, and a service factory wired to all of them.

The district (phones are fictitious):

* townships T1 东城街道 (duty 13800000101), T2 西山镇 (duty 13800000102);
* villages V1 (T1, 网格员 张网格 13800000201), V2 (T2, 网格员 李网格 13800000202);
* departments zj 住建 (13800000301), sj 市监 (…302), yj 应急 (…303), xf 消防救援 (…304),
  mz 民政 (…305); leaders L1 王副区长 (13800000401), L2 赵副区长 (…402), L9 包保 陈主任 (…409);
* matrix: gas → zj + L1; elevator → sj + L2; fire → yj, xf + L2; fire at 养老 → mz;
  domain ``power`` exists with no rule;
* sites: S1 老王饭店 (餐饮, V1, contact 13800001001, gas required), S2 幸福商场 (商场, V1, contact
  13800002001, fire panel P2 with 20 smoke detectors P2-D01..D20 and a gateway G2 with gas
  detectors G2-GAS1..3), S3 夕阳红养老院 (养老, V2, contact 13800003001, covering leader L9,
  critical), S4 无人小店 (no contacts, V2), S5 错号超市 (contact phone ``12345`` — invalid, V2),
  S6 安居小区 (住宅物业, V1, elevator E6, contact 13800006001).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from alerting.config import AlertingConfig, parse_config
from alerting.service import AlertingService
from hazmon.contracts import Event, EventState, Severity, event_id
from hazmon.topics import Topics
from sim.gateway import SmsSimulator

ROUTES = Path(__file__).resolve().parents[2] / "data" / "routes.yaml"
T0 = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)  # 09:00 China time, a Tuesday outside any key period
SECRET = "test-secret"
ServiceFactory = Callable[..., Awaitable[AlertingService]]
KEY_ID = "test-key"


async def fill_registry(conn: asyncpg.Connection) -> None:
    await conn.execute("""
        INSERT INTO domains (name, name_zh, default_interval_s) VALUES
          ('gas','燃气',60),('elevator','电梯',60),('fire','消防',60),('power','电力',60)
          ON CONFLICT DO NOTHING;
        INSERT INTO townships (id, name, kind, duty_name, duty_phone) VALUES
          ('T1','东城街道','街道','东城值班','13800000101'),('T2','西山镇','镇','西山值班','13800000102');
        INSERT INTO villages (id, township_id, name, kind, grid_member, grid_member_phone) VALUES
          ('V1','T1','东城社区','社区','张网格','13800000201'),('V2','T2','西山村','村','李网格','13800000202');
        INSERT INTO departments (id, name, duty_name, duty_phone) VALUES
          ('zj','区住建局','住建值班','13800000301'),('sj','区市场监管局','市监值班','13800000302'),
          ('yj','区应急管理局','应急值班','13800000303'),('xf','区消防救援大队','消防值班','13800000304'),
          ('mz','区民政局','民政值班','13800000305');
        INSERT INTO leaders (id, name, title, phone) VALUES
          ('L1','王副区长','副区长','13800000401'),('L2','赵副区长','副区长','13800000402'),
          ('L9','陈主任','包保领导','13800000409');
        INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES ('v1','测试厂商','json','v1');
        INSERT INTO sites (id, name, address, industry, township_id, village_id, gas_alarm_required, critical,
                           covering_leader_id) VALUES
          ('S1','老王饭店','东城路1号','餐饮','T1','V1',true,false,NULL),
          ('S2','幸福商场','东城路2号','商场','T1','V1',true,false,NULL),
          ('S3','夕阳红养老院','西山路3号','养老','T2','V2',false,true,'L9'),
          ('S4','无人小店','西山路4号','零售','T2','V2',true,false,NULL),
          ('S5','错号超市','西山路5号','零售','T2','V2',false,false,NULL),
          ('S6','安居小区','东城路6号','住宅物业','T1','V1',false,false,NULL);
        INSERT INTO site_contacts (site_id, name, role, phone) VALUES
          ('S1','老王','主要负责人','13800001001'),('S2','刘经理','主要负责人','13800002001'),
          ('S3','孙院长','主要负责人','13800003001'),('S5','周老板','主要负责人','12345'),
          ('S6','物业吴','主要负责人','13800006001');
        INSERT INTO matrix_rules (id, domain, department_ids, leader_id, committee, industries) VALUES
          ('R-gas','gas','{zj}','L1','城市运行专委会','{}'),
          ('R-elevator','elevator','{sj}','L2','特种设备专委会','{}'),
          ('R-fire','fire','{yj,xf}','L2','消防专委会','{}'),
          ('R-fire-elderly','fire','{mz}',NULL,'消防专委会','{养老}');
        INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s, parent_id) VALUES
          ('S1-GAS1','v1','厨房燃气探测器','gas','S1',60,NULL),
          ('P2','v1','消防主机','fire','S2',60,NULL),
          ('G2','v1','燃气网关','gas','S2',60,NULL),
          ('S3-FIRE','v1','消防主机','fire','S3',60,NULL),
          ('S4-GAS1','v1','燃气探测器','gas','S4',60,NULL),
          ('S5-GAS1','v1','燃气探测器','gas','S5',60,NULL),
          ('E6','v1','1号电梯','elevator','S6',60,NULL);
    """)
    for i in range(1, 21):
        await conn.execute(
            "INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s, parent_id)"
            " VALUES ($1,'v1','感烟探测器','fire','S2',60,'P2')", f"P2-D{i:02d}")
    for i in range(1, 4):
        await conn.execute(
            "INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s, parent_id)"
            " VALUES ($1,'v1','燃气探测器','gas','S2',60,'G2')", f"G2-GAS{i}")


def ev(kind: str, device: str, site: str, *, at: datetime = T0, severity: Severity = Severity.RED,
       state: EventState = EventState.FIRING, domain: str | None = None, component: str = "",
       ends_at: datetime | None = None) -> Event:
    """An event as the detectors emit it (deterministic id of device, kind, start)."""
    return Event(
        id=event_id(device, kind, at), kind=kind,
        domain=domain or (kind.split(".")[0] if not kind.startswith("device.") else "gas"), severity=severity, state=state,
        device_id=device, site_id=site, component=component,
        starts_at=at, ends_at=ends_at, detected_at=at, summary=kind)


def resolved(e: Event, at: datetime) -> Event:
    return e.model_copy(update={"state": EventState.RESOLVED, "ends_at": at, "detected_at": at})


def raw_routes() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(ROUTES.read_text(encoding="utf-8"))


def config_with(**overrides: Any) -> AlertingConfig:
    """routes.yaml with top-level keys replaced (for tests needing a different ladder)."""
    raw = raw_routes()
    raw.update(overrides)
    return parse_config(raw, file="test-routes.yaml")


async def produce(bootstrap: str, topics: Topics, events: Sequence[Event]) -> None:
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await prod.start()
    try:
        for e in events:
            await prod.send_and_wait(topics.events, e.model_dump_json().encode(), key=e.device_id.encode())
    finally:
        await prod.stop()


async def produce_raw(bootstrap: str, topics: Topics, values: Sequence[bytes]) -> None:
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await prod.start()
    try:
        for v in values:
            await prod.send_and_wait(topics.events, v, key=b"x")
    finally:
        await prod.stop()


async def consume(svc: AlertingService, expected: int, *, max_polls: int = 60) -> int:
    """Poll until ``expected`` records were seen (bounded; no wall-clock assertion)."""
    seen = 0
    for _ in range(max_polls):
        seen += await svc.poll_once(timeout_ms=500)
        if seen >= expected:
            break
    return seen


async def messages(sim: SmsSimulator, phone: str | None = None) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        params = {"phone": phone} if phone else None
        return (await c.get(f"{sim.url}/messages", params=params)).json()


async def set_mode(sim: SmsSimulator, **mode: Any) -> None:
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{sim.url}/admin/mode", json=mode)
        r.raise_for_status()


async def settle() -> None:
    await asyncio.sleep(0)
