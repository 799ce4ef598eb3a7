"""The figures of one period from its rows (:class:`alerting.queries_kpi.KpiInputs`) alone: pure."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from alerting.kpi.model import Dimension, KpiRow, VendorLeagueRow
from alerting.kpi.periods import day_start
from alerting.queries_kpi import KpiInputs

__all__ = ["percentile", "compute", "vendor_league"]

_ORDER = {d: i for i, d in enumerate(("total", "township", "department", "domain", "site", "device",
                                      "model", "vendor"))}
_RANKED = ("township", "department")


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


def _rate(num: float, den: float) -> float | None:
    return None if not den else num / den


def model_key(vendor_id: str, model: str) -> str:
    return f"{vendor_id}/{model}" if model else vendor_id


@dataclass
class _Acc:
    coverage_applies: bool = False
    sites_required: int = 0
    sites_covered: int = 0
    devices: set[str] = field(default_factory=set)
    device_s: float = 0.0
    offline_s: float = 0.0
    fault_devices: set[str] = field(default_factory=set)
    alerts: int = 0
    closed: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: {"real": 0, "false": 0, "test": 0, "fault": 0})
    ack: list[float] = field(default_factory=list)
    arrive: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    h_found: int = 0
    h_rect: int = 0
    overdue_alerts: int = 0
    overdue_orders: int = 0
    overdue_hazards: int = 0


def compute(inputs: KpiInputs, start: datetime, end: datetime, now: datetime,
            dims: tuple[Dimension, ...]) -> list[KpiRow]:
    """Every row of ``dims`` for [start, end) as of ``now``."""
    as_of = min(end, now)
    rules, sites = inputs.rules, inputs.sites

    def depts_for(domain: str, industry: str) -> set[str]:
        return {d for r in rules
                if r["domain"] == domain and (not r["industries"] or industry in r["industries"])
                for d in r["department_ids"]}

    acc: dict[tuple[str, str], _Acc] = defaultdict(_Acc)

    def keys(township: str, domain: str, depts: Iterable[str], site: str = "", device: str = "",
             vendor: str = "", model: str = "") -> list[tuple[str, str]]:
        cand = [("total", "all"), ("township", township), ("domain", domain), ("site", site),
                ("device", device), ("vendor", vendor),
                ("model", model_key(vendor, model) if vendor else ""),
                *(("department", d) for d in sorted(set(depts)))]
        return [(dim, k) for dim, k in cand if k and dim in dims]

    def site_keys(site_id: str, domain: str, **extra: str) -> list[tuple[str, str]]:
        s = sites.get(site_id)
        township, industry = (s["township_id"], s["industry"]) if s else ("", "")
        return keys(township, domain, depts_for(domain, industry), site_id, **extra)

    # 在线全时段: per device and run of days, the union of its offline alarms and its state at each
    # day's end (a run's days share it: offline since a moment is offline from it to the run's end)
    off_spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for r in inputs.offline:
        off_spans[r["device_id"]].append((r["s"], r["e"]))
    online_at_end: set[str] = set()
    last_day: date | None = max((r["last_day"] for r in inputs.device_runs), default=None)
    for r in inputs.device_runs:
        ds = max(day_start(r["first_day"]), start)
        de = min(day_start(r["last_day"] + timedelta(days=1)), as_of)
        if de <= ds:
            continue
        spans = [(max(s, ds), min(e, de)) for s, e in off_spans.get(r["device_id"], ()) if s < de and e > ds]
        if r["state"] == "never_seen" or (r["state"] == "offline" and r["since"] is None):
            spans = [(ds, de)]
        elif r["state"] == "offline" and r["since"] < de:
            spans.append((max(r["since"], ds), de))
        off = _union_s(spans)
        if r["last_day"] == last_day and r["domain"] == "gas" and r["state"] == "online":
            online_at_end.add(r["site_id"])
        for k in site_keys(r["site_id"], r["domain"], device=r["device_id"], vendor=r["vendor_id"],
                           model=r["model"]):
            a = acc[k]
            a.devices.add(r["device_id"])
            a.device_s += (de - ds).total_seconds()
            a.offline_s += off
    # 安装全覆盖, at the period's last day
    for sid, s in sites.items():
        if not s["gas_alarm_required"]:
            continue
        for k in keys(s["township_id"], "gas", depts_for("gas", s["industry"]), sid):
            a = acc[k]
            a.coverage_applies = True
            a.sites_required += 1
            a.sites_covered += sid in online_at_end
    # 报警全处置 and 研判
    orders: dict[str, int] = defaultdict(int)
    for o in inputs.orders:
        orders[o["alert_id"]] += bool(o["overdue"])
    for r in inputs.alerts:
        verdict = r["verdict"] if r["verdict"] in ("real", "false", "test", "fault") else None
        faulty = verdict == "fault" or "fault" in r["kind"]
        for k in keys(r["township_id"], r["domain"], r["department_ids"], r["site_id"], r["device_id"],
                      r["vendor_id"], r["model"]):
            a = acc[k]
            a.alerts += 1
            if verdict:
                a.verdicts[verdict] += 1
            if faulty and r["device_id"]:
                a.fault_devices.add(r["device_id"])
            if r["acked_at"] is not None and r["acked_at"] <= as_of:
                a.ack.append(max((r["acked_at"] - r["starts_at"]).total_seconds(), 0.0))
            if r["arrived_at"] is not None and r["arrived_at"] <= as_of:
                a.arrive.append(max((r["arrived_at"] - r["starts_at"]).total_seconds(), 0.0))
            if r["phase"] == "closed" and r["closed_at"] is not None and r["closed_at"] <= as_of:
                a.closed += 1
                if verdict not in ("false", "test"):
                    a.close.append(max((r["closed_at"] - r["starts_at"]).total_seconds(), 0.0))
            a.overdue_alerts += bool(r["overdue"])
            a.overdue_orders += orders.get(r["id"], 0)
    # 隐患 and 逾期隐患
    for r in inputs.hazards:
        for k in keys(r["township_id"], r["domain"], r["department_ids"], r["site_id"]):
            acc[k].h_found += 1
            acc[k].h_rect += bool(r["rectified"])
    for r in inputs.overdue_hazards:
        for k in keys(r["township_id"], r["domain"], r["department_ids"], r["site_id"]):
            acc[k].overdue_hazards += 1

    if "total" in dims:
        acc[("total", "all")]  # noqa: B018 (a bulletin always has its total row)
    rows = [_row(dim, key, a, inputs) for (dim, key), a in
            sorted(acc.items(), key=lambda kv_: (_ORDER[kv_[0][0]], kv_[0][1]))]
    return _ranked(rows)


def _name(dim: str, key: str, inputs: KpiInputs) -> str:
    if dim == "total":
        return "全区"
    if dim == "model":
        vendor, _, model = key.partition("/")
        return f"{inputs.vendors.get(vendor, vendor)} {model}".strip()
    if dim == "device":
        return key
    names = {"township": inputs.townships, "department": inputs.departments, "domain": inputs.domains,
             "site": inputs.site_names, "vendor": inputs.vendors}[dim]
    return names.get(key, key)


def _row(dim: str, key: str, a: _Acc, inputs: KpiInputs) -> KpiRow:
    judged = sum(a.verdicts.values())
    devices = len(a.devices)
    return KpiRow(
        dimension=dim,  # type: ignore[arg-type]
        key=key,
        name=_name(dim, key, inputs),
        sites_required=a.sites_required if a.coverage_applies else None,
        sites_covered=a.sites_covered if a.coverage_applies else None,
        coverage_rate=_rate(a.sites_covered, a.sites_required) if a.coverage_applies else None,
        devices=devices,
        online_rate=(1.0 - a.offline_s / a.device_s) if a.device_s else None,
        alerts=a.alerts,
        alerts_closed=a.closed,
        closure_rate=_rate(a.closed, a.alerts),
        real=a.verdicts["real"], false=a.verdicts["false"], test=a.verdicts["test"],
        fault=a.verdicts["fault"],
        false_alarms=a.verdicts["false"],
        false_alarm_rate=_rate(a.verdicts["false"], judged),
        fault_rate=_rate(len(a.fault_devices & a.devices), devices),
        ack_median_s=percentile(a.ack, 0.5), ack_p90_s=percentile(a.ack, 0.9),
        arrive_median_s=percentile(a.arrive, 0.5), arrive_p90_s=percentile(a.arrive, 0.9),
        close_median_s=percentile(a.close, 0.5), close_p90_s=percentile(a.close, 0.9),
        hazards_found=a.h_found,
        hazards_rectified=a.h_rect,
        rectification_rate=_rate(a.h_rect, a.h_found),
        overdue_alerts=a.overdue_alerts,
        overdue_orders=a.overdue_orders,
        overdue_hazards=a.overdue_hazards,
    )


def score(r: KpiRow) -> float | None:
    """The ranking score: the mean of the rates the row has (coverage, online, closure,
    rectification), less its 误报率; None when it has none of the four."""
    rates = [x for x in (r.coverage_rate, r.online_rate, r.closure_rate, r.rectification_rate)
             if x is not None]
    if not rates:
        return None
    return sum(rates) / len(rates) - (r.false_alarm_rate or 0.0)


def _ranked(rows: list[KpiRow]) -> list[KpiRow]:
    """Score every row; rank townships and departments within their dimension (1 = best, ties
    share a rank, a row without a score has none)."""
    out = [replace(r, score=score(r)) for r in rows]
    for dim in _RANKED:
        scored = sorted((r.score for r in out if r.dimension == dim and r.score is not None), reverse=True)
        out = [replace(r, rank=1 + scored.index(r.score)) if r.dimension == dim and r.score is not None else r
               for r in out]
    return out


def vendor_league(rows: Iterable[KpiRow]) -> tuple[VendorLeagueRow, ...]:
    """厂商排名: online rate high first, then fault and false-alarm rates low first."""
    vs = [VendorLeagueRow(r.key, r.name, r.devices, r.online_rate, r.fault_rate, r.false_alarm_rate)
          for r in rows if r.dimension == "vendor"]
    return tuple(sorted(vs, key=lambda v: (-(v.online_rate if v.online_rate is not None else -1.0),
                                            v.fault_rate or 0.0, v.false_alarm_rate or 0.0, v.key)))
