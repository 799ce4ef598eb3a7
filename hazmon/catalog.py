"""The metric and device-event catalogue: the names adapters emit and detectors understand.

Adapters normalise every vendor field to one of these metric names and units (checking the
physical range); detectors key their rules on them. A new domain adds its rows here (or in
configuration) plus a detector module.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MetricSpec", "METRICS", "DEVICE_EVENT_CODES", "metric_spec"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    domain: str  # "*" = any domain
    unit: str
    low: float  # physical range of the sensor; outside → flagged out_of_range
    high: float
    zh: str


_SPECS = [
    # 燃气: combustible-gas detectors (可燃气体报警装置), GB 15322 ranges 0–100 %LEL
    MetricSpec("gas_lel", "gas", "%LEL", 0.0, 100.0, "可燃气体浓度"),
    MetricSpec("valve_closed", "gas", "", 0.0, 1.0, "切断阀关闭"),  # 1 = shut-off valve closed
    MetricSpec("mains_power", "*", "", 0.0, 1.0, "市电供电"),  # 1 = on mains, 0 = on battery
    MetricSpec("battery_pct", "*", "%", 0.0, 100.0, "电池电量"),
    # 电梯: GB/T 24476-2023 (replacing -2017); the 2017 edition's data items, unverified against 2023
    MetricSpec("car_running", "elevator", "", 0.0, 1.0, "轿厢运行"),
    MetricSpec("direction", "elevator", "", -1.0, 1.0, "运行方向"),  # -1 down, 0 stopped, 1 up
    MetricSpec("floor", "elevator", "", -10.0, 200.0, "楼层"),
    MetricSpec("door_open", "elevator", "", 0.0, 1.0, "门开"),
    MetricSpec("door_zone", "elevator", "", 0.0, 1.0, "平层区"),  # 1 = car within the door (levelling) zone
    MetricSpec("speed_mps", "elevator", "m/s", 0.0, 20.0, "运行速度"),
    MetricSpec("rated_speed_mps", "elevator", "m/s", 0.1, 20.0, "额定速度"),
    MetricSpec("person_in_car", "elevator", "", 0.0, 1.0, "轿内有人"),
    # 0 normal, 1 inspection 检修, 2 maintenance 维保, 3 fire 消防, 4 out of service 停用
    MetricSpec("service_mode", "elevator", "", 0.0, 4.0, "服务模式"),
    # 消防: analogue detectors
    MetricSpec("smoke_obscuration", "fire", "%/m", 0.0, 30.0, "烟雾减光率"),
    MetricSpec("temperature_c", "fire", "°C", -40.0, 200.0, "温度"),
]

METRICS: dict[str, MetricSpec] = {s.name: s for s in _SPECS}

#: Device-reported discrete alarms (DeviceEvent.code), per domain.
DEVICE_EVENT_CODES: dict[str, frozenset[str]] = {
    "gas": frozenset({"gas_low", "gas_high", "sensor_fault", "valve_fault", "power_loss"}),
    "elevator": frozenset(
        {
            "trapped",  # 困人
            "door_lock_fault",  # 门锁回路故障
            "door_open_moving",  # 开门走车
            "overspeed",  # 超速
            "overtravel_top",  # 冲顶
            "overtravel_bottom",  # 蹲底
            "stopped_out_of_zone",  # 非平层停梯
            "fault",  # other controller fault
        }
    ),
    # fire: GB/T 26875.3 states (火警 故障 监管 屏蔽 启动 反馈 延时 复位), 操作信息 (operation) and the
    # 软件版本/配置情况/系统时间 objects (version, config, clock), stored for the record
    "fire": frozenset(
        {"fire_alarm", "fault", "supervisory", "shielded", "started", "feedback", "delay", "reset"}
        | {"operation", "version", "config", "clock"}
    ),
}


def metric_spec(name: str) -> MetricSpec | None:
    return METRICS.get(name)
