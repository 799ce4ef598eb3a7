"""The figures of a period: one :class:`KpiRow` per unit of a dimension, the vendor league
(:class:`VendorRow`) and the :class:`Bulletin` that holds them with its 环比 and 同比 periods."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

__all__ = ["Dimension", "DIMENSIONS", "RATE_FIELDS", "KpiRow", "VendorLeagueRow", "VendorRow", "Bulletin"]

Dimension = Literal["total", "township", "department", "domain", "site", "device", "model", "vendor"]
DIMENSIONS: tuple[Dimension, ...] = ("total", "township", "department", "domain", "site", "device",
                                     "model", "vendor")
#: fields that are shares (their 同比/环比 is a difference in percentage points, as a fraction)
RATE_FIELDS = frozenset({"coverage_rate", "online_rate", "closure_rate", "false_alarm_rate",
                         "rectification_rate", "fault_rate", "score"})


@dataclass(frozen=True, slots=True)
class KpiRow:
    """One unit's figures over the period (None: no denominator, shown as "—")."""

    dimension: Dimension
    key: str
    name: str
    #: 安装全覆盖: required gas sites, those covered by an online gas device (as of the period's end)
    sites_required: int | None = None
    sites_covered: int | None = None
    coverage_rate: float | None = None
    #: 在线全时段: devices of the period and 1 − offline device-seconds ÷ device-seconds
    devices: int = 0
    online_rate: float | None = None
    #: 报警全处置: alarms starting in the period; 办结 ones (whatever the verdict); 处置率 = closed ÷ alarms
    alerts: int = 0
    alerts_closed: int = 0
    closure_rate: float | None = None
    #: 研判: alarms per verdict; 误报率 = false ÷ alarms with a verdict
    real: int = 0
    false: int = 0
    test: int = 0
    fault: int = 0
    false_alarms: int = 0
    false_alarm_rate: float | None = None
    #: 故障率: devices that raised a fault (a 故障 verdict or a device-fault alarm) ÷ devices
    fault_rate: float | None = None
    #: 中位/90%用时 from the alarm's start: to 确认, to 到场 (lift arrival, field check-in), to 办结
    #: (办结用时 over alarms not judged false/test: a 误报 closed at 研判 is not a 处置)
    ack_median_s: float | None = None
    ack_p90_s: float | None = None
    arrive_median_s: float | None = None
    arrive_p90_s: float | None = None
    close_median_s: float | None = None
    close_p90_s: float | None = None
    #: 隐患: found in the period, of those rectified or struck off by its end, and the rate
    hazards_found: int = 0
    hazards_rectified: int = 0
    rectification_rate: float | None = None
    #: 逾期 as of the period's end: alarms the 四单 ladder escalated or whose 到场 limit passed,
    #: work orders open past their deadline, hazards past their 整改期限 not rectified
    overdue_alerts: int = 0
    overdue_orders: int = 0
    overdue_hazards: int = 0
    #: the ranking score (mean of the row's coverage, online, closure and rectification rates,
    #: less its 误报率) and the rank within its dimension (1 = best; townships and departments)
    score: float | None = None
    rank: int | None = None


@dataclass(frozen=True, slots=True)
class VendorLeagueRow:
    """A line of the vendor league table (厂商排名); ``VendorRow`` in contract 1 (the name is
    the registry's vendors.csv row's, hazmon/registry)."""

    key: str
    name: str
    devices: int
    online_rate: float | None
    fault_rate: float | None
    false_alarm_rate: float | None


#: contract 1's name for a league line
VendorRow = VendorLeagueRow


@dataclass(frozen=True, slots=True)
class Bulletin:
    """通报 over [start, end), as of ``generated_at``; ``previous`` is the period of the same
    length just before (环比), ``year_ago`` the same period a year before (同比), each None when
    it has no data."""

    start: datetime
    end: datetime
    generated_at: datetime
    rows: tuple[KpiRow, ...] = field(default_factory=tuple)
    vendors: tuple[VendorLeagueRow, ...] = field(default_factory=tuple)
    previous: Bulletin | None = None
    year_ago: Bulletin | None = None

    def by(self, dimension: Dimension) -> list[KpiRow]:
        return [r for r in self.rows if r.dimension == dimension]

    def row(self, dimension: Dimension, key: str) -> KpiRow:
        for r in self.rows:
            if r.dimension == dimension and r.key == key:
                return r
        raise KeyError(f"{dimension}:{key}")

    def find(self, dimension: Dimension, key: str) -> KpiRow | None:
        return next((r for r in self.rows if r.dimension == dimension and r.key == key), None)

    def change(self, dimension: Dimension, key: str, field: str,
               against: Literal["yoy", "mom"]) -> float | None:
        """同比 (``yoy``) or 环比 (``mom``) of one figure: for a rate the difference in
        percentage points as a fraction (0.05 = +5.0 个百分点), for a count or a duration the
        relative change (0.25 = +25%); None when either side is None, absent or zero."""
        other = self.year_ago if against == "yoy" else self.previous
        if other is None:
            return None
        a, b = self.find(dimension, key), other.find(dimension, key)
        if a is None or b is None:
            return None
        x, y = getattr(a, field), getattr(b, field)
        if x is None or y is None:
            return None
        if field in RATE_FIELDS:
            return float(x - y)
        return None if not y else (x - y) / y

    def write_csv(self, path: Path) -> None:
        """The rows as CSV with Chinese headers (UTF-8 with BOM: opens cleanly in Excel/WPS)."""
        from alerting.kpi.render import csv_text

        path.write_text(csv_text(self), encoding="utf-8-sig", newline="")

    def text(self) -> str:
        """The bulletin as operators read it (full names, CJK-width-aligned columns)."""
        from alerting.kpi.render import bulletin_text

        return bulletin_text(self)

