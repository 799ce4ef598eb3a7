"""The bulletin as text (full names, columns aligned by display width: a CJK character takes two
cells, ``unicodedata.east_asian_width``) and as CSV with Chinese headers."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable
from dataclasses import fields
from datetime import timedelta
from typing import Any

from alerting.kpi.model import RATE_FIELDS, Bulletin, KpiRow
from alerting.kpi.periods import CST, period_label

__all__ = ["LABELS", "COMPARED", "DIMENSION_ZH", "width", "pct", "dur", "change_words", "bulletin_text",
           "csv_text"]

#: every figure's Chinese name (the CSV's headers, the page's column titles)
LABELS: dict[str, str] = {
    "sites_required": "应装场所", "sites_covered": "已覆盖场所", "coverage_rate": "安装覆盖率",
    "devices": "设备数", "online_rate": "设备在线率", "alerts": "报警数", "alerts_closed": "办结数",
    "closure_rate": "处置率", "real": "真实报警", "false": "误报", "test": "测试", "fault": "故障",
    "false_alarms": "误报数", "false_alarm_rate": "误报率", "fault_rate": "故障率",
    "ack_median_s": "确认中位用时", "ack_p90_s": "确认90%用时",
    "arrive_median_s": "到场中位用时", "arrive_p90_s": "到场90%用时",
    "close_median_s": "办结中位用时", "close_p90_s": "办结90%用时",
    "hazards_found": "排查隐患", "hazards_rectified": "已整改", "rectification_rate": "整改率",
    "overdue_alerts": "逾期报警", "overdue_orders": "超时工单", "overdue_hazards": "逾期隐患",
    "score": "综合得分", "rank": "排名",
}
DIMENSION_ZH = {"total": "全区", "township": "镇街", "department": "部门", "domain": "领域", "site": "场所",
                "device": "设备", "model": "型号", "vendor": "厂商"}
_FIGURES = [f.name for f in fields(KpiRow) if f.name not in ("dimension", "key", "name")]


def width(s: str) -> int:
    """Display width: East Asian wide and fullwidth characters take two cells."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _ljust(s: str, n: int) -> str:
    return s + " " * max(n - width(s), 0)


def _rjust(s: str, n: int) -> str:
    return " " * max(n - width(s), 0) + s


def pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def dur(v: float | None) -> str:
    if v is None:
        return "—"
    if v < 120:
        return f"{v:.0f}秒"
    if v < 7200:
        return f"{v / 60:.0f}分"
    return f"{v / 3600:.1f}时"


def change_words(field: str, v: float | None) -> str:
    """+5.0个百分点 for a rate, +25.0% for a count or a duration, — when not comparable."""
    if v is None:
        return "—"
    if field in RATE_FIELDS:
        return f"{v * 100:+.1f}个百分点"
    return f"{v * 100:+.1f}%"


def _n(v: int | None) -> str:
    return "—" if v is None else str(v)


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Columns aligned by display width; the first ``left`` columns left-aligned, the rest right."""
    ws = [max(width(x) for x in col) for col in zip(head, *rows, strict=True)]
    out = []
    for r in [head, *rows]:
        cells = [(_ljust if i < left else _rjust)(x, ws[i]) for i, x in enumerate(r)]
        out.append("  ".join(cells).rstrip())
    return out


#: every figure with its 同比/环比 (all but the score and rank), in LABELS' order, with its format
COMPARED: list[tuple[str, Callable[[Any], str]]] = [
    (f, pct if f in RATE_FIELDS else dur if f.endswith("_s") else str)
    for f in LABELS if f not in ("score", "rank")]
_COMPARED = COMPARED


def _fmt(field: str, v: object) -> str:
    f = dict(_COMPARED).get(field, str)
    return "—" if v is None else f(v)


def bulletin_text(b: Bulletin) -> str:
    s, e = b.start.astimezone(CST), (b.end - timedelta(seconds=1)).astimezone(CST)
    t = b.row("total", "all")

    def yoy(field: str) -> str:
        return f"同比 {change_words(field, b.change('total', 'all', field, 'yoy'))}"

    out = [
        f"安全生产监测预警通报（{s:%Y-%m-%d} 至 {e:%Y-%m-%d}，{period_label(b.start, b.end)}）",
        f"生成时间 {b.generated_at.astimezone(CST):%Y-%m-%d %H:%M}",
        "",
        f"全区：安装覆盖率 {pct(t.coverage_rate)}（{_n(t.sites_covered)}/{_n(t.sites_required)}，"
        f"{yoy('coverage_rate')}），设备在线率 {pct(t.online_rate)}（{yoy('online_rate')}），"
        f"报警 {t.alerts} 起、办结 {t.alerts_closed} 起，"
        f"处置率 {pct(t.closure_rate)}（{yoy('closure_rate')}）；"
        f"研判真实 {t.real} 起、误报 {t.false} 起、测试 {t.test} 起、故障 {t.fault} 起，"
        f"误报率 {pct(t.false_alarm_rate)}（{yoy('false_alarm_rate')}）；"
        f"确认用时中位 {dur(t.ack_median_s)}、90% {dur(t.ack_p90_s)}；到场用时中位 {dur(t.arrive_median_s)}、"
        f"90% {dur(t.arrive_p90_s)}；办结用时中位 {dur(t.close_median_s)}、90% {dur(t.close_p90_s)}；"
        f"排查隐患 {t.hazards_found} 处，整改 {t.hazards_rectified} 处，整改率 {pct(t.rectification_rate)}"
        f"（{yoy('rectification_rate')}）；逾期报警 {t.overdue_alerts} 起、超时工单 {t.overdue_orders} 件、"
        f"逾期隐患 {t.overdue_hazards} 处。",
    ]
    prev, ago = b.previous, b.year_ago
    p = prev.find("total", "all") if prev else None
    y = ago.find("total", "all") if ago else None
    rows = [[LABELS[f], _fmt(f, getattr(t, f)), _fmt(f, getattr(p, f)) if p else "—",
             change_words(f, b.change("total", "all", f, "mom")),
             _fmt(f, getattr(y, f)) if y else "—", change_words(f, b.change("total", "all", f, "yoy"))]
            for f, _ in _COMPARED]
    out += ["", "【同比·环比】", *_table(["指标", "本期", "上期", "环比", "去年同期", "同比"], rows)]
    titles = {"township": "按镇街", "department": "按部门", "domain": "按领域"}
    for dim, title in titles.items():
        drows = sorted(b.by(dim), key=lambda r: (r.rank is None, r.rank or 0, r.key))  # type: ignore[arg-type]
        if not drows:
            continue
        head = ["排名", "名称", "覆盖率", "在线率", "报警", "办结", "处置率", "误报率", "确认中位",
                "到场中位", "办结中位", "隐患", "整改", "整改率", "逾期报警", "超时工单", "逾期隐患"]
        body = [[_n(r.rank), r.name, pct(r.coverage_rate), pct(r.online_rate), str(r.alerts),
                 str(r.alerts_closed), pct(r.closure_rate), pct(r.false_alarm_rate), dur(r.ack_median_s),
                 dur(r.arrive_median_s), dur(r.close_median_s), str(r.hazards_found),
                 str(r.hazards_rectified), pct(r.rectification_rate), str(r.overdue_alerts),
                 str(r.overdue_orders), str(r.overdue_hazards)] for r in drows]
        if dim == "domain":  # not ranked
            head, body = head[1:], [r[1:] for r in body]
        out += ["", f"【{title}】", *_table(head, body, left=2 if dim != "domain" else 1)]
    if b.vendors:
        body = [[str(i), v.name, str(v.devices), pct(v.online_rate), pct(v.fault_rate),
                 pct(v.false_alarm_rate)] for i, v in enumerate(b.vendors, 1)]
        head = ["排名", "厂商", "设备", "在线率", "故障率", "误报率"]
        out += ["", "【厂商排名】", *_table(head, body, left=2)]
    return "\n".join(out)


def _csv_value(field: str, v: object) -> str:
    if v is None:
        return ""
    if field in RATE_FIELDS and isinstance(v, float):
        return f"{v * 100:.1f}"
    if field.endswith("_s") and isinstance(v, float):
        return f"{v / 60:.1f}"
    return str(v)


def _header(field: str) -> str:
    if field in RATE_FIELDS:
        return f"{LABELS[field]}(%)"
    if field.endswith("_s"):
        return f"{LABELS[field]}(分钟)"
    return LABELS[field]


def csv_text(b: Bulletin) -> str:
    """One line per row: period, dimension (镇街/部门/…), key, name, every figure, then its 环比
    and 同比 (percentage points for a rate, % for a count or a duration)."""
    head = ["时段开始", "时段结束", "维度", "编码", "名称", *(_header(f) for f in _FIGURES)]
    head += [f"{LABELS[f]}{kind}" for f, _ in _COMPARED for kind in ("环比", "同比")]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    s, e = b.start.astimezone(CST), b.end.astimezone(CST)
    for r in b.rows:
        line = [s.isoformat(), e.isoformat(), DIMENSION_ZH[r.dimension], r.key, r.name,
                *(_csv_value(f, getattr(r, f)) for f in _FIGURES)]
        for f, _ in _COMPARED:
            for against in ("mom", "yoy"):
                c = b.change(r.dimension, r.key, f, against)  # type: ignore[arg-type]
                line.append("" if c is None else f"{c * 100:+.1f}")
        w.writerow(line)
    return buf.getvalue()
