"""The words of the texts: what happened per event kind, what the business does now per
advice class (the duty operator, for the monitoring system's own alarms), the severity and the
time as people read them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


#: What happened, in the words operators use, per event kind.
KIND_ZH: dict[str, str] = {
    "gas.high": "可燃气体浓度超高限报警",
    "gas.low": "可燃气体浓度低限报警",
    "gas.rate_of_rise": "可燃气体浓度快速上升",
    "gas.sensor_fault": "燃气探测器故障",
    "gas.valve_fault": "燃气切断阀故障",
    "gas.valve_closed": "燃气切断阀动作关闭",
    "gas.power_loss": "燃气报警装置断电",
    "gas.flatline": "燃气探测器读数停滞",
    "elevator.trapped": "电梯困人",
    "elevator.door_lock_fault": "电梯门锁回路故障",
    "elevator.door_open_moving": "电梯开门走车",
    "elevator.overspeed": "电梯超速",
    "elevator.overtravel_top": "电梯冲顶",
    "elevator.overtravel_bottom": "电梯蹲底",
    "elevator.stopped_out_of_zone": "电梯非平层停梯",
    "elevator.fault": "电梯故障",
    "elevator.frequent_faults": "电梯频繁故障",
    "fire.alarm": "火灾报警",
    "fire.test": "消防系统测试报警",
    "fire.fault": "消防设备故障",
    "fire.supervisory": "消防监管报警",
    "fire.shielded_too_long": "消防部件长时间屏蔽",
    "fire.rate_of_rise": "温度烟雾快速上升",
    "device.offline": "设备离线",
}

#: What the business does now, per advice class (fixed template text). Gas: the practice of the
#: gas companies' safety notices — no switches, no flames, shut the valve, ventilate, leave, call
#: the repair line or 119 from outside.
ADVICE: dict[str, str] = {
    "gas_leak": ("请立即关闭燃气阀门、开窗通风并疏散人员，严禁开关电器、使用明火，"
                 "到室外拨打燃气企业抢修电话或119"),
    "gas_device": "请尽快检修燃气报警装置，检修期间加强人工巡查，闻到燃气味立即关阀并拨打119",
    # {LIFT_PHONE}: lift.emergency_phone (96333), a constant of the registered template
    "lift_trapped": "请立即通知维保单位到场救援或拨打{LIFT_PHONE}，通过对讲安抚被困人员，严禁自行扒门",
    "lift_fault": "请立即停梯并设置警示，通知维保单位检修，排除故障前不得恢复使用",
    "fire_alarm": "请立即派人到场核实火情，确认起火立即拨打119并组织人员疏散",
    "fire_device": "请尽快安排消防设施维保单位检修，恢复正常监控",
    "fire_test": "此为消防系统测试信号；如未安排测试，请立即核实现场",
    "offline": "请检查设备供电和网络，尽快恢复在线",
    "other": "请尽快核查处置并反馈",
}
_ADVICE_OF: tuple[tuple[str, str], ...] = (
    ("gas.high", "gas_leak"), ("gas.low", "gas_leak"), ("gas.rate_of_rise", "gas_leak"),
    ("gas.", "gas_device"),
    ("elevator.trapped", "lift_trapped"), ("elevator.", "lift_fault"),
    ("fire.alarm", "fire_alarm"), ("fire.rate_of_rise", "fire_alarm"), ("fire.test", "fire_test"),
    ("fire.", "fire_device"),
    ("device.offline", "offline"),
)
#: The monitoring system's own alarms (domain ``system``: the canary, the watchdog pair,
#: Prometheus's rules through /api/v2/alerts) are read by the centre's 值班员 and the duty leader,
#: not by a business: per class, what it means and what to do (the SMS says "<meaning>：请<do>",
#: a call "请<do>"), and what to do once it is over (templates/system.py).
SYSTEM_ADVICE: dict[str, tuple[str, str]] = {
    "sys_watchdog": ("看门狗进程停止", "检查值守看门狗服务并重启，恢复前告警服务失去外部监督"),
    "sys_chain": ("设备报警可能漏发", "立即检查中断环节并恢复，恢复前安排人工值守"),
    "sys_bridge": ("一个接入网关停止转发", "检查该接入网关并重启，其余接入网关仍在转发"),
    "sys_stage": ("监测系统环节故障", "立即检查该服务并恢复，恢复前报警可能无法及时发出"),
}
SYSTEM_DONE: dict[str, str] = {
    "sys_watchdog": "请确认值守看门狗服务运行正常，并记录故障原因",
    "sys_chain": "请核查中断期间的设备报警是否均已发出并处置",
    "sys_bridge": "请记录故障原因",
    "sys_stage": "请核查故障期间的报警是否均已发出并处置",
}
_SYSTEM_OF: tuple[tuple[str, str], ...] = (
    ("system.watchdog_heartbeat_lost", "sys_watchdog"), ("system.canary_broken", "sys_chain"),
    ("system.canary_degraded", "sys_bridge"), ("system.", "sys_stage"),
)
#: advice classes whose events carry a reading (浓度 …%LEL): their templates name it
READING_CLASSES = frozenset({"gas_leak"})
#: advice classes of lifts: their templates name the 注册代码 when the registry has it
LIFT_CLASSES = frozenset({"lift_trapped", "lift_fault"})


def advice_class(kind: str) -> str:
    for prefix, cls in _ADVICE_OF:
        if kind.startswith(prefix):
            return cls
    return "other"


def system_class(kind: str) -> str | None:
    """The :data:`SYSTEM_ADVICE` class of a ``system.*`` kind; None for a business's alarm."""
    for prefix, cls in _SYSTEM_OF:
        if kind.startswith(prefix):
            return cls
    return None


def severity_words(severity_zh: str) -> str:
    """``橙`` → ``橙色报警``: the colour as people say it."""
    return f"{severity_zh}色报警"


def what_happened(kind: str, summary: str = "") -> str:
    return KIND_ZH.get(kind) or summary or kind


def what_to_do(kind: str, lift_phone: str = "96333") -> str:
    """The business's advice for ``kind`` (the 四单 notices and voice scripts reuse it), with the
    deployment's lift emergency number (``lift.emergency_phone``); a system alarm's: what the duty
    operator does."""
    if (sys_cls := system_class(kind)) is not None:
        return SYSTEM_ADVICE[sys_cls][1]
    return ADVICE[advice_class(kind)].removeprefix("请").replace("{LIFT_PHONE}", lift_phone)


def format_when(ts: datetime) -> str:
    """``11月3日09:05`` in China Standard Time: the reader's local clock."""
    t = ts.astimezone(CST)
    return f"{t.month}月{t.day}日{t:%H:%M}"
