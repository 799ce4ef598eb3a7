"""KPIs and the periodic bulletin (通报), per township, department and domain.

The three gas targets "安装全覆盖、在线全时段、报警全处置" and the hazard figures of the county
bulletins ("排查隐患 2072 处, 整改 1582 处, 整改率 76.4%"):

* **coverage** 安装全覆盖 — of the sites required to have a gas alarm (``sites.gas_alarm_required``),
  the share with at least one active gas device currently online (``device_presence``, read at
  report time: presence history is not kept per device);
* **online rate** 在线全时段 — 1 − (device-seconds offline ÷ device-seconds in the period), the
  offline time being the union of the offline alerts (kind containing ``offline``) and, from
  ``device_presence``, the time since a device currently offline went offline, clipped to the
  period. A device never heard from (no presence row) is offline the whole period: device health
  (``/api/health/devices``) does not count it online either, and a district whose detectors have
  heard nothing must not read 100 %;
* **closure rate** 报警全处置 — alarms starting in the period (not silenced/inhibited) that are
  办结 by report time, ÷ those alarms; with median and p90 time to acknowledge and to close,
  measured from the alarm's start;
* **hazards** — found in the period, of those rectified or struck off, and the rate.

Rates are None where the denominator is zero (shown as "—"), never a misleading 0% or 100%.
Periods are calendar periods in China Standard Time (UTC+8, no DST). The rows are read by
:func:`alerting.queries.kpi_inputs` in one read-only snapshot; the figures are computed here,
from those rows alone.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import asyncpg

from alerting import queries
from alerting.errors import InvalidAction

__all__ = [
    "CST",
    "Dimension",
    "KpiRow",
    "Bulletin",
    "period_bounds",
    "percentile",
    "compute_kpis",
    "bulletin",
]

#: China Standard Time: bulletins count calendar days/months as the district office does.
CST = timezone(timedelta(hours=8), "CST")

Dimension = Literal["total", "township", "department", "domain"]
_DIMENSIONS: tuple[Dimension, ...] = ("total", "township", "department", "domain")


@dataclass(frozen=True, slots=True)
class KpiRow:
    dimension: Dimension
    key: str
    name: str
    sites_required: int | None = None
    sites_covered: int | None = None
    coverage_rate: float | None = None
    devices: int = 0
    online_rate: float | None = None
    alerts: int = 0
    alerts_closed: int = 0
    closure_rate: float | None = None
    ack_median_s: float | None = None
    ack_p90_s: float | None = None
    close_median_s: float | None = None
    close_p90_s: float | None = None
    hazards_found: int = 0
    hazards_rectified: int = 0
    rectification_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Bulletin:
    """通报 over [start, end), as of ``generated_at``."""

    start: datetime
    end: datetime
    generated_at: datetime
    rows: tuple[KpiRow, ...] = field(default_factory=tuple)

    def by(self, dimension: Dimension) -> list[KpiRow]:
        return [r for r in self.rows if r.dimension == dimension]

    def row(self, dimension: Dimension, key: str) -> KpiRow:
        for r in self.rows:
            if r.dimension == dimension and r.key == key:
                return r
        raise KeyError(f"{dimension}:{key}")

    def write_csv(self, path: Path) -> None:
        names = [f.name for f in fields(KpiRow)]
        with path.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: opens cleanly in Excel/WPS
            w = csv.DictWriter(fh, fieldnames=["period_start", "period_end", *names])
            w.writeheader()
            for r in self.rows:
                w.writerow({"period_start": self.start.isoformat(), "period_end": self.end.isoformat(),
                            **{k: ("" if v is None else (round(v, 4) if isinstance(v, float) else v))
                               for k, v in asdict(r).items()}})

    def text(self) -> str:
        """The bulletin as operators read it (Chinese headings, one table per dimension)."""
        s, e = self.start.astimezone(CST), (self.end - timedelta(seconds=1)).astimezone(CST)
        t = self.row("total", "all")
        out = [
            f"安全生产监测预警通报（{s:%Y-%m-%d} 至 {e:%Y-%m-%d}）",
            f"生成时间 {self.generated_at.astimezone(CST):%Y-%m-%d %H:%M}",
            "",
            f"全区：安装覆盖率 {_pct(t.coverage_rate)}（{_n(t.sites_covered)}/{_n(t.sites_required)}），"
            f"设备在线率 {_pct(t.online_rate)}，报警 {t.alerts} 起、办结 {t.alerts_closed} 起，"
            f"处置率 {_pct(t.closure_rate)}；确认用时中位 {_dur(t.ack_median_s)}、P90 {_dur(t.ack_p90_s)}；"
            f"办结用时中位 {_dur(t.close_median_s)}、P90 {_dur(t.close_p90_s)}；"
            f"排查隐患 {t.hazards_found} 处，整改 {t.hazards_rectified} 处，整改率 {_pct(t.rectification_rate)}。",
        ]
        titles = {"township": "按镇街", "department": "按部门", "domain": "按领域"}
        for dim in ("township", "department", "domain"):
            rows = self.by(dim)  # type: ignore[arg-type]
            if not rows:
                continue
            out += ["", f"【{titles[dim]}】",
                    f"{'名称':<12}{'覆盖率':>8}{'在线率':>8}{'报警':>6}{'办结':>6}{'处置率':>8}"
                    f"{'确认P50':>9}{'办结P50':>9}{'隐患':>6}{'整改':>6}{'整改率':>8}"]
            for r in rows:
                out.append(f"{r.name[:10]:<12}{_pct(r.coverage_rate):>8}{_pct(r.online_rate):>8}{r.alerts:>6}"
                           f"{r.alerts_closed:>6}{_pct(r.closure_rate):>8}{_dur(r.ack_median_s):>9}"
                           f"{_dur(r.close_median_s):>9}{r.hazards_found:>6}{r.hazards_rectified:>6}"
                           f"{_pct(r.rectification_rate):>8}")
        return "\n".join(out)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _n(v: int | None) -> str:
    return "—" if v is None else str(v)


def _dur(v: float | None) -> str:
    if v is None:
        return "—"
    if v < 120:
        return f"{v:.0f}秒"
    if v < 7200:
        return f"{v / 60:.0f}分"
    return f"{v / 3600:.1f}时"


_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4])|-W(\d{2}))?$")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``2026-11`` (month), ``2026-Q4`` (quarter), ``2026`` (year) → [start, end) in UTC,
    counted in China Standard Time."""
    m = _PERIOD.match(period.strip())
    if not m or m.group(4):
        raise InvalidAction(f"period {period!r}: use YYYY, YYYY-MM or YYYY-Qn")
    year = int(m.group(1))
    if m.group(2):
        month = int(m.group(2))
        if not 1 <= month <= 12:
            raise InvalidAction(f"period {period!r}: month must be 01..12")
        start = datetime(year, month, 1, tzinfo=CST)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=CST)
    elif m.group(3):
        q = int(m.group(3))
        start = datetime(year, 3 * q - 2, 1, tzinfo=CST)
        end = datetime(year + (q == 4), (3 * q) % 12 + 1, 1, tzinfo=CST)
    else:
        start, end = datetime(year, 1, 1, tzinfo=CST), datetime(year + 1, 1, 1, tzinfo=CST)
    return start.astimezone(UTC), end.astimezone(UTC)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (PostgreSQL's ``percentile_cont``); None when empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _union_s(spans: Iterable[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of ``spans`` (overlaps counted once)."""
    total, end = 0.0, None
    for s, e in sorted(spans):
        if end is not None and s < end:
            s = end
        if e > s:
            total += (e - s).total_seconds()
            end = e
    return total


def _rate(num: int | float, den: int | float) -> float | None:
    return None if not den else num / den


@dataclass
class _Acc:
    sites_required: int = 0
    sites_covered: int = 0
    coverage_applies: bool = False
    devices: int = 0
    offline_s: float = 0.0
    alerts: int = 0
    closed: int = 0
    ack: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    h_found: int = 0
    h_rect: int = 0


async def bulletin(conn: asyncpg.Connection, *, start: datetime, end: datetime, now: datetime,
                   dimensions: Iterable[Dimension] = _DIMENSIONS) -> Bulletin:
    """Compute every KPI for [start, end) as of ``now``, in one read-only snapshot."""
    if end <= start:
        raise InvalidAction("the period must end after it starts")
    dims = tuple(dimensions)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        inputs = await queries.kpi_inputs(conn, start=start, end=end, as_of=min(end, now))
    return Bulletin(start, end, now, tuple(_compute(inputs, start, end, now, dims)))


async def compute_kpis(conn: asyncpg.Connection, *, start: datetime, end: datetime, now: datetime,
                       dimension: Dimension) -> list[KpiRow]:
    """KPI rows of one dimension (``total`` gives the single row keyed ``all``)."""
    if dimension not in _DIMENSIONS:
        raise InvalidAction(f"dimension must be one of {', '.join(_DIMENSIONS)}")
    return (await bulletin(conn, start=start, end=end, now=now, dimensions=(dimension,))).by(dimension)


def _compute(inputs: queries.KpiInputs, start: datetime, end: datetime, now: datetime,
             dims: tuple[Dimension, ...]) -> list[KpiRow]:
    as_of = min(end, now)
    period_s = max((as_of - start).total_seconds(), 0.0)
    rules, sites, devices = inputs.rules, inputs.sites, inputs.devices

    def depts_for(domain: str, industry: str) -> set[str]:
        return {d for r in rules if r["domain"] == domain and (not r["industries"] or industry in r["industries"])
                for d in r["department_ids"]}

    acc: dict[tuple[str, str], _Acc] = defaultdict(_Acc)

    def keys(township: str, domain: str, depts: Iterable[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if "total" in dims:
            out.append(("total", "all"))
        if "township" in dims and township:
            out.append(("township", township))
        if "domain" in dims and domain:
            out.append(("domain", domain))
        if "department" in dims:
            out += [("department", d) for d in sorted(set(depts))]
        return out

    # coverage: required sites (gas), covered when a gas device there is online
    online_gas_sites = {d["site_id"] for d in devices if d["domain"] == "gas" and d["presence"] == "online"}
    for sid, s in sites.items():
        if not s["gas_alarm_required"]:
            continue
        for k in keys(s["township_id"], "gas", depts_for("gas", s["industry"])):
            a = acc[k]
            a.coverage_applies = True
            a.sites_required += 1
            a.sites_covered += sid in online_gas_sites
    # online rate: offline alerts ∪ current presence (offline since …, never heard from)
    off_spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for r in inputs.offline:
        off_spans[r["device_id"]].append((r["s"], r["e"]))
    for d in devices:
        site = sites.get(d["site_id"])
        township, industry = (site["township_id"], site["industry"]) if site else ("", "")
        spans = off_spans.get(d["id"], [])
        if d["presence"] == "never_seen":
            spans = [(start, as_of)]
        elif d["presence"] == "offline" and d["since"] is not None and d["since"] < as_of:
            spans = [*spans, (max(d["since"], start), as_of)]
        offline_s = min(_union_s(spans), period_s)
        for k in keys(township, d["domain"], depts_for(d["domain"], industry)):
            acc[k].devices += 1
            acc[k].offline_s += offline_s
    # alarms
    for r in inputs.alerts:
        for k in keys(r["township_id"], r["domain"], r["department_ids"]):
            a = acc[k]
            a.alerts += 1
            if r["acked_at"] is not None and r["acked_at"] <= now:
                a.ack.append(max((r["acked_at"] - r["starts_at"]).total_seconds(), 0.0))
            if r["phase"] == "closed" and r["closed_at"] is not None and r["closed_at"] <= now:
                a.closed += 1
                a.close.append(max((r["closed_at"] - r["starts_at"]).total_seconds(), 0.0))
    # hazards
    for r in inputs.hazards:
        for k in keys(r["township_id"], r["domain"], r["department_ids"]):
            acc[k].h_found += 1
            acc[k].h_rect += r["phase"] in ("rectified", "reviewed", "struck_off")

    if "total" in dims:
        acc[("total", "all")]  # noqa: B018 (a bulletin always has its total row)
    names = {"township": inputs.townships, "department": inputs.departments, "domain": inputs.domains}
    order: dict[str, int] = {d: i for i, d in enumerate(_DIMENSIONS)}
    out = []
    for (dim, key), a in sorted(acc.items(), key=lambda kv_: (order[kv_[0][0]], kv_[0][1])):
        name = "全区" if dim == "total" else names[dim].get(key, key)
        out.append(KpiRow(
            dimension=dim,  # type: ignore[arg-type]
            key=key,
            name=name,
            sites_required=a.sites_required if a.coverage_applies else None,
            sites_covered=a.sites_covered if a.coverage_applies else None,
            coverage_rate=_rate(a.sites_covered, a.sites_required) if a.coverage_applies else None,
            devices=a.devices,
            online_rate=(1.0 - a.offline_s / (a.devices * period_s)) if a.devices and period_s else None,
            alerts=a.alerts,
            alerts_closed=a.closed,
            closure_rate=_rate(a.closed, a.alerts),
            ack_median_s=percentile(a.ack, 0.5),
            ack_p90_s=percentile(a.ack, 0.9),
            close_median_s=percentile(a.close, 0.5),
            close_p90_s=percentile(a.close, 0.9),
            hazards_found=a.h_found,
            hazards_rectified=a.h_rect,
            rectification_rate=_rate(a.h_rect, a.h_found),
        ))
    return out
