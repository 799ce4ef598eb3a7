"""A GB/T 26875.3 frame naming a part the registry does not list (issue 18, Bad input).

A fire panel whose registry entry lists its components (部件, §8.2 部件地址): a frame naming
another address is still used — its fire alarm raises ``fire.alarm`` with the frame's own 说明 —
and an ``unregistered_part`` dead letter lands beside it, naming §8.2 and the full address, for
接入诊断. A device without a list behaves as before. First through the bridge's pipeline alone,
then end to end: ``hazmon registry import`` → MQTT → bridge → Kafka → detectors → PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from detectors.service import DetectorService
from hazmon.contracts import DeadLetter, DeviceEvent
from hazmon.registry import Component, import_registry
from hazmon.settings import DetectorSettings
from hazmon.topics import Topics
from ingest.adapters.gbt26875 import (
    FAULT,
    FIRE_ALARM,
    NORMAL,
    ComponentConfig,
    ComponentState,
    component_id,
    encode_frame,
)
from ingest.directory import DeviceInfo, Directory, VendorInfo
from ingest.pipeline import Pipeline

pytestmark = pytest.mark.timeout(180)

NOW = datetime.now(UTC).replace(microsecond=0)
LISTED = frozenset({"1-1/42/1-023", "1-1/23/2-005"})


def _out(device: DeviceInfo, *objs: Any) -> tuple[list[DeviceEvent], list[DeadLetter]]:
    topics = Topics("t")
    directory = Directory.build([VendorInfo("firenet", "gbt26875")], [device])
    payload = encode_frame(list(objs), serial=7, sent_at=NOW)
    topic = f"hazmon/v1/firenet/{device.id}/telemetry"
    records = Pipeline(directory, topics).process(topic, payload, NOW.timestamp())
    events = [DeviceEvent.model_validate_json(r.value) for r in records if r.topic == topics.device_events]
    dead = [DeadLetter.model_validate_json(r.value) for r in records if r.topic == topics.deadletter]
    return events, dead


def test_the_registry_names_a_part_as_the_adapter_does() -> None:
    """Component.address (the spine's, hazmon/registry) and component_id (ingest's) are one format."""
    for parts in ((1, 1, 42, 1, 23), (10, 255, 0, 65535, 0), (128, 2, 42, 0, 1000)):
        assert Component(*parts).address == component_id(*parts)


def test_a_listed_part_has_no_dead_letter() -> None:
    panel = DeviceInfo("FP-1", "firenet", "S1", "fire", components=LISTED)
    events, dead = _out(panel, ComponentState(1, 1, 42, 1, 23, NORMAL | FIRE_ALARM, "3F 东侧走廊 感烟", NOW))
    assert [(e.code, e.component) for e in events] == [("fire_alarm", "1-1/42/1-023")]
    assert dead == []


def test_an_unlisted_part_still_alarms_and_leaves_its_dead_letter() -> None:
    panel = DeviceInfo("FP-1", "firenet", "S1", "fire", components=LISTED)
    events, dead = _out(
        panel,
        ComponentState(1, 1, 42, 1, 23, NORMAL | FIRE_ALARM, "3F 东侧走廊 感烟", NOW),
        # system 2: not listed
        ComponentState(1, 2, 42, 1, 23, NORMAL | FIRE_ALARM | FAULT, "5F 配电间 感烟", NOW),
    )
    assert [(e.code, e.component, e.zone) for e in events] == [
        ("fire_alarm", "1-1/42/1-023", "3F 东侧走廊 感烟"),
        ("fire_alarm", "1-2/42/1-023", "5F 配电间 感烟"),  # the frame's own 说明
        ("fault", "1-2/42/1-023", "5F 配电间 感烟"),
    ]
    (dl,) = dead  # one letter, one line for the part (not one per status bit)
    assert dl.reason == "unregistered_part" and dl.device_id == "FP-1" and dl.vendor == "firenet"
    assert dl.detail == (
        "部件地址 1-2/42/1-023 不在设备 FP-1 登记的 2 个部件中（GB/T 26875.3-2011 §8.2 部件地址：系统类型 1 "
        "火灾报警系统2号、系统地址 2、部件类型 42 点型光电感烟火灾探测器、回路 1 点位 23）；该报文照常处理（火警，说明：5F 配电间 感烟），"
        "请在注册表中补登该部件"
    )
    assert dl.raw.startswith(b"@@") and dl.stage == "ingest"


def test_a_component_configuration_of_an_unlisted_part_is_told_too() -> None:
    """类型7 部件配置情况: the panel itself describes a part the registry lacks."""
    panel = DeviceInfo("FP-1", "firenet", "S1", "fire", components=LISTED)
    events, dead = _out(panel, ComponentConfig(1, 1, 42, 4, 1, "地下室 感烟"))
    assert [(e.code, e.component) for e in events] == [("config", "1-1/42/4-001")]
    assert [d.reason for d in dead] == ["unregistered_part"] and "1-1/42/4-001" in dead[0].detail


def test_a_device_without_a_list_and_system_events_are_not_checked() -> None:
    plain = DeviceInfo("FP-2", "firenet", "S1", "fire")
    events, dead = _out(plain, ComponentState(1, 9, 42, 9, 99, NORMAL | FIRE_ALARM, "", NOW))
    assert [e.code for e in events] == ["fire_alarm"] and dead == []


# --------------------------------------------------------------------------- end to end

DISTRICT = """\
domains:
  - {name: fire, name_zh: 消防, default_interval_s: 300}
townships:
  - {id: T1, name: 临江街道, kind: 街道, duty_name: 临江街道应急值班室, duty_phone: 13957100001}
departments:
  - {id: xf, name: 区消防救援大队, duty_phone: 13900000102}
vendors:
  - {id: firenet, name: 消防网联, adapter: gbt26875, mqtt_username: firenet}
sites:
  - id: S1
    name: 江滨养老院
    township_id: T1
    contacts: [{name: 李四, phone: 13900000105}]
devices:
  - id: FP-LISTED
    vendor_id: firenet
    model: JB-QB-GST200
    domain: fire
    site_id: S1
    components:
      - {sys_type: 1, sys_addr: 1, comp_type: 42, loop: 1, point: 23, description: 3F 东侧走廊 感烟}
      - {sys_type: 1, sys_addr: 1, comp_type: 23, loop: 2, point: 5, description: 3F 楼梯间 手报}
  - {id: FP-PLAIN, vendor_id: firenet, model: JB-QB-GST200, domain: fire, site_id: S1}
matrix:
  - {id: fire, domain: fire, department_ids: [xf]}
"""


async def _rows(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def test_end_to_end_an_unregistered_part_alarms_and_is_a_dead_letter(
    ingest_env: Any, pg_dsn: str, tmp_path: Path
) -> None:
    env = await ingest_env(0)
    (tmp_path / "district.yaml").write_text(DISTRICT, encoding="utf-8")
    await import_registry(pg_dsn, tmp_path / "district.yaml")
    await env.start_bridge()
    group = f"det-{uuid.uuid4().hex[:6]}"
    svc = DetectorService(env.settings, DetectorSettings(group_id=group, poll_timeout_ms=100))
    task = asyncio.create_task(svc.run())
    root = env.settings.mqtt.topic_root
    alarm = NORMAL | FIRE_ALARM
    try:
        async with env.publisher() as pub:
            frames = {
                "FP-LISTED": [ComponentState(1, 1, 42, 1, 23, alarm, "3F 东侧走廊 感烟", NOW),
                              ComponentState(1, 1, 42, 1, 99, alarm, "5F 配电间 感烟", NOW)],
                "FP-PLAIN": [ComponentState(1, 1, 42, 1, 99, alarm, "2F 库房 感烟", NOW)],
            }
            for i, (dev, objs) in enumerate(frames.items()):
                frame = encode_frame(objs, serial=i + 1, sent_at=NOW)
                await pub.publish(f"{root}/firenet/{dev}/telemetry", frame)
        sql_alarms = "SELECT device_id, component, zone FROM events WHERE kind = 'fire.alarm' ORDER BY 1, 2"
        sql_dead = "SELECT device_id, vendor, reason, detail, raw FROM deadletters ORDER BY 1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            alarms, dead = await _rows(pg_dsn, sql_alarms), await _rows(pg_dsn, sql_dead)
            if len(alarms) == 3 and dead:
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)  # nothing else arrives (no letter for the listed part, none for FP-PLAIN)
        alarms, dead = await _rows(pg_dsn, sql_alarms), await _rows(pg_dsn, sql_dead)
    finally:
        svc.stop()
        await asyncio.wait_for(task, 30)
    assert [tuple(r) for r in alarms] == [
        ("FP-LISTED", "1-1/42/1-023", "3F 东侧走廊 感烟"),
        ("FP-LISTED", "1-1/42/1-099", "5F 配电间 感烟"),  # still alarms, with the frame's 说明
        ("FP-PLAIN", "1-1/42/1-099", "2F 库房 感烟"),  # no list: exactly as before
    ]
    (dl,) = dead
    assert (dl["device_id"], dl["vendor"], dl["reason"]) == ("FP-LISTED", "firenet", "unregistered_part")
    assert "部件地址 1-1/42/1-099 不在设备 FP-LISTED 登记的 2 个部件中（GB/T 26875.3-2011 §8.2" in dl["detail"]
    assert bytes(dl["raw"]).startswith(b"@@")
