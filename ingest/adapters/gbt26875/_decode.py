"""The ``gbt26875`` adapter: a GB/T 26875.3-2011 frame → hazmon items, every upload type the
standard defines (§8.1.1.1 表3: 1–8 建筑消防设施, 21/24/25/26/28 用户信息传输装置).

What each object becomes (docs/ingest.md has the table):

* states (1 system, 2 component, 21 UITD): one device event per set status bit — 火警
  ``fire_alarm``, 故障 ``fault``, 屏蔽 ``shielded``, 监管 ``supervisory``, 启动 ``started``, 反馈
  ``feedback``, 延时 ``delay``, 复位 ``reset``; an all-clear state is the restore (恢复) of what the
  part reported before. Bit 0 = 0 (测试状态) puts ``detail.test`` on the events: the detectors
  never make a real fire alarm of it. A power fault (系统 bits 8/9 主电/备电, UITD bits 3/4) is
  the same ``fault`` event on component ``主电`` / ``备电`` whichever reports it; a component's
  own 电源故障 (bit 8) is a ``fault`` of that component.
* component address: ``{系统类型}-{系统地址}/{部件类型}/{回路}-{地址:03d}`` (two systems sharing a
  loop/point are two parts); a system is ``{系统类型}-{系统地址}``; zone = the GB18030 部件说明,
  or the system's name (e.g. ``火灾报警系统1号``).
* 3 模拟量: a sample when the catalogue has the metric (温度, 气体浓度), else a refusal naming it.
* 4/24 操作信息: an ``operation`` event listing the operations, plus ``reset`` for 复位.
* 5/25 版本, 6/26/7 配置, 8/28 时间: a ``version`` / ``config`` / ``clock`` event carrying the fields
  (clock skew for times); distinct codes, as a device event's key is (device, time, code, part).

Every event carries the object's Beijing time tag (``detail.time_tag``), the frame's serial,
source address and command. Reserved status/operation bits: the object is still used and a
refusal (dead letter) names the bit. Commands (§6.6 命令字节): 2 发送数据 and 5 应答 carry data;
1 控制命令 and 4 请求 are the centre's own and 3 确认 / 6 否认 answer commands hazmon never sends:
each is refused with its reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hazmon.contracts import DeadLetterReason
from ingest.adapters.base import (
    BEIJING,
    AlarmReport,
    Item,
    MessageContext,
    RawSample,
    Refusal,
    SampleSet,
    StatusReport,
    fail,
)

from . import _tables as T
from ._frame import (
    AnalogValue,
    ComponentConfig,
    ComponentState,
    Obj,
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
)
from ._parse import decode_objects, where

__all__ = ["GBT26875", "ADAPTER", "decode_objects", "component_id", "system_id"]

# status bits (§8.3 系统状态 / 部件状态, u16)
NORMAL, FIRE_ALARM, FAULT, SHIELDED, SUPERVISORY = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
STARTED, FEEDBACK, DELAY = 1 << 5, 1 << 6, 1 << 7
MAIN_POWER_FAULT, BACKUP_POWER_FAULT, BUS_FAULT, MANUAL, CONFIG_CHANGED, RESET = (
    1 << 8,
    1 << 9,
    1 << 10,
    1 << 11,
    1 << 12,
    1 << 13,
)
POWER_FAULT = 1 << 8  # 部件状态 bit 8 电源故障
SYSTEM_RESERVED = 0xC000  # bits 14–15
COMPONENT_RESERVED = 0xFE00  # bits 9–15
# 用户信息传输装置运行状态 (u8)
UITD_FIRE, UITD_FAULT, UITD_MAIN_POWER, UITD_BACKUP_POWER, UITD_CHANNEL, UITD_LINE = (
    1 << 1,
    1 << 2,
    1 << 3,
    1 << 4,
    1 << 5,
    1 << 6,
)
UITD_RESERVED = 0x80
OP_RESET, OP_TEST, OP_SELF_TEST, OP_RESERVED = 1 << 0, 1 << 6, 1 << 4, 0x80

_EVENT_BITS = (
    (FIRE_ALARM, "fire_alarm"),
    (FAULT, "fault"),
    (SHIELDED, "shielded"),
    (SUPERVISORY, "supervisory"),
    (STARTED, "started"),
    (FEEDBACK, "feedback"),
    (DELAY, "delay"),
)
_RESTORE_CODES = ("fire_alarm", "fault", "supervisory", "shielded")
_POWER = (("主电", "main"), ("备电", "backup"))
#: analogue type → catalogue metric (others are refused by name)
_METRIC = {3: "temperature_c", 6: "gas_lel"}
UITD = "uitd"


def system_id(sys_type: int, sys_addr: int) -> str:
    return f"{sys_type}-{sys_addr}"


def component_id(sys_type: int, sys_addr: int, comp_type: int, loop: int, point: int) -> str:
    return f"{sys_type}-{sys_addr}/{comp_type}/{loop}-{point:03d}"


def _bj(t: datetime) -> str:
    return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


class GBT26875:
    name = "gbt26875"

    def decode(self, payload: bytes, ctx: MessageContext) -> list[Item]:
        head, flag, objs = decode_objects(payload)
        if not ctx.device_id:
            raise fail(DeadLetterReason.SCHEMA, "GB/T 26875.3 帧需要在主题中给出设备编号")
        dev = ctx.device_id
        if flag is None:
            return [StatusReport(dev, state="online", reason="heartbeat", ts=head["sent"].timestamp())]
        base = {
            "serial": head["serial"],
            "src": head["src"],
            "command": T.COMMAND_ZH[head["command"]],
            "type": flag,
        }
        items: list[Item] = []
        samples: list[RawSample] = []
        for i, o in enumerate(objs):
            _Object(dev, base, where(flag, i), items, samples, head["sent"]).add(o)
        if samples:
            items.insert(0, SampleSet(dev, samples))
        return _merge_operations(items) if flag in (4, 24) and len(objs) > 1 else items


class _Object:
    """Turns one object into items (appended to ``items`` / ``samples``)."""

    __slots__ = ("dev", "base", "where", "items", "samples", "sent")

    def __init__(
        self,
        dev: str,
        base: dict[str, Any],
        where: str,
        items: list[Item],
        samples: list[RawSample],
        sent: datetime,
    ) -> None:
        self.dev, self.base, self.where, self.items, self.samples, self.sent = (
            dev,
            base,
            where,
            items,
            samples,
            sent,
        )

    def ev(
        self, code: str, active: bool, comp: str, zone: str, t: datetime | None, detail: dict[str, Any]
    ) -> None:
        tt = t or self.sent
        d = {**self.base, **detail, "time_tag": _bj(tt)}
        self.items.append(AlarmReport(self.dev, code, active, comp, zone, d, tt.timestamp()))

    def refuse(self, reason: DeadLetterReason, text: str) -> None:
        self.items.append(Refusal(self.dev, reason, f"{self.where} {text}"))

    def add(self, o: Obj) -> None:
        if isinstance(o, SystemState):
            self.system_state(o)
        elif isinstance(o, ComponentState):
            self.component_state(o)
        elif isinstance(o, AnalogValue):
            self.analog(o)
        elif isinstance(o, Operation):
            sys_d = {"sys_type": o.sys_type, "sys_addr": o.sys_addr}
            self.operation(
                o.flags,
                o.operator,
                system_id(o.sys_type, o.sys_addr),
                T.system_name(o.sys_type, o.sys_addr),
                o.time,
                T.OPERATION_ZH,
                sys_d,
            )
        elif isinstance(o, UitdOperation):
            self.operation(o.flags, o.operator, UITD, "用户信息传输装置", o.time, T.UITD_OPERATION_ZH, {})
        elif isinstance(o, UitdState):
            self.uitd_state(o)
        else:
            self.info(o)

    # states ----------------------------------------------------------------------------------
    def _test(self, status: int, detail: dict[str, Any]) -> dict[str, Any]:
        return {**detail, "test": True} if not status & NORMAL else detail

    def system_state(self, o: SystemState) -> None:
        comp, zone = system_id(o.sys_type, o.sys_addr), T.system_name(o.sys_type, o.sys_addr)
        s = o.status
        d = self._test(
            s,
            {
                "sys_type": o.sys_type,
                "sys_addr": o.sys_addr,
                "status": s,
                "mode": "手动" if s & MANUAL else "自动",
            },
        )
        if s & CONFIG_CHANGED:
            d["config_changed"] = True
        if s & SYSTEM_RESERVED:
            self.refuse(
                DeadLetterReason.SCHEMA,
                f"系统状态: 预留位 {_bits(s & SYSTEM_RESERVED)} 被置位（§8.3 系统状态 "
                "bit14–15 预留），其余状态照常使用",
            )
        before = len(self.items)
        for bit, code in _EVENT_BITS:
            if s & bit:
                self.ev(code, True, comp, zone, o.time, d)
        self._power(s & MAIN_POWER_FAULT, s & BACKUP_POWER_FAULT, o.time, {**d, "reported_by": zone})
        if s & BUS_FAULT:
            self.ev("fault", True, f"{comp}/总线", f"{zone} 总线", o.time, {**d, "bus_fault": True})
        if s & RESET:
            self.ev("reset", True, comp, zone, o.time, d)
        elif len(self.items) == before:  # all clear: the restore of whatever the system reported
            for code in _RESTORE_CODES:
                self.ev(code, False, comp, zone, o.time, d)
            self._power(0, 0, o.time, {**d, "reported_by": zone}, restore=True)
            self.ev("fault", False, f"{comp}/总线", f"{zone} 总线", o.time, d)

    def _power(self, main: int, backup: int, t: datetime, d: dict[str, Any], restore: bool = False) -> None:
        """主电/备电 faults: one ``fault`` event per supply, the same whoever reports it."""
        for (comp, key), on in zip(_POWER, (main, backup), strict=True):
            if on or restore:
                self.ev("fault", bool(on), comp, "", t, {**d, "power": key})

    def component_state(self, o: ComponentState) -> None:
        comp = component_id(o.sys_type, o.sys_addr, o.comp_type, o.loop, o.point)
        zone = o.description or f"{T.component_name(o.comp_type)} {o.loop}-{o.point:03d}"
        s = o.status
        d = self._test(
            s,
            {
                "sys_type": o.sys_type,
                "sys_addr": o.sys_addr,
                "comp_type": o.comp_type,
                "comp_type_zh": T.component_name(o.comp_type),
                "loop": o.loop,
                "point": o.point,
                "status": s,
                "system": T.system_name(o.sys_type, o.sys_addr),
            },
        )
        if s & COMPONENT_RESERVED:
            self.refuse(
                DeadLetterReason.SCHEMA,
                f"部件状态: 预留位 {_bits(s & COMPONENT_RESERVED)} 被置位（§8.3 部件"
                "状态 bit9–15 预留），其余状态照常使用",
            )
        if s & POWER_FAULT:
            d["power_fault"] = True
        set_bits = [code for bit, code in _EVENT_BITS if s & bit]
        if s & POWER_FAULT and "fault" not in set_bits:
            set_bits.insert(1, "fault")
        for code in set_bits:
            self.ev(code, True, comp, zone, o.time, d)
        if not set_bits:
            for code in _RESTORE_CODES:
                self.ev(code, False, comp, zone, o.time, d)

    def uitd_state(self, o: UitdState) -> None:
        s = o.status
        d = self._test(s, {"status": s})
        t = o.time.timestamp()
        self.items.append(
            StatusReport(
                self.dev, state="online", reason="heartbeat", mains_power=not s & UITD_MAIN_POWER, ts=t
            )
        )
        if s & UITD_RESERVED:
            self.refuse(
                DeadLetterReason.SCHEMA, "用户信息传输装置运行状态: 预留位 bit7 被置位，其余状态照常使用"
            )
        parts = (
            (UITD_FIRE, "fire_alarm", UITD, "用户信息传输装置"),
            (UITD_FAULT, "fault", UITD, "用户信息传输装置"),
            (UITD_CHANNEL, "fault", f"{UITD}/信道", "与监控中心通信信道"),
            (UITD_LINE, "fault", f"{UITD}/线路", "监测连接线路"),
        )
        any_set = bool(s & 0x7E)
        for bit, code, comp, zone in parts:
            if s & bit or not any_set:
                self.ev(code, bool(s & bit), comp, zone, o.time, d)
        self._power(
            s & UITD_MAIN_POWER,
            s & UITD_BACKUP_POWER,
            o.time,
            {**d, "reported_by": "用户信息传输装置"},
            restore=not any_set,
        )

    # operations, analogue values, information ----------------------------------------------
    def operation(
        self,
        flags: int,
        operator: int,
        comp: str,
        zone: str,
        t: datetime,
        names: tuple[str, ...],
        d: dict[str, Any],
    ) -> None:
        if flags & OP_RESERVED:
            self.refuse(DeadLetterReason.SCHEMA, "操作标志: 预留位 bit7 被置位，其余操作照常使用")
        ops = [name for i, name in enumerate(names) if flags & (1 << i)]
        d = {**d, "operations": ops, "operator": operator, "flags": flags}
        if flags & (OP_TEST | OP_SELF_TEST):
            d["declared_test"] = True
        self.ev("operation", True, comp, zone, t, d)
        if flags & OP_RESET:
            self.ev("reset", True, comp, zone, t, {**d, "by_operation": True})

    def analog(self, o: AnalogValue) -> None:
        name, unit, scale = T.ANALOG.get(o.analog_type, ("", "", 1.0))
        metric = _METRIC.get(o.analog_type)
        if metric is None:
            what = f"{name}（{unit}）" if name else ("未用" if o.analog_type == 0 else "预留/用户自定义")
            self.refuse(
                DeadLetterReason.UNKNOWN_METRIC,
                f"模拟量类型 {o.analog_type} {what}: 本平台没有对应的指标，值 {o.raw * scale:g}{unit} 未存储",
            )
            return
        self.samples.append(RawSample(metric, o.raw * scale, unit, o.time.timestamp(), self.base["serial"]))

    def info(self, o: Obj) -> None:
        if isinstance(o, SoftwareVersion | SystemConfig | SystemTime | ComponentConfig):
            comp, zone = system_id(o.sys_type, o.sys_addr), T.system_name(o.sys_type, o.sys_addr)
            d: dict[str, Any] = {"sys_type": o.sys_type, "sys_addr": o.sys_addr}
        else:
            comp, zone, d = UITD, "用户信息传输装置", {}
        t: datetime | None = None
        code = "config"
        if isinstance(o, SoftwareVersion | UitdVersion):
            code = "version"
            d["software_version"] = f"{o.major}.{o.minor}"
        elif isinstance(o, SystemConfig | UitdConfig):
            d["config"] = o.text
        elif isinstance(o, ComponentConfig):
            comp = component_id(o.sys_type, o.sys_addr, o.comp_type, o.loop, o.point)
            zone = o.description or f"{T.component_name(o.comp_type)} {o.loop}-{o.point:03d}"
            d.update(
                comp_type=o.comp_type,
                comp_type_zh=T.component_name(o.comp_type),
                loop=o.loop,
                point=o.point,
                description=o.description,
            )
        elif isinstance(o, SystemTime | UitdTime):
            code, t = "clock", o.time
            d["clock"] = _bj(o.time)
            d["clock_skew_s"] = round(o.time.timestamp() - self.sent.timestamp(), 3)
        self.ev(code, True, comp, zone, t, d)


def _merge_operations(items: list[Item]) -> list[Item]:
    """Operations of one part at one time tag become one ``operation`` event listing them all: a
    device event's key is (device, time, code, part), so two would keep only the first."""
    out: list[Item] = []
    seen: dict[tuple[str, float | None], AlarmReport] = {}
    for it in items:
        if isinstance(it, AlarmReport) and it.code == "operation":
            first = seen.get((it.component, it.ts))
            if first is not None:
                d = first.detail
                d["operations"] = d["operations"] + [
                    op for op in it.detail["operations"] if op not in d["operations"]
                ]
                d["operators"] = d.get("operators", [d["operator"]]) + [it.detail["operator"]]
                if it.detail.get("declared_test"):
                    d["declared_test"] = True
                continue
            seen[(it.component, it.ts)] = it
        out.append(it)
    return out


def _bits(mask: int) -> str:
    return ",".join(f"bit{i}" for i in range(16) if mask & (1 << i))


ADAPTER = GBT26875()
