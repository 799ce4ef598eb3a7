"""The code tables of GB/T 26875.3-2011 §8.3 (数据定义细则) that hazmon names in texts people
read: system types (系统类型标志), component types (部件类型), analogue types (模拟量类型), the
operation flags (操作标志) and the type flags (§8.1.1.1 表3 类型标志) with their direction.

Written from the standard's tables; values the standard leaves 预留 or 用户自定义 are not listed
and are named by number where they appear.
"""

from __future__ import annotations

__all__ = [
    "SYSTEM_ZH",
    "COMPONENT_ZH",
    "ANALOG",
    "TYPE_ZH",
    "UPLOAD_TYPES",
    "QUERY_TYPES",
    "COMMAND_ZH",
    "OPERATION_ZH",
    "UITD_OPERATION_ZH",
    "system_name",
    "component_name",
    "type_name",
]

#: 系统类型标志 (1 B)
SYSTEM_ZH: dict[int, str] = {
    0: "通用",
    1: "火灾报警系统",
    10: "消防联动控制器",
    11: "消火栓系统",
    12: "自动喷水灭火系统",
    13: "气体灭火系统",
    14: "水喷雾灭火系统（泵启动方式）",
    15: "水喷雾灭火系统（压力容器启动方式）",
    16: "泡沫灭火系统",
    17: "干粉灭火系统",
    18: "防烟排烟系统",
    19: "防火门及卷帘系统",
    20: "消防电梯",
    21: "消防应急广播",
    22: "消防应急照明和疏散指示系统",
    23: "消防电源",
    24: "消防电话",
}

#: 部件类型 (1 B), the commonest rows
COMPONENT_ZH: dict[int, str] = {
    0: "通用",
    1: "火灾报警控制器",
    10: "可燃气体探测器",
    11: "点型可燃气体探测器",
    12: "独立式可燃气体探测器",
    13: "线型可燃气体探测器",
    16: "电气火灾监控报警器",
    17: "剩余电流式电气火灾监控探测器",
    18: "测温式电气火灾监控探测器",
    21: "探测回路",
    22: "火灾显示盘",
    23: "手动火灾报警按钮",
    24: "消火栓按钮",
    25: "火灾探测器",
    30: "感温火灾探测器",
    31: "点型感温火灾探测器",
    34: "线型感温火灾探测器",
    37: "光纤感温火灾探测器",
    40: "感烟火灾探测器",
    41: "点型离子感烟火灾探测器",
    42: "点型光电感烟火灾探测器",
    43: "线型光束感烟火灾探测器",
    44: "吸气式感烟火灾探测器",
    50: "复合式火灾探测器",
    61: "紫外火焰探测器",
    62: "红外火焰探测器",
    69: "感光火灾探测器",
    74: "气体探测器",
    78: "图像摄像方式火灾探测器",
    79: "感声火灾探测器",
    81: "气体灭火控制器",
    82: "消防电气控制装置",
    83: "消防控制室图形显示装置",
    84: "模块",
    85: "输入模块",
    86: "输出模块",
    87: "输入/输出模块",
    88: "中继模块",
    91: "消防水泵",
    92: "消防水箱",
    95: "喷淋泵",
    96: "水流指示器",
    97: "信号阀",
    98: "报警阀",
    99: "压力开关",
    101: "阀驱动装置",
    102: "防火门",
    103: "防火阀",
    104: "通风空调",
    105: "泡沫液泵",
    106: "管网电磁阀",
    111: "防烟排烟风机",
    113: "排烟防火阀",
    114: "常闭送风口",
    115: "排烟口",
    116: "电控挡烟垂壁",
    117: "防火卷帘控制器",
    118: "防火门监控器",
    121: "警报装置",
}

#: 模拟量类型 → (name, unit, scale); hazmon stores the ones its catalogue has a metric for
ANALOG: dict[int, tuple[str, str, float]] = {
    1: ("事件计数", "件", 1.0),
    2: ("高度", "m", 0.01),
    3: ("温度", "°C", 0.1),
    4: ("压力", "MPa", 0.1),
    5: ("压力", "kPa", 0.1),
    6: ("气体浓度", "%LEL", 0.1),
    7: ("时间", "s", 1.0),
    8: ("电压", "V", 0.1),
    9: ("电流", "A", 0.1),
    10: ("流量", "L/s", 0.1),
    11: ("风量", "m³/min", 0.1),
    12: ("风速", "m/s", 1.0),
}

#: 操作标志 bits 0–6 (bit 7 预留): type 4 (建筑消防设施) and type 24 (用户信息传输装置, bit 5 查岗应答)
OPERATION_ZH = ("复位", "消音", "手动报警", "警情消除", "自检", "确认", "测试")
UITD_OPERATION_ZH = ("复位", "消音", "手动报警", "警情消除", "自检", "查岗应答", "测试")

#: 上传 (device → centre) type flags hazmon decodes
UPLOAD_TYPES: dict[int, str] = {
    1: "上传建筑消防设施系统状态",
    2: "上传建筑消防设施部件运行状态",
    3: "上传建筑消防设施部件模拟量值",
    4: "上传建筑消防设施操作信息",
    5: "上传建筑消防设施软件版本",
    6: "上传建筑消防设施系统配置情况",
    7: "上传建筑消防设施部件配置情况",
    8: "上传建筑消防设施系统时间",
    21: "上传用户信息传输装置运行状态",
    24: "上传用户信息传输装置操作信息",
    25: "上传用户信息传输装置软件版本",
    26: "上传用户信息传输装置配置情况",
    28: "上传用户信息传输装置系统时间",
}
#: 读/控制 (centre → device) type flags: the centre sends them, a device never uploads them
QUERY_TYPES: dict[int, str] = {
    61: "读建筑消防设施系统状态",
    62: "读建筑消防设施部件运行状态",
    63: "读建筑消防设施部件模拟量值",
    64: "读建筑消防设施操作信息",
    65: "读建筑消防设施软件版本",
    66: "读建筑消防设施系统配置情况",
    67: "读建筑消防设施部件配置情况",
    68: "读建筑消防设施系统时间",
    81: "读用户信息传输装置运行状态",
    84: "读用户信息传输装置操作信息记录",
    85: "读用户信息传输装置软件版本",
    86: "读用户信息传输装置配置情况",
    88: "读用户信息传输装置系统时间",
    89: "初始化用户信息传输装置",
    90: "同步用户信息传输装置时钟",
    91: "查岗命令",
}
TYPE_ZH = {**UPLOAD_TYPES, **QUERY_TYPES}

#: 命令字节 (§6.6 控制单元)
COMMAND_ZH = {0: "预留", 1: "控制命令", 2: "发送数据", 3: "确认", 4: "请求", 5: "应答", 6: "否认"}


def system_name(sys_type: int, sys_addr: int) -> str:
    return f"{SYSTEM_ZH.get(sys_type, f'系统类型{sys_type}')}{sys_addr}号"


def component_name(comp_type: int) -> str:
    return COMPONENT_ZH.get(comp_type, f"部件类型{comp_type}")


def type_name(flag: int) -> str:
    if flag in TYPE_ZH:
        return TYPE_ZH[flag]
    return "用户自定义" if 128 <= flag <= 254 else "预留"
