"""GB/T 26875.3-2011 conformance: vectors written from the standard's text, one per clause
they exercise, and round trips of every upload type (hypothesis).

Each vector's application data unit is written out byte by byte from the clause it cites; the
frame around it (§6.6: '@@', control unit, checksum, '##') is built by :func:`frame` below, an
implementation of §6.6 independent of the adapter's encoder. Clause numbers: §6.6 数据包结构
(控制单元, 命令字节), §7 应用数据单元, §8.1.1.1 表3 类型标志, §8.1.2 信息对象数目, §8.2 信息对象
(layouts), §8.3 数据定义细则 (status bits, 操作标志, 模拟量类型).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hazmon.errors import AdapterError
from ingest.adapters import get_adapter
from ingest.adapters.base import BEIJING, AlarmReport, MessageContext, Refusal, SampleSet, StatusReport
from ingest.adapters.gbt26875 import (
    CMD_RESPONSE,
    AnalogValue,
    ComponentConfig,
    ComponentState,
    Operation,
    SoftwareVersion,
    SystemConfig,
    SystemState,
    SystemTime,
    UitdConfig,
    UitdOperation,
    UitdState,
    UitdTime,
    UitdVersion,
    decode_objects,
    encode_frame,
)

#: 2024-05-01 12:00:00 Beijing time as a time tag: 秒 分 时 日 月 年-2000
TAG = "00000c010518"
BJ = datetime(2024, 5, 1, 12, 0, 0, tzinfo=BEIJING)
SENT = BJ
ADAPTER = get_adapter("gbt26875")


def frame(adu_hex: str, command: int = 2, serial: int = 1) -> bytes:
    """§6.6: '@@' | serial u16 LE | version 1.0 | time tag | src 6 | dst 6 | ADU length u16 LE |
    command | ADU | checksum (sum of control unit + ADU mod 256) | '##'."""
    adu = bytes.fromhex(adu_hex)
    control = (
        serial.to_bytes(2, "little")
        + bytes([1, 0])
        + bytes.fromhex(TAG)
        + bytes(6)
        + bytes(6)
        + len(adu).to_bytes(2, "little")
        + bytes([command])
    )
    return b"@@" + control + adu + bytes([sum(control + adu) & 0xFF]) + b"##"


def decode(payload: bytes) -> list:  # type: ignore[type-arg]
    return ADAPTER.decode(payload, MessageContext("t", "firenet", "FP-1", "telemetry", BJ.timestamp()))


def events(items: list) -> list[tuple[str, bool, str]]:  # type: ignore[type-arg]
    return [(i.code, i.active, i.component) for i in items if isinstance(i, AlarmReport)]


# --- one vector per upload type (§8.1.1.1 表3, layouts §8.2) -----------------------------------
# (clause, ADU hex, the object the clause describes)
VECTORS = [
    (
        "§8.2 类型1 系统状态: 火灾报警系统(1) 1号, 状态 bit0 正常 + bit1 火警",
        "010101010300" + TAG,
        SystemState(1, 1, 0x0003, BJ),
    ),
    (
        "§8.2 类型2 部件运行状态: 系统1/1, 点型光电感烟(42), 回路2 地址23, 正常+火警, 说明 '3F东'",
        "020101012a170002000300" + "3346b6ab".ljust(62, "0") + TAG,
        ComponentState(1, 1, 42, 2, 23, 0x0003, "3F东", BJ),
    ),
    (
        "§8.2 类型3 部件模拟量值: 温度(3) 25.3 °C → 253 (0xfd00 低字节先)",
        "030101011f0500010003fd00" + TAG,
        AnalogValue(1, 1, 31, 1, 5, 3, 253, BJ),
    ),
    (
        "§8.2 类型3 模拟量值 i16: −12.5 °C → −125 (0x83ff)",
        "030101011f050001000383ff" + TAG,
        AnalogValue(1, 1, 31, 1, 5, 3, -125, BJ),
    ),
    (
        "§8.2 类型4 操作信息: 操作标志 bit0 复位 + bit1 消音, 操作员 5",
        "040101010305" + TAG,
        Operation(1, 1, 0x03, 5, BJ),
    ),
    ("§8.2 类型5 软件版本: 主版本 2 次版本 13 (无时间标签)", "05010101020d", SoftwareVersion(1, 1, 2, 13)),
    (
        "§8.2 类型6 系统配置情况: 长度 6 + 'GST200'",
        "0601010106" + b"GST200".hex(),
        SystemConfig(1, 1, "GST200"),
    ),
    (
        "§8.2 类型7 部件配置情况: 手动火灾报警按钮(23) 回路1 地址9, 说明 '大厅'",
        "070101011709000100" + "b4f3ccfc".ljust(62, "0"),
        ComponentConfig(1, 1, 23, 1, 9, "大厅"),
    ),
    ("§8.2 类型8 系统时间", "08010101" + TAG, SystemTime(1, 1, BJ)),
    ("§8.2 类型21 装置运行状态: bit0 正常 + bit3 主电故障", "150109" + TAG, UitdState(0x09, BJ)),
    ("§8.2 类型24 装置操作信息: bit5 查岗应答, 操作员 3", "18012003" + TAG, UitdOperation(0x20, 3, BJ)),
    ("§8.2 类型25 装置软件版本 1.3", "19010103", UitdVersion(1, 3)),
    ("§8.2 类型26 装置配置情况: 长度 4 + 'v1.0'", "1a0104" + b"v1.0".hex(), UitdConfig("v1.0")),
    ("§8.2 类型28 装置系统时间", "1c01" + TAG, UitdTime(BJ)),
]


@pytest.mark.parametrize(("clause", "adu", "obj"), VECTORS, ids=[v[0][:12] for v in VECTORS])
def test_vector_decodes_to_the_clause_object_and_encodes_back(clause: str, adu: str, obj: object) -> None:
    payload = frame(adu)
    head, flag, objs = decode_objects(payload)
    assert objs == [obj], clause
    assert flag == int(adu[:2], 16) and head["serial"] == 1 and head["sent"] == SENT
    assert encode_frame([obj], serial=1, sent_at=SENT) == payload, clause  # type: ignore[list-item]
    items = decode(payload)
    assert items, clause  # every upload type leaves items (events, status, samples or a refusal)
    for it in items:
        if isinstance(it, AlarmReport):
            assert it.detail["time_tag"] == "2024-05-01 12:00:00" and it.detail["type"] == flag


def test_6_6_frame_layout_and_heartbeat() -> None:
    """§6.6: an empty application data unit with command 2 (发送数据) is a heartbeat."""
    payload = frame("")
    assert len(payload) == 30 and payload[26] == 2
    (hb,) = decode(payload)
    assert isinstance(hb, StatusReport) and hb.reason == "heartbeat" and hb.ts == BJ.timestamp()


def test_8_3_status_bits_each_become_their_event() -> None:
    """§8.3 系统状态: bit1 火警 … bit7 延时, bit8 主电故障, bit9 备电故障, bit10 总线故障, bit13 复位."""
    got = events(decode(frame("01010101ff27" + TAG)))  # bits 0–10 and 13
    assert got == [
        ("fire_alarm", True, "1-1"),
        ("fault", True, "1-1"),
        ("shielded", True, "1-1"),
        ("supervisory", True, "1-1"),
        ("started", True, "1-1"),
        ("feedback", True, "1-1"),
        ("delay", True, "1-1"),
        ("fault", True, "主电"),
        ("fault", True, "备电"),
        ("fault", True, "1-1/总线"),
        ("reset", True, "1-1"),
    ]


def test_8_3_bit0_zero_is_test_state_on_every_event() -> None:
    """§8.3 部件状态 bit0: 1 正常运行状态, 0 测试状态."""
    items = decode(frame("020101012a170002000200" + "00" * 31 + TAG))
    (ev,) = [i for i in items if isinstance(i, AlarmReport)]
    assert ev.code == "fire_alarm" and ev.detail["test"] is True and ev.zone == "点型光电感烟火灾探测器 2-023"
    normal = decode(frame("020101012a170002000300" + "00" * 31 + TAG))
    assert "test" not in normal[0].detail


def test_8_3_component_power_fault_is_a_fault_of_the_part() -> None:
    """§8.3 部件状态 bit8 电源故障."""
    assert events(decode(frame("020101012a170002000101" + "00" * 31 + TAG))) == [
        ("fault", True, "1-1/42/2-023")
    ]


def test_8_3_uitd_state_bits() -> None:
    """§8.3 用户信息传输装置运行状态: bit1 火警 bit2 故障 bit3 主电 bit4 备电 bit5 信道 bit6 线路."""
    items = decode(frame("15017f" + TAG))
    assert isinstance(items[0], StatusReport) and items[0].mains_power is False
    assert events(items) == [
        ("fire_alarm", True, "uitd"),
        ("fault", True, "uitd"),
        ("fault", True, "uitd/信道"),
        ("fault", True, "uitd/线路"),
        ("fault", True, "主电"),
        ("fault", True, "备电"),
    ]


def test_8_3_operations_reset_and_declared_test() -> None:
    """§8.3 操作标志: bit0 复位 … bit4 自检, bit6 测试; 复位 is a reset, 自检/测试 a declared test."""
    items = decode(frame("040101015102" + TAG))
    op, reset = (i for i in items if isinstance(i, AlarmReport))
    assert op.code == "operation" and op.detail["operations"] == ["复位", "自检", "测试"]
    assert op.detail["declared_test"] is True and op.detail["operator"] == 2
    assert (reset.code, reset.component) == ("reset", "1-1")


def test_8_3_analogue_without_a_metric_is_refused_by_name() -> None:
    """§8.3 模拟量类型 4 压力 (MPa, 0.1): no hazmon metric — refused, naming the type and value."""
    (ref,) = decode(frame("030101016301000100040c00" + TAG))
    assert isinstance(ref, Refusal) and ref.reason == "unknown_metric"
    assert "模拟量类型 4 压力（MPa）" in ref.detail and "1.2MPa" in ref.detail
    (ss,) = decode(frame("030101010b01000100069600" + TAG))  # 6 气体浓度 15.0 %LEL
    assert isinstance(ss, SampleSet) and ss.samples[0].value == pytest.approx(15.0)


def test_6_6_command_5_response_carries_data() -> None:
    """§6.6 命令字节 5 应答: the device's answer carries the same objects as an upload."""
    items = decode(frame("010101010300" + TAG, command=CMD_RESPONSE))
    assert events(items) == [("fire_alarm", True, "1-1")] and items[0].detail["command"] == "应答"


# --- bad input: each refusal names its clause and field ----------------------------------
@pytest.mark.parametrize(
    ("command", "words"),
    [(1, "控制命令"), (3, "确认"), (4, "请求"), (6, "否认"), (0, "预留"), (7, "预留"), (200, "用户自定义")],
)
def test_6_6_commands_hazmon_does_not_take_are_refused(command: int, words: str) -> None:
    with pytest.raises(AdapterError) as e:
        decode(frame("010101010300" + TAG, command=command))
    assert e.value.reason == "schema"
    assert f"§6.6 命令字节 {command}（{words}）" in e.value.detail


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        (61, "读建筑消防设施系统状态"),
        (81, "读用户信息传输装置运行状态"),
        (89, "初始化用户信息传输装置"),
        (90, "同步用户信息传输装置时钟"),
        (91, "查岗命令"),
        (9, "预留"),
        (22, "预留"),
        (27, "预留"),
        (200, "用户自定义"),
    ],
)
def test_8_1_1_1_type_flags_that_are_not_uploads_are_refused(flag: int, words: str) -> None:
    with pytest.raises(AdapterError) as e:
        decode(frame(f"{flag:02x}01" + "00" * 10))
    assert e.value.reason == "schema" and f"§8.1.1.1 表3 类型标志 {flag}（{words}）" in e.value.detail


@pytest.mark.parametrize(
    ("adu", "words"),
    [
        ("010201010300" + TAG, "需要 10 字节，只剩 0 字节"),  # count 2, one object
        ("010101010300" + TAG + "00", "§8.1.2 信息对象数目"),  # a byte left over
        ("0100", "§8.1.2 信息对象数目: 类型 1 的数目为 0"),
        ("0601010109" + b"GST".hex(), "需要 12 字节，只剩 6 字节"),  # length byte beyond the unit
        ("01", "§7 应用数据单元短于"),
    ],
)
def test_wrong_object_lengths_are_refused_naming_the_field(adu: str, words: str) -> None:
    with pytest.raises(AdapterError) as e:
        decode(frame(adu))
    assert e.value.reason in {"schema", "truncated"} and words in e.value.detail


def test_bad_time_tag_names_the_object_and_field() -> None:
    with pytest.raises(AdapterError) as e:
        decode(frame("01010101030000000c200518"))  # day 32
    assert (
        e.value.reason == "bad_timestamp"
        and "类型 1（上传建筑消防设施系统状态）对象 0 时间标签" in e.value.detail
    )


@pytest.mark.parametrize(
    ("adu", "words", "kept"),
    [
        ("010101010340" + TAG, "系统状态: 预留位 bit14", ("fire_alarm", True, "1-1")),
        (
            "020101012a170002000302" + "00" * 31 + TAG,
            "部件状态: 预留位 bit9",
            ("fire_alarm", True, "1-1/42/2-023"),
        ),
        ("150183" + TAG, "运行状态: 预留位 bit7", ("fire_alarm", True, "uitd")),
        ("040101018101" + TAG, "操作标志: 预留位 bit7", ("reset", True, "1-1")),
    ],
)
def test_reserved_bits_are_refused_and_the_rest_is_kept(
    adu: str, words: str, kept: tuple[str, bool, str]
) -> None:
    """A reserved bit (§8.3) is a dead letter naming it; the fire alarm beside it is not lost."""
    items = decode(frame(adu))
    (ref,) = [i for i in items if isinstance(i, Refusal)]
    assert ref.reason == "schema" and words in ref.detail
    assert kept in events(items)


# --- round trips of every upload type (hypothesis) -------------------------------------------
_u8 = st.integers(0, 255)
_u16 = st.integers(0, 0xFFFF)
_times = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
#: descriptions: GB18030 text that fits 31 bytes, no control characters, no outer spaces
_desc = st.text(alphabet="ABCxyz019东西南北楼层走廊配电间-", max_size=12).filter(
    lambda s: len(s.encode("gb18030")) <= 31
)
_config = st.text(alphabet="GST型号版本 -1.2", max_size=60).map(str.strip)

_OBJECTS = {
    1: st.builds(SystemState, _u8, _u8, _u16, _times),
    2: st.builds(ComponentState, _u8, _u8, _u8, _u16, _u16, _u16, _desc, _times),
    3: st.builds(AnalogValue, _u8, _u8, _u8, _u16, _u16, _u8, st.integers(-32768, 32767), _times),
    4: st.builds(Operation, _u8, _u8, _u8, _u8, _times),
    5: st.builds(SoftwareVersion, _u8, _u8, _u8, _u8),
    6: st.builds(SystemConfig, _u8, _u8, _config),
    7: st.builds(ComponentConfig, _u8, _u8, _u8, _u16, _u16, _desc),
    8: st.builds(SystemTime, _u8, _u8, _times),
    21: st.builds(UitdState, _u8, _times),
    24: st.builds(UitdOperation, _u8, _u8, _times),
    25: st.builds(UitdVersion, _u8, _u8),
    26: st.builds(UitdConfig, _config),
    28: st.builds(UitdTime, _times),
}


@pytest.mark.parametrize("flag", sorted(_OBJECTS))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), serial=_u16)
def test_every_upload_type_round_trips(flag: int, data: st.DataObject, serial: int) -> None:
    objs = data.draw(st.lists(_OBJECTS[flag], min_size=1, max_size=3 if flag in (6, 26) else 20))
    payload = encode_frame(objs, serial=serial, sent_at=SENT)
    head, got_flag, got = decode_objects(payload)
    assert (got_flag, got, head["serial"]) == (flag, objs, serial)
    decode(payload)  # and the adapter turns it into items without error


@settings(max_examples=100, deadline=None)
@given(st.lists(_OBJECTS[2], min_size=1, max_size=20))
def test_every_part_keeps_its_own_address(objs: list[ComponentState]) -> None:
    """§8.2 部件: system type + system address + component type + loop/point is the part."""
    fired = {
        (f"{o.sys_type}-{o.sys_addr}/{o.comp_type}/{o.loop}-{o.point:03d}", o.time.timestamp())
        for o in objs
        if o.status & 0x02
    }
    items = decode(encode_frame(objs, serial=1, sent_at=SENT))
    assert fired == {
        (i.component, i.ts)
        for i in items
        if isinstance(i, AlarmReport) and i.code == "fire_alarm" and i.active
    }


def test_clock_skew_of_a_system_time() -> None:
    """§8.2 类型8: the system's clock beside the frame's: the skew is kept for the record."""
    (ev,) = decode(encode_frame([SystemTime(1, 1, SENT + timedelta(seconds=-90))], serial=1, sent_at=SENT))
    assert (
        ev.code == "clock"
        and ev.detail["clock_skew_s"] == -90.0
        and ev.detail["clock"] == "2024-05-01 11:58:30"
    )


# --- through the bridge's pipeline (no brokers): what lands where -----------------------------
def _pipeline_out(payload: bytes) -> list[tuple[str, Any]]:
    from hazmon.contracts import DeadLetter, DeviceEvent, DeviceStatus
    from hazmon.topics import Topics
    from ingest.directory import DeviceInfo, Directory, VendorInfo
    from ingest.pipeline import Pipeline

    topics = Topics("t")
    directory = Directory.build(
        [VendorInfo("firenet", "gbt26875")], [DeviceInfo("FP-1", "firenet", "S1", "fire")]
    )
    records = Pipeline(directory, topics).process("hazmon/v1/firenet/FP-1/telemetry", payload, BJ.timestamp())
    model = {topics.device_events: DeviceEvent, topics.deadletter: DeadLetter, topics.status: DeviceStatus}
    return [(r.topic, model[r.topic].model_validate_json(r.value)) for r in records if r.topic in model]


def test_a_reserved_bit_is_a_dead_letter_beside_the_kept_fire_alarm() -> None:
    out = _pipeline_out(frame("020101012a170002000302" + "00" * 31 + TAG))
    kinds = {type(m).__name__: m for _, m in out}
    assert kinds["DeviceEvent"].code == "fire_alarm" and kinds["DeviceEvent"].component == "1-1/42/2-023"
    assert kinds["DeadLetter"].reason == "schema" and "部件状态: 预留位 bit9" in kinds["DeadLetter"].detail


def test_a_confirm_frame_is_one_dead_letter_not_a_silent_drop() -> None:
    ((_, dl),) = _pipeline_out(frame("", command=3))
    assert dl.reason == "schema" and "命令字节 3（确认）" in dl.detail


def test_operations_of_one_system_at_one_time_are_one_event() -> None:
    """Two 操作信息 objects (§8.2 类型4) of one system with one time tag: one ``operation`` event
    (a device event is keyed by device, time, code and part), both operations and operators kept."""
    objs = [Operation(1, 1, 0x02, 3, BJ), Operation(1, 1, 0x40, 4, BJ), Operation(1, 2, 0x01, 3, BJ)]
    items = [i for i in decode(encode_frame(objs, serial=1, sent_at=SENT)) if isinstance(i, AlarmReport)]
    ops = {(i.component, tuple(i.detail["operations"])) for i in items if i.code == "operation"}
    assert ops == {("1-1", ("消音", "测试")), ("1-2", ("复位",))}
    merged = next(i for i in items if i.component == "1-1")
    assert merged.detail["operators"] == [3, 4] and merged.detail["declared_test"] is True
    assert [(i.code, i.component) for i in items if i.code == "reset"] == [("reset", "1-2")]
