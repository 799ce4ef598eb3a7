"""GB/T 26875.3 frames through the adapter into the fire detector (pure engine, no services):
test state, the address of a part, power faults, operation info — what detection makes of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from det_scenarios import Feed, Scenario, episodes, run_engine

from detectors.config import DetectorConfig
from detectors.state import DeviceMeta
from hazmon.contracts import DeviceEvent, Event
from ingest.adapters import get_adapter
from ingest.adapters.base import AlarmReport, MessageContext
from ingest.adapters.gbt26875 import (
    BACKUP_POWER_FAULT,
    FIRE_ALARM,
    MAIN_POWER_FAULT,
    NORMAL,
    OP_RESET,
    OP_TEST,
    UITD_BACKUP_POWER,
    UITD_MAIN_POWER,
    ComponentState,
    Obj,
    Operation,
    SystemState,
    UitdState,
    encode_frame,
)

T0 = datetime(2026, 3, 5, 6, 0, 0, tzinfo=UTC)
PANEL = "FP-1"


def _feeds(frames: list[tuple[datetime, list[Obj]]]) -> list[Feed]:
    adapter = get_adapter("gbt26875")
    feeds = []
    for serial, (t, objs) in enumerate(frames):
        ctx = MessageContext("t", "firenet", PANEL, "telemetry", t.timestamp())
        for it in adapter.decode(encode_frame(objs, serial=serial, sent_at=t), ctx):
            if not isinstance(it, AlarmReport):
                continue
            ts = datetime.fromtimestamp(it.ts or t.timestamp(), UTC)
            ev = DeviceEvent(
                device_id=PANEL,
                site_id="hosp-1",
                domain="fire",
                vendor="firenet",
                code=it.code,
                active=it.active,
                component=it.component,
                zone=it.zone,
                detail=it.detail,
                ts=ts,
                received_at=ts,
            )
            feeds.append(Feed("device_events", PANEL, ev.model_dump_json().encode(), ts))
    return feeds


def _run(frames: list[tuple[datetime, list[Obj]]]) -> tuple[dict[str, dict[str, Any]], list[Event]]:
    meta = {PANEL: DeviceMeta(site_id="hosp-1", domain="fire", model="JB-QB-GST200", site_class="hospital")}
    sc = Scenario(
        "gbt", Path("gbt"), DetectorConfig({"defaults": {}}, source="test"), meta, _feeds(frames), [], 3
    )
    _, events, dead = run_engine(sc)
    assert dead == []
    return episodes(events), events


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _part(sys_addr: int, point: int, status: int, desc: str, m: float) -> ComponentState:
    return ComponentState(1, sys_addr, 42, 1, point, status, desc, _at(m))


def test_a_part_in_test_state_is_a_test_never_a_fire_alarm() -> None:
    eps, events = _run([(_at(0), [_part(1, 12, FIRE_ALARM, "3F 东侧走廊", 0)])])  # bit 0 = 0: 测试状态
    assert {e["kind"] for e in eps.values()} == {"fire.test"}
    (ev,) = events
    assert ev.summary == "测试 火警 火灾报警系统1号 3F 东侧走廊（部件处于测试状态，非真实火警）"
    assert ev.labels["test"] == "测试" and ev.severity.value == "blue"


def test_a_declared_test_does_not_mute_a_real_alarm() -> None:
    eps, events = _run(
        [
            (_at(0), [Operation(1, 1, OP_TEST, 7, _at(0))]),  # 操作信息 测试
            (_at(2), [_part(1, 13, NORMAL | FIRE_ALARM, "3F 西", 2)]),
            (_at(30), [Operation(1, 1, OP_RESET, 7, _at(30))]),  # 复位 ends the episode and the test
            (_at(31), [_part(1, 14, NORMAL | FIRE_ALARM, "3F 南", 31)]),
        ]
    )
    alarms = sorted(
        (e for e in events if e.kind == "fire.alarm" and e.state.value == "firing"), key=lambda e: e.starts_at
    )
    assert [e.component for e in alarms] == ["1-1/42/1-013", "1-1/42/1-014"]
    assert alarms[0].summary == "火警 火灾报警系统1号 3F 西（系统测试期间报警，按真实火警处理）"
    assert alarms[1].summary == "火警 火灾报警系统1号 3F 南"  # after 复位 the test is over
    first = next(e for e in eps.values() if e["component"] == "1-1/42/1-013")
    assert first["state"] == "resolved" and first["ends_at"] == _at(30)


def test_two_systems_sharing_loop_and_point_are_two_episodes() -> None:
    frame = [_part(1, 12, NORMAL | FIRE_ALARM, "A座 3F", 0), _part(2, 12, NORMAL | FIRE_ALARM, "B座 3F", 0)]
    eps, events = _run([(_at(0), frame), (_at(3), [_part(2, 12, NORMAL, "B座 3F", 3)])])
    got = {(e["component"], e["state"]) for e in eps.values() if e["kind"] == "fire.alarm"}
    assert got == {("1-1/42/1-012", "firing"), ("1-2/42/1-012", "resolved")}
    assert {e.summary for e in events if e.state.value == "firing"} == {
        "火警 火灾报警系统1号 A座 3F",
        "火警 火灾报警系统2号 B座 3F",
    }


def test_a_power_fault_is_one_event_whoever_reports_it() -> None:
    panel = _run([(_at(0), [SystemState(1, 1, NORMAL | MAIN_POWER_FAULT | BACKUP_POWER_FAULT, _at(0))])])[0]
    uitd = _run([(_at(0), [UitdState(NORMAL | UITD_MAIN_POWER | UITD_BACKUP_POWER, _at(0))])])[0]
    key = lambda eps: {(e["kind"], e["component"], e["state"]) for e in eps.values()}  # noqa: E731
    assert key(panel) == key(uitd) == {("fire.fault", "主电", "firing"), ("fire.fault", "备电", "firing")}
    # both report the same supply: one episode; the UITD's all-clear restores it
    both = _run(
        [
            (_at(0), [SystemState(1, 1, NORMAL | MAIN_POWER_FAULT, _at(0))]),
            (_at(1), [UitdState(NORMAL | UITD_MAIN_POWER, _at(1))]),
            (_at(9), [UitdState(NORMAL, _at(9))]),
        ]
    )[0]
    assert [(e["component"], e["starts_at"], e["ends_at"]) for e in both.values()] == [
        ("主电", _at(0), _at(9))
    ]
