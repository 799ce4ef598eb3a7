"""KPIs and the periodic bulletin (通报), per township, department, domain, site, device, model
and vendor, with 环比 and 同比.

The three gas targets "安装全覆盖、在线全时段、报警全处置" and the hazard figures of the county
bulletins ("排查隐患 2072 处, 整改 1582 处, 整改率 76.4%"):

* **coverage** 安装全覆盖 — of the sites required to have a gas alarm (``gas_alarm_required``),
  the share with a gas device online at the period's last day (the daily snapshot of that day,
  migration 035, alerting/kpi_snapshot.py; the live state for a day not snapshotted);
* **online rate** 在线全时段 — 1 − offline device-seconds ÷ device-seconds, day by day with each
  day's own devices and presence: a device is offline over its offline alarms and, from the
  day's presence, from when it went offline; a device never heard from (never_seen) or silent
  is offline the whole day, as device health counts it;
* **处置率** 报警全处置 = alarms 办结 by the period's end ÷ alarms starting in the period (not
  silenced or inhibited; every alarm must be 办结, a 误报 closed after 研判 too). A false alarm
  is not *handled* like a real one: 办结用时 counts only alarms not judged false or test, and the
  研判 verdicts are counted apart;
* **误报率** = alarms judged false (研判 误报) ÷ alarms with a verdict (real/false/test/fault);
  **故障率** = devices that raised a fault (a 故障 verdict or a device-fault alarm) ÷ devices;
* **用时** 中位/90% from the alarm's start to 确认, to 到场 (the lift 到场 record or the first
  field check-in) and to 办结;
* **hazards** — found in the period, of those rectified or struck off by its end, and the rate;
* **逾期** as of the period's end, by the definitions of their homes: alarms the 四单 ladder
  escalated (alerting/escalation.py: 确认/处置/办结 unmet in time) or whose 到场 limit passed
  (alerting/arrival.py); 工单 open past their deadline (alerting/workorders.is_overdue); hazards
  past their 整改期限 not rectified (the ledger's 逾期, alerting/hazard_overdue.py);
* **同比** the same period a year before, **环比** the period of the same length just before
  (:meth:`Bulletin.change`: percentage points for a rate, relative change for a count);
* **rank** of townships and departments by a score: the mean of their coverage, online, closure
  and rectification rates, less their 误报率.

Rates are None where the denominator is zero (shown as "—"), never a misleading 0% or 100%.
Periods are calendar periods in China Standard Time (UTC+8, no DST) or any [start, end); a
period not begun yet or without any data is refused with a Chinese message (InvalidAction).
"""

from alerting.kpi.build import NO_DATA, bulletin, compute_kpis, official_bulletin
from alerting.kpi.compute import percentile
from alerting.kpi.model import DIMENSIONS, Bulletin, Dimension, KpiRow, VendorLeagueRow, VendorRow
from alerting.kpi.periods import CST, period_bounds, period_label

__all__ = [
    "CST",
    "DIMENSIONS",
    "NO_DATA",
    "Dimension",
    "KpiRow",
    "VendorRow",
    "VendorLeagueRow",
    "Bulletin",
    "period_bounds",
    "period_label",
    "percentile",
    "compute_kpis",
    "bulletin",
    "official_bulletin",
]
