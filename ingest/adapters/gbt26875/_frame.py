"""GB/T 26875.3-2011 frames as bytes: the information objects (§8.2 信息对象) as dataclasses,
their parsers and the encoder the simulator and the tests use. No meaning here — what an
object means for detection is :mod:`._decode`'s business.

Frame (§6.6 数据包结构; multi-byte integers low byte first)::

    '@@' | serial u16 | version 2B | time 6B | src addr 6B | dst addr 6B | ADU length u16
         | command 1B | application data unit (length bytes) | checksum 1B | '##'

The 25 bytes after ``@@`` are the control unit; the checksum is the sum of control unit and
application data bytes mod 256. A time tag is 6 bytes ``sec min hour day month year-2000`` in
Beijing time. An application data unit (§7) is a type flag (§8.1.1.1 表3), an object count and
the objects. Object layouts (bytes):

==== ========================== =====================================================================
type object                     layout
==== ========================== =====================================================================
1    建筑消防设施系统状态        system type 1, system address 1, status u16, time 6 (10)
2    建筑消防设施部件运行状态    system 1+1, component type 1, component address u32, status u16,
                                 description 31 (GB18030, NUL padded), time 6 (46)
3    建筑消防设施部件模拟量值    system 1+1, component type 1, address u32, analogue type 1, value i16,
                                 time 6 (16)
4    建筑消防设施操作信息        system 1+1, operation flags 1, operator number 1, time 6 (10)
5    建筑消防设施软件版本        system 1+1, major 1, minor 1 (4, no time tag)
6    建筑消防设施系统配置情况    system 1+1, length L 1, configuration text L (GB18030) (3+L)
7    建筑消防设施部件配置情况    system 1+1, component type 1, address u32, description 31 (38)
8    建筑消防设施系统时间        system 1+1, time 6 (8)
21   用户信息传输装置运行状态    status u8, time 6 (7)
24   用户信息传输装置操作信息    operation flags 1, operator number 1, time 6 (8)
25   用户信息传输装置软件版本    major 1, minor 1 (2)
26   用户信息传输装置配置情况    length L 1, configuration text L (1+L)
28   用户信息传输装置系统时间    time 6 (6)
==== ========================== =====================================================================

The component address u32 is read as loop 回路 (high half) and point 地址 (low half).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from hazmon.errors import HazmonError
from ingest.adapters.base import BEIJING

__all__ = [
    "START",
    "END",
    "HEADER_LEN",
    "MAX_ADU",
    "OBJ_LEN",
    "CMD_CONTROL",
    "CMD_SEND",
    "CMD_CONFIRM",
    "CMD_REQUEST",
    "CMD_RESPONSE",
    "CMD_DENY",
    "SystemState",
    "ComponentState",
    "AnalogValue",
    "Operation",
    "SoftwareVersion",
    "SystemConfig",
    "ComponentConfig",
    "SystemTime",
    "UitdState",
    "UitdOperation",
    "UitdVersion",
    "UitdConfig",
    "UitdTime",
    "Obj",
    "TYPE_OF",
    "checksum",
    "encode_frame",
    "parse_object",
    "parse_time",
    "BadObject",
]

START, END = b"@@", b"##"
HEADER_LEN = 25  # control unit after '@@'
MAX_ADU = 1024  # §6.6: the application data unit is at most 1024 bytes
CMD_CONTROL, CMD_SEND, CMD_CONFIRM, CMD_REQUEST, CMD_RESPONSE, CMD_DENY = 1, 2, 3, 4, 5, 6
DESC_LEN = 31
#: fixed object sizes; 6 and 26 carry their own length byte
OBJ_LEN = {1: 10, 2: 46, 3: 16, 4: 10, 5: 4, 7: 38, 8: 8, 21: 7, 24: 8, 25: 2, 28: 6}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class SystemState:  # type 1
    sys_type: int
    sys_addr: int
    status: int
    time: datetime


@dataclass(frozen=True, slots=True)
class ComponentState:  # type 2
    sys_type: int
    sys_addr: int
    comp_type: int
    loop: int
    point: int
    status: int
    description: str
    time: datetime


@dataclass(frozen=True, slots=True)
class AnalogValue:  # type 3
    sys_type: int
    sys_addr: int
    comp_type: int
    loop: int
    point: int
    analog_type: int
    raw: int  # i16, scaled per analogue type
    time: datetime


@dataclass(frozen=True, slots=True)
class Operation:  # type 4
    sys_type: int
    sys_addr: int
    flags: int
    operator: int
    time: datetime


@dataclass(frozen=True, slots=True)
class SoftwareVersion:  # type 5
    sys_type: int
    sys_addr: int
    major: int
    minor: int


@dataclass(frozen=True, slots=True)
class SystemConfig:  # type 6
    sys_type: int
    sys_addr: int
    text: str


@dataclass(frozen=True, slots=True)
class ComponentConfig:  # type 7
    sys_type: int
    sys_addr: int
    comp_type: int
    loop: int
    point: int
    description: str


@dataclass(frozen=True, slots=True)
class SystemTime:  # type 8
    sys_type: int
    sys_addr: int
    time: datetime


@dataclass(frozen=True, slots=True)
class UitdState:  # type 21
    status: int  # u8
    time: datetime


@dataclass(frozen=True, slots=True)
class UitdOperation:  # type 24
    flags: int
    operator: int
    time: datetime


@dataclass(frozen=True, slots=True)
class UitdVersion:  # type 25
    major: int
    minor: int


@dataclass(frozen=True, slots=True)
class UitdConfig:  # type 26
    text: str


@dataclass(frozen=True, slots=True)
class UitdTime:  # type 28
    time: datetime


Obj = (
    SystemState
    | ComponentState
    | AnalogValue
    | Operation
    | SoftwareVersion
    | SystemConfig
    | ComponentConfig
    | SystemTime
    | UitdState
    | UitdOperation
    | UitdVersion
    | UitdConfig
    | UitdTime
)
TYPE_OF: dict[type, int] = {
    SystemState: 1,
    ComponentState: 2,
    AnalogValue: 3,
    Operation: 4,
    SoftwareVersion: 5,
    SystemConfig: 6,
    ComponentConfig: 7,
    SystemTime: 8,
    UitdState: 21,
    UitdOperation: 24,
    UitdVersion: 25,
    UitdConfig: 26,
    UitdTime: 28,
}


class BadObject(HazmonError, ValueError):
    """An object the parser cannot read; ``field`` names the field, for the dead letter."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


# --- encoding --------------------------------------------------------------------------------
def _time_tag(t: datetime) -> bytes:
    local = t.astimezone(BEIJING) if t.tzinfo else t
    return bytes([local.second, local.minute, local.hour, local.day, local.month, local.year - 2000])


def _text(s: str, limit: int) -> bytes:
    """GB18030 bytes of ``s`` cut at a character boundary within ``limit`` bytes."""
    out = b""
    for ch in s:
        b = ch.encode("gb18030")
        if len(out) + len(b) > limit:
            break
        out += b
    return out


def _addr(loop: int, point: int) -> int:
    return (loop << 16) | point


def _encode_obj(o: Obj) -> bytes:
    if isinstance(o, SystemState):
        return struct.pack("<BBH", o.sys_type, o.sys_addr, o.status) + _time_tag(o.time)
    if isinstance(o, ComponentState):
        desc = _text(o.description, DESC_LEN).ljust(DESC_LEN, b"\x00")
        head = struct.pack("<BBBIH", o.sys_type, o.sys_addr, o.comp_type, _addr(o.loop, o.point), o.status)
        return head + desc + _time_tag(o.time)
    if isinstance(o, AnalogValue):
        addr = _addr(o.loop, o.point)
        return struct.pack(
            "<BBBIBh", o.sys_type, o.sys_addr, o.comp_type, addr, o.analog_type, o.raw
        ) + _time_tag(o.time)
    if isinstance(o, Operation):
        return struct.pack("<BBBB", o.sys_type, o.sys_addr, o.flags, o.operator) + _time_tag(o.time)
    if isinstance(o, SoftwareVersion):
        return struct.pack("<BBBB", o.sys_type, o.sys_addr, o.major, o.minor)
    if isinstance(o, SystemConfig):
        text = _text(o.text, 255)
        return struct.pack("<BBB", o.sys_type, o.sys_addr, len(text)) + text
    if isinstance(o, ComponentConfig):
        desc = _text(o.description, DESC_LEN).ljust(DESC_LEN, b"\x00")
        return struct.pack("<BBBI", o.sys_type, o.sys_addr, o.comp_type, _addr(o.loop, o.point)) + desc
    if isinstance(o, SystemTime):
        return struct.pack("<BB", o.sys_type, o.sys_addr) + _time_tag(o.time)
    if isinstance(o, UitdState):
        return bytes([o.status]) + _time_tag(o.time)
    if isinstance(o, UitdOperation):
        return bytes([o.flags, o.operator]) + _time_tag(o.time)
    if isinstance(o, UitdVersion):
        return bytes([o.major, o.minor])
    if isinstance(o, UitdConfig):
        text = _text(o.text, 255)
        return bytes([len(text)]) + text
    return _time_tag(o.time)


def encode_frame(
    objects: Sequence[Obj],
    *,
    serial: int,
    sent_at: datetime,
    src: bytes = b"\x00" * 6,
    dst: bytes = b"\x00" * 6,
    command: int = CMD_SEND,
    version: tuple[int, int] = (1, 0),
    type_flag: int | None = None,
) -> bytes:
    """A frame carrying ``objects`` (all of one type) in one application data unit; no objects →
    an empty unit (a heartbeat with ``command`` 2). ``type_flag`` overrides the type (tests of
    types hazmon refuses)."""
    adu = b""
    if objects:
        flags = {TYPE_OF[type(o)] for o in objects}
        if len(flags) != 1:
            raise ValueError("one application data unit holds objects of one type")
        flag = flags.pop() if type_flag is None else type_flag
        adu = bytes([flag, len(objects)]) + b"".join(_encode_obj(o) for o in objects)
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


# --- parsing -----------------------------------------------------------------------------------
def parse_time(b: bytes, field: str) -> datetime:
    sec, minute, hour, day, month, year = b
    try:
        return datetime(2000 + year, month, day, hour, minute, sec, tzinfo=BEIJING)
    except ValueError:
        raise BadObject(
            field, f"时间标签 {b.hex()} 不是有效时间（§8.2 时间标签：秒 分 时 日 月 年）"
        ) from None


def _desc(b: bytes, limit: int = 64) -> str:
    # display text in a fixed field: a garbled byte must not cost the frame its fire alarm, so
    # control characters become U+FFFD (the contracts refuse them)
    text = b.split(b"\x00", 1)[0].decode("gb18030", errors="replace")
    return _CONTROL.sub("\ufffd", text).strip()[:limit]


def parse_object(flag: int, adu: bytes, at: int) -> tuple[Obj, int]:
    """The object of type ``flag`` starting at ``adu[at]`` and the offset after it."""
    size = OBJ_LEN.get(flag)
    if size is None:  # 6 and 26: a length byte, then the text
        head = 3 if flag == 6 else 1
        if at + head > len(adu):
            raise BadObject("长度", f"类型 {flag} 的对象在第 {at} 字节处被截断（缺少配置说明长度）")
        size = head + adu[at + head - 1]
    o = adu[at : at + size]
    if len(o) != size:
        raise BadObject("长度", f"类型 {flag} 的对象需要 {size} 字节，只剩 {len(o)} 字节")
    end = at + size
    if flag == 1:
        st, sa, status = struct.unpack_from("<BBH", o)
        return SystemState(st, sa, status, parse_time(o[4:10], "时间标签")), end
    if flag == 2:
        st, sa, ct, addr, status = struct.unpack_from("<BBBIH", o)
        return ComponentState(
            st, sa, ct, addr >> 16, addr & 0xFFFF, status, _desc(o[9:40]), parse_time(o[40:46], "时间标签")
        ), end
    if flag == 3:
        st, sa, ct, addr, at_, raw = struct.unpack_from("<BBBIBh", o)
        return AnalogValue(
            st, sa, ct, addr >> 16, addr & 0xFFFF, at_, raw, parse_time(o[10:16], "时间标签")
        ), end
    if flag == 4:
        return Operation(o[0], o[1], o[2], o[3], parse_time(o[4:10], "时间标签")), end
    if flag == 5:
        return SoftwareVersion(o[0], o[1], o[2], o[3]), end
    if flag == 6:
        return SystemConfig(o[0], o[1], _desc(o[3:], 255)), end
    if flag == 7:
        st, sa, ct, addr = struct.unpack_from("<BBBI", o)
        return ComponentConfig(st, sa, ct, addr >> 16, addr & 0xFFFF, _desc(o[7:38])), end
    if flag == 8:
        return SystemTime(o[0], o[1], parse_time(o[2:8], "时间标签")), end
    if flag == 21:
        return UitdState(o[0], parse_time(o[1:7], "时间标签")), end
    if flag == 24:
        return UitdOperation(o[0], o[1], parse_time(o[2:8], "时间标签")), end
    if flag == 25:
        return UitdVersion(o[0], o[1]), end
    if flag == 26:
        return UitdConfig(_desc(o[1:], 255)), end
    return UitdTime(parse_time(o[0:6], "时间标签")), end
