"""``gbt26875``: binary frames of GB/T 26875.3-2011 (城市消防远程监控系统 第3部分：报警传输网络
通信协议), the fire remote-monitoring protocol spoken by 用户信息传输装置 (user information
transmission devices) in front of fire alarm control panels, here carried as MQTT payloads.

Frame (multi-byte integers low byte first)::

    '@@' | serial u16 | version 2B | time 6B | src addr 6B | dst addr 6B | ADU length u16
         | command 1B | application data unit (length bytes) | checksum 1B | '##'

The 25 header bytes after ``@@`` are the control unit; the checksum is the sum of control unit
and application data bytes mod 256. Time tags are 6 bytes ``sec min hour day month year-2000``
in local (Beijing) time. An application data unit is a type flag, an object count and the
objects, each ending with its own time tag. Decoded here:

- type 1 建筑消防设施系统状态: system type, system address, status u16, time (10 B)
- type 2 建筑消防设施部件运行状态: system type, system address, component type, component
  address u32 (hazmon reads the high half as loop 回路, the low half as point 地址), status u16,
  31-byte GB18030 description, time (46 B)
- type 3 建筑消防设施部件模拟量值: system/component as above, analog type, value i16, time (16 B)
- type 21 用户信息传输装置运行状态: status byte, time (7 B)

Status bits (u16): 0 normal(1)/test(0), 1 fire alarm 火警, 2 fault 故障, 3 shielded 屏蔽,
4 supervisory 监管, 5 started 启动, 6 feedback 反馈, 7 delay 延时, 8 main power fault 主电故障,
9 backup power fault 备电故障, 13 reset 复位 (system status). A frame with no application
data and command 2 is a heartbeat. This module also holds the encoder the simulator and the
tests use (:func:`encode_frame`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from hazmon.contracts import DeadLetterReason
from ingest.adapters.base import (
    BEIJING,
    AlarmReport,
    Item,
    MessageContext,
    RawSample,
    SampleSet,
    StatusReport,
    fail,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

__all__ = [
    "GBT26875",
    "ADAPTER",
    "SystemState",
    "ComponentState",
    "AnalogValue",
    "UitdState",
    "encode_frame",
    "checksum",
    "NORMAL",
    "FIRE_ALARM",
    "FAULT",
    "SHIELDED",
    "SUPERVISORY",
    "STARTED",
    "FEEDBACK",
    "MAIN_POWER_FAULT",
    "BACKUP_POWER_FAULT",
    "RESET",
    "CMD_SEND",
    "CMD_CONFIRM",
]

START, END = b"@@", b"##"
HEADER_LEN = 25  # control unit after '@@'
MAX_ADU = 1024  # the standard's upper bound on the application data unit
CMD_CONTROL, CMD_SEND, CMD_CONFIRM, CMD_REQUEST, CMD_RESPONSE, CMD_DENY = 1, 2, 3, 4, 5, 6

NORMAL = 1 << 0
FIRE_ALARM = 1 << 1
FAULT = 1 << 2
SHIELDED = 1 << 3
SUPERVISORY = 1 << 4
STARTED = 1 << 5
FEEDBACK = 1 << 6
DELAY = 1 << 7
MAIN_POWER_FAULT = 1 << 8
BACKUP_POWER_FAULT = 1 << 9
RESET = 1 << 13

_EVENT_BITS = ((FIRE_ALARM, "fire_alarm"), (FAULT, "fault"), (SHIELDED, "shielded"), (SUPERVISORY, "supervisory"), (FEEDBACK, "feedback"))
_RESTORE_CODES = ("fire_alarm", "fault", "supervisory", "shielded")
_OBJ_LEN = {1: 10, 2: 46, 3: 16, 21: 7}
#: analog type → (metric, scale); 3 温度 0.1 °C, 6 气体浓度 0.1 %LEL
_ANALOG = {3: ("temperature_c", 0.1, "°C"), 6: ("gas_lel", 0.1, "%LEL")}


@dataclass(frozen=True, slots=True)
class SystemState:
    sys_type: int
    sys_addr: int
    status: int
    time: datetime


@dataclass(frozen=True, slots=True)
class ComponentState:
    sys_type: int
    sys_addr: int
    comp_type: int
    loop: int
    point: int
    status: int
    description: str
    time: datetime


@dataclass(frozen=True, slots=True)
class AnalogValue:
    sys_type: int
    sys_addr: int
    comp_type: int
    loop: int
    point: int
    analog_type: int
    raw: int  # i16, scaled per analog type
    time: datetime


@dataclass(frozen=True, slots=True)
class UitdState:
    status: int  # u8
    time: datetime


_Obj = SystemState | ComponentState | AnalogValue | UitdState


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def _time_tag(t: datetime) -> bytes:
    local = t.astimezone(BEIJING) if t.tzinfo else t
    return bytes([local.second, local.minute, local.hour, local.day, local.month, local.year - 2000])


def _encode_obj(obj: _Obj) -> tuple[int, bytes]:
    if isinstance(obj, SystemState):
        return 1, struct.pack("<BBH", obj.sys_type, obj.sys_addr, obj.status) + _time_tag(obj.time)
    if isinstance(obj, ComponentState):
        desc = obj.description.encode("gb18030")[:31].ljust(31, b"\x00")
        addr = (obj.loop << 16) | obj.point
        return 2, struct.pack("<BBBIH", obj.sys_type, obj.sys_addr, obj.comp_type, addr, obj.status) + desc + _time_tag(obj.time)
    if isinstance(obj, AnalogValue):
        addr = (obj.loop << 16) | obj.point
        body = struct.pack("<BBBIBh", obj.sys_type, obj.sys_addr, obj.comp_type, addr, obj.analog_type, obj.raw)
        return 3, body + _time_tag(obj.time)
    return 21, bytes([obj.status]) + _time_tag(obj.time)


def encode_frame(
    objects: Sequence[_Obj],
    *,
    serial: int,
    sent_at: datetime,
    src: bytes = b"\x00" * 6,
    dst: bytes = b"\x00" * 6,
    command: int = CMD_SEND,
    version: tuple[int, int] = (1, 0),
) -> bytes:
    """A GB/T 26875.3 frame carrying ``objects`` (all of one type) in one application data unit;
    no objects → an empty unit (a heartbeat with ``command`` 2)."""
    adu = b""
    if objects:
        encoded = [_encode_obj(o) for o in objects]
        flags = {flag for flag, _ in encoded}
        if len(flags) != 1:
            raise ValueError("one application data unit holds objects of one type")
        adu = bytes([flags.pop(), len(encoded)]) + b"".join(body for _, body in encoded)
    if len(src) != 6 or len(dst) != 6:
        raise ValueError("addresses are 6 bytes")
    header = (
        struct.pack("<HBB", serial & 0xFFFF, *version)
        + _time_tag(sent_at)
        + src
        + dst
        + struct.pack("<HB", len(adu), command)
    )
    body = header + adu
    return START + body + bytes([checksum(body)]) + END


def _parse_time(b: bytes, where: str) -> float:
    sec, minute, hour, day, month, year = b
    try:
        return datetime(2000 + year, month, day, hour, minute, sec, tzinfo=BEIJING).timestamp()
    except ValueError:
        raise fail(DeadLetterReason.BAD_TIMESTAMP, f"{where}: invalid time tag {b.hex()}") from None


class GBT26875:
    name = "gbt26875"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        n = len(payload)
        if n < 2 or payload[:2] != START:
            raise fail(DeadLetterReason.MALFORMED, "frame does not start with '@@'")
        if n < 2 + HEADER_LEN:
            raise fail(DeadLetterReason.TRUNCATED, f"frame of {n} bytes is shorter than its header")
        adu_len, command = struct.unpack_from("<HB", payload, 24)
        if adu_len > MAX_ADU:
            raise fail(DeadLetterReason.SCHEMA, f"application data length {adu_len} > {MAX_ADU}")
        expected = 2 + HEADER_LEN + adu_len + 3
        if n < expected:
            raise fail(DeadLetterReason.TRUNCATED, f"frame has {n} bytes, its header announces {expected}")
        if n > expected:
            raise fail(DeadLetterReason.MALFORMED, f"{n - expected} bytes after the frame end")
        if payload[-2:] != END:
            raise fail(DeadLetterReason.MALFORMED, "frame does not end with '##'")
        body = payload[2 : 2 + HEADER_LEN + adu_len]
        if checksum(body) != payload[-3]:
            raise fail(DeadLetterReason.CHECKSUM, f"checksum {payload[-3]:#04x} != computed {checksum(body):#04x}")
        if not ctx.device_id:
            raise fail(DeadLetterReason.SCHEMA, "GB/T 26875.3 frames need the device id in the topic")
        serial = payload[2] | payload[3] << 8
        sent = _parse_time(payload[6:12], "header time")
        src = payload[12:18].hex()
        adu = payload[2 + HEADER_LEN : 2 + HEADER_LEN + adu_len]
        dev = ctx.device_id
        if command != CMD_SEND:
            return []  # confirm/deny/response frames carry nothing for us
        if not adu:
            return [StatusReport(dev, state="online", reason="heartbeat", ts=sent)]
        if len(adu) < 2:
            raise fail(DeadLetterReason.TRUNCATED, "application data unit shorter than type + count")
        type_flag, count = adu[0], adu[1]
        size = _OBJ_LEN.get(type_flag)
        if size is None:
            raise fail(DeadLetterReason.SCHEMA, f"unsupported application data type {type_flag}")
        if count == 0 or len(adu) != 2 + count * size:
            raise fail(DeadLetterReason.SCHEMA, f"type {type_flag}: {count} objects of {size} bytes do not fill {len(adu) - 2} bytes")
        detail_base = {"serial": serial, "src": src}
        items: list[Item] = []
        samples: list[RawSample] = []
        for i in range(count):
            o = adu[2 + i * size : 2 + (i + 1) * size]
            where = f"object {i}"
            if type_flag == 1:
                sys_type, sys_addr, status = struct.unpack_from("<BBH", o)
                ts = _parse_time(o[4:10], where)
                comp = f"sys{sys_type}-{sys_addr}"
                items.extend(self._events(dev, status, comp, "", ts, {**detail_base, "system": True}))
                if status & RESET:
                    items.append(AlarmReport(dev, "reset", True, comp, "", dict(detail_base), ts))
            elif type_flag == 2:
                sys_type, sys_addr, comp_type, addr, status = struct.unpack_from("<BBBIH", o)
                # the description is display text in a fixed field: a garbled byte must not cost
                # the frame its fire alarm, so control characters become U+FFFD (the contracts refuse them)
                desc = _CONTROL.sub("\ufffd", o[9:40].split(b"\x00", 1)[0].decode("gb18030", errors="replace")).strip()[:64]
                ts = _parse_time(o[40:46], where)
                comp = f"{addr >> 16}-{addr & 0xFFFF:03d}"
                detail = {**detail_base, "sys_type": sys_type, "sys_addr": sys_addr, "comp_type": comp_type}
                items.extend(self._events(dev, status, comp, desc, ts, detail))
            elif type_flag == 3:
                sys_type, sys_addr, comp_type, addr, analog_type, raw = struct.unpack_from("<BBBIBh", o)
                ts = _parse_time(o[10:16], where)
                metric, scale, unit = _ANALOG.get(analog_type, (f"analog_{analog_type}", 1.0, ""))
                samples.append(RawSample(metric, raw * scale, unit, ts, serial))
            else:  # 21: UITD status byte
                status = o[0]
                ts = _parse_time(o[1:7], where)
                items.append(StatusReport(dev, state="online", reason="heartbeat", mains_power=not status & (1 << 3), ts=ts))
                for bit, code in ((FIRE_ALARM, "fire_alarm"), (FAULT, "fault")):
                    if status & bit:
                        items.append(AlarmReport(dev, code, True, "uitd", "", dict(detail_base), ts))
        if samples:
            items.insert(0, SampleSet(dev, samples))
        return items

    @staticmethod
    def _events(dev: str, status: int, comp: str, zone: str, ts: float, detail: dict[str, object]) -> list[Item]:
        if not status & NORMAL:
            detail = {**detail, "test": True}
        if status & (MAIN_POWER_FAULT | BACKUP_POWER_FAULT):
            detail = {**detail, "main_power_fault": bool(status & MAIN_POWER_FAULT), "backup_power_fault": bool(status & BACKUP_POWER_FAULT)}
        out: list[Item] = [AlarmReport(dev, code, True, comp, zone, detail, ts) for bit, code in _EVENT_BITS if status & bit]
        if status & (MAIN_POWER_FAULT | BACKUP_POWER_FAULT) and not status & FAULT:
            out.append(AlarmReport(dev, "fault", True, comp, zone, detail, ts))
        if not out and not status & RESET:
            # an all-clear status is the restore (恢复) of whatever this part reported before
            out = [AlarmReport(dev, code, False, comp, zone, detail, ts) for code in _RESTORE_CODES]
        return out


ADAPTER = GBT26875()
