"""The frame check of GB/T 26875.3-2011 (§6.6 数据包结构) and the refusal of what hazmon does not
take: commands other than 发送数据/应答 and type flags that are not uploads (§8.1.1.1 表3)."""

from __future__ import annotations

import struct
from typing import Any

from hazmon.contracts import DeadLetterReason
from ingest.adapters.base import fail

from . import _tables as T
from ._frame import (
    CMD_RESPONSE,
    CMD_SEND,
    END,
    HEADER_LEN,
    MAX_ADU,
    START,
    BadObject,
    Obj,
    checksum,
    parse_object,
    parse_time,
)

__all__ = ["decode_objects", "where"]


def where(flag: int, i: int) -> str:
    return f"GB/T 26875.3 类型 {flag}（{T.type_name(flag)}）对象 {i}"


def decode_objects(payload: bytes) -> tuple[dict[str, Any], int | None, list[Obj]]:
    """Checks the frame (§6.6) and parses its objects: (header fields, type flag, objects).
    Raises :class:`AdapterError` with the reason and the field."""
    n = len(payload)
    if n < 2 or payload[:2] != START:
        raise fail(DeadLetterReason.MALFORMED, "GB/T 26875.3 §6.6 启动符: 帧不以 '@@' 开始")
    if n < 2 + HEADER_LEN:
        raise fail(
            DeadLetterReason.TRUNCATED, f"GB/T 26875.3 §6.6 控制单元: 帧只有 {n} 字节，短于 27 字节的帧头"
        )
    adu_len, command = struct.unpack_from("<HB", payload, 24)
    if adu_len > MAX_ADU:
        raise fail(DeadLetterReason.SCHEMA, f"GB/T 26875.3 §6.6 应用数据单元长度 {adu_len} 超过 {MAX_ADU}")
    expected = 2 + HEADER_LEN + adu_len + 3
    if n < expected:
        raise fail(DeadLetterReason.TRUNCATED, f"GB/T 26875.3 §6.6: 帧有 {n} 字节，帧头声明 {expected} 字节")
    if n > expected:
        raise fail(DeadLetterReason.MALFORMED, f"GB/T 26875.3 §6.6: 结束符后多出 {n - expected} 字节")
    if payload[-2:] != END:
        raise fail(DeadLetterReason.MALFORMED, "GB/T 26875.3 §6.6 结束符: 帧不以 '##' 结束")
    body = payload[2 : 2 + HEADER_LEN + adu_len]
    if checksum(body) != payload[-3]:
        raise fail(
            DeadLetterReason.CHECKSUM,
            f"GB/T 26875.3 §6.6 校验和 {payload[-3]:#04x} ≠ 计算值 {checksum(body):#04x}",
        )
    try:
        sent = parse_time(payload[6:12], "时间标签")
    except BadObject as e:
        raise fail(DeadLetterReason.BAD_TIMESTAMP, f"GB/T 26875.3 §6.6 控制单元{e}") from None
    head = {
        "serial": payload[2] | payload[3] << 8,
        "version": f"{payload[4]}.{payload[5]}",
        "sent": sent,
        "src": payload[12:18].hex(),
        "command": command,
    }
    if command not in (CMD_SEND, CMD_RESPONSE):
        raise fail(DeadLetterReason.SCHEMA, _command_refusal(command))
    adu = payload[2 + HEADER_LEN : 2 + HEADER_LEN + adu_len]
    if not adu:
        return head, None, []
    if len(adu) < 2:
        raise fail(DeadLetterReason.TRUNCATED, "GB/T 26875.3 §7 应用数据单元短于 类型标志 + 信息对象数目")
    flag, count = adu[0], adu[1]
    if flag not in T.UPLOAD_TYPES:
        raise fail(DeadLetterReason.SCHEMA, _type_refusal(flag))
    if count == 0:
        raise fail(DeadLetterReason.SCHEMA, f"GB/T 26875.3 §8.1.2 信息对象数目: 类型 {flag} 的数目为 0")
    objs: list[Obj] = []
    at = 2
    for i in range(count):
        try:
            obj, at = parse_object(flag, adu, at)
        except BadObject as e:
            reason = DeadLetterReason.BAD_TIMESTAMP if e.field == "时间标签" else DeadLetterReason.SCHEMA
            raise fail(reason, f"{where(flag, i)} {e.field}: {e}") from None
        objs.append(obj)
    if at != len(adu):
        raise fail(
            DeadLetterReason.SCHEMA,
            f"GB/T 26875.3 §8.1.2 信息对象数目: 类型 {flag} 的 {count} 个对象共 "
            f"{at - 2} 字节，应用数据单元有 {len(adu) - 2} 字节",
        )
    return head, flag, objs


def _command_refusal(command: int) -> str:
    name = T.COMMAND_ZH.get(command, "用户自定义" if command >= 128 else "预留")
    base = f"GB/T 26875.3 §6.6 命令字节 {command}（{name}）: "
    if command in (1, 4):
        return base + (
            "这是监控中心下发给用户信息传输装置的命令（§6.2 控制命令 / §6.4 信息查询），"
            "装置不应上传；本平台只接收上传数据"
        )
    if command in (3, 6):
        return base + "这是对监控中心所发命令的回答（§6.5），本平台不向装置发命令，此回答无可对应，未使用"
    return base + "标准未定义此命令，未使用"


def _type_refusal(flag: int) -> str:
    base = f"GB/T 26875.3 §8.1.1.1 表3 类型标志 {flag}（{T.type_name(flag)}）: "
    if flag in T.QUERY_TYPES:
        return base + "这是监控中心下发的读/控制命令，装置不应上传；本平台只接收上传数据，不作应答"
    return base + "标准中为预留或用户自定义，本平台不解析"
