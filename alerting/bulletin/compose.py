"""The 通报's sections from a :class:`alerting.kpi.Bulletin` and the 考核目标 (pure): the form of
a county bulletin (seed 004) — title, period, an overview paragraph with the headline figures and
their 同比, tables per 镇街, 部门 and 领域, 存在问题 naming the units below target, 下一步工作.

A bulletin read by a township or a department (console/routes/kpis.py's scoping) has no district
total: its overview speaks of its own rows."""

from __future__ import annotations

from datetime import timedelta

from alerting.bulletin.model import (
    BulletinDoc,
    Cell,
    ChartSpec,
    ColumnKind,
    DocColumn,
    DocSection,
    DocTable,
    show,
)
from alerting.bulletin.targets import RATES, Targets
from alerting.kpi import CST, Bulletin, Dimension, KpiRow, period_label
from alerting.kpi.render import LABELS

__all__ = ["compose", "change_phrase", "shortfalls", "numeral", "label_slug", "NUMERALS"]

NUMERALS = "一二三四五六七八九十"
_ORDINAL = ("一是", "二是", "三是", "四是", "五是", "六是", "七是", "八是", "九是", "十是")
_DIM_TITLE: dict[Dimension, str] = {"township": "镇街", "department": "部门", "domain": "领域"}
#: 存在问题's words per figure: what is short, and what the unit is asked to do next
_WHAT = {
    "coverage_rate": "燃气报警装置安装覆盖率", "online_rate": "设备在线率", "closure_rate": "报警处置率",
    "false_alarm_rate": "误报率", "rectification_rate": "隐患整改率", "overdue_alerts": "逾期未处置报警",
    "overdue_orders": "超时未办结工单", "overdue_hazards": "逾期未整改隐患",
}
_UNIT = {"overdue_alerts": "起", "overdue_orders": "件", "overdue_hazards": "处"}
_NEXT = {
    "coverage_rate": "督促{units}对应装未装的餐饮等用气场所限期安装可燃气体报警装置，做到安装全覆盖",
    "online_rate": "督促{units}会同设备厂商排查离线、从未上线设备，恢复在线监测，做到在线全时段",
    "closure_rate": "督促{units}对未办结报警逐条研判、处置、反馈，做到报警全处置、事事有着落",
    "false_alarm_rate": "督促{units}会同厂商对误报多发设备校准、检修或更换，降低误报率",
    "rectification_rate": "督促{units}对未整改隐患挂牌督办、限期销号",
    "overdue_alerts": "对{units}逾期未处置报警按“四单工作法”发送工作提醒单、风险警示单",
    "overdue_orders": "对{units}超时工单逐件督办，明确办结时限",
    "overdue_hazards": "对{units}逾期未整改隐患下发问题督办单，挂牌督办直至整改销号",
}
_STANDING = (
    "压实责任。严格落实属地管理责任、部门监管责任和企业主体责任，按照“三管三必须”要求，"
    "对本通报指出的问题逐项建立清单、明确时限、整改销号。",
    "强化闭环。坚持报警“研判—推送—处置—反馈—办结”闭环管理，做到事事有着落、件件有回音。",
    "加强调度。区安委办按月通报各镇（街道）、各部门指标情况，对连续未达标的单位予以约谈。",
)


def numeral(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 21 → 二十一 (headings and items of a 通报)."""
    if n <= 10:
        return NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    return f"{NUMERALS[tens - 1] if tens > 1 else ''}十{NUMERALS[ones - 1] if ones else ''}"


def change_phrase(kind: str, v: float | None, against: str = "同比") -> str:
    """同比上升12.1个百分点 / 同比下降33.3% / 同比持平 / 无同期数据."""
    if v is None:
        return "无同期数据" if against == "同比" else "无上期数据"
    if abs(v) < 0.0005:
        return f"{against}持平"
    word = "上升" if v > 0 else "下降"
    amount = f"{abs(v) * 100:.1f}个百分点" if kind == "pct" else f"{abs(v) * 100:.1f}%"
    return f"{against}{word}{amount}"


def _yoy(b: Bulletin, r: KpiRow, f: str) -> str:
    return change_phrase("pct" if f in RATES else "int", b.change(r.dimension, r.key, f, "yoy"))


def _overview(b: Bulletin, r: KpiRow, who: str, label: str) -> str:
    p = [f"{label}，{who}共接入监测设备{r.devices}台，设备在线率{show('pct', r.online_rate)}"
         f"（{_yoy(b, r, 'online_rate')}）"]
    if r.sites_required is not None:
        p.append(f"应安装燃气报警装置场所{r.sites_required}处，已覆盖{r.sites_covered}处，"
                 f"安装覆盖率{show('pct', r.coverage_rate)}（{_yoy(b, r, 'coverage_rate')}）")
    p.append(f"发生报警{r.alerts}起（{_yoy(b, r, 'alerts')}），已办结{r.alerts_closed}起，"
             f"处置率{show('pct', r.closure_rate)}（{_yoy(b, r, 'closure_rate')}）")
    p.append(f"经研判真实报警{r.real}起、误报{r.false}起、测试{r.test}起、故障{r.fault}起，"
             f"误报率{show('pct', r.false_alarm_rate)}（{_yoy(b, r, 'false_alarm_rate')}）")
    p.append(f"排查隐患{r.hazards_found}处，已整改{r.hazards_rectified}处，"
             f"整改率{show('pct', r.rectification_rate)}（{_yoy(b, r, 'rectification_rate')}）")
    p.append(f"截至期末，逾期报警{r.overdue_alerts}起、超时工单{r.overdue_orders}件、"
             f"逾期隐患{r.overdue_hazards}处")
    return "；".join(p) + "。现将有关情况通报如下："


_HEADLINE = ("devices", "online_rate", "sites_required", "sites_covered", "coverage_rate", "alerts",
             "alerts_closed", "closure_rate", "real", "false", "test", "fault", "false_alarm_rate",
             "ack_median_s", "ack_p90_s", "arrive_median_s", "arrive_p90_s", "close_median_s",
             "close_p90_s", "hazards_found", "hazards_rectified", "rectification_rate", "overdue_alerts",
             "overdue_orders", "overdue_hazards")


def _kind(f: str) -> ColumnKind:
    return "pct" if f in RATES or f == "fault_rate" else "dur" if f.endswith("_s") else "int"


def _headline_table(b: Bulletin, r: KpiRow, sheet: str) -> DocTable:
    """本期, 上期, 环比, 去年同期, 同比 of every headline figure (rows of mixed kinds: shown as text)."""
    prev = b.previous.find(r.dimension, r.key) if b.previous else None
    ago = b.year_ago.find(r.dimension, r.key) if b.year_ago else None
    rows: list[tuple[Cell, ...]] = []
    for f in _HEADLINE:
        k = _kind(f)
        ck: ColumnKind = "pp" if k == "pct" else "rel"
        rows.append((LABELS[f], show(k, getattr(r, f)), show(k, getattr(prev, f) if prev else None),
                     show(ck, b.change(r.dimension, r.key, f, "mom")),
                     show(k, getattr(ago, f) if ago else None),
                     show(ck, b.change(r.dimension, r.key, f, "yoy"))))
    cols = tuple(DocColumn(t) for t in ("指标", "本期", "上期", "环比", "去年同期", "同比"))
    title = f"{r.name}主要指标" if r.dimension != "total" else "全区主要指标"
    return DocTable(title, sheet, cols, tuple(rows),
                    note="同比为与去年同期相比，环比为与上一周期相比；比率的变化以百分点计，数量的变化以百分比计。")


_UNIT_COLS = (DocColumn("排名", "int"), DocColumn("名称"), DocColumn("设备数", "int"), DocColumn("在线率", "pct"),
              DocColumn("在线率同比", "pp"), DocColumn("覆盖率", "pct"), DocColumn("报警", "int"),
              DocColumn("办结", "int"), DocColumn("处置率", "pct"), DocColumn("处置率同比", "pp"),
              DocColumn("误报率", "pct"), DocColumn("排查隐患", "int"), DocColumn("已整改", "int"),
              DocColumn("整改率", "pct"), DocColumn("逾期报警", "int"), DocColumn("超时工单", "int"),
              DocColumn("逾期隐患", "int"))


def _unit_rows(b: Bulletin, rows: list[KpiRow]) -> tuple[tuple[Cell, ...], ...]:
    def ch(r: KpiRow, f: str) -> float | None:
        return b.change(r.dimension, r.key, f, "yoy")
    return tuple((r.rank, r.name, r.devices, r.online_rate, ch(r, "online_rate"), r.coverage_rate, r.alerts,
                  r.alerts_closed, r.closure_rate, ch(r, "closure_rate"), r.false_alarm_rate, r.hazards_found,
                  r.hazards_rectified, r.rectification_rate, r.overdue_alerts, r.overdue_orders,
                  r.overdue_hazards) for r in rows)


def _sorted(b: Bulletin, dim: Dimension) -> list[KpiRow]:
    return sorted(b.by(dim), key=lambda r: (r.rank is None, r.rank or 0, r.key))


def shortfalls(b: Bulletin, targets: Targets) -> list[tuple[str, list[tuple[KpiRow, float]]]]:
    """Per target figure (in the file's order), the units below target with their value."""
    out = []
    for f, rule in targets.targets.items():
        units = [(r, float(getattr(r, f))) for dim in targets.dimensions for r in _sorted(b, dim)
                 if rule.missed(getattr(r, f))]
        if units:
            out.append((f, units))
    return out


def unit_name(r: KpiRow) -> str:
    """A unit as 存在问题 names it: 西山镇, 区住房和城乡建设局, 燃气领域."""
    return f"{r.name}领域" if r.dimension == "domain" and not r.name.endswith("领域") else r.name


def _value(f: str, v: float) -> str:
    return show("pct", v) if f in RATES else f"{int(v)}{_UNIT[f]}"


def _problems(b: Bulletin, targets: Targets) -> tuple[list[str], list[str]]:
    items, steps = [], []
    for i, (f, units) in enumerate(shortfalls(b, targets)[:len(_ORDINAL)]):
        rule = targets.targets[f]
        names = "、".join(f"{unit_name(r)}（{_value(f, v)}）" for r, v in units)
        if f in RATES:
            goal = f"{'低于' if rule.min is not None else '高于'}{show('pct', rule.bound)}的目标"
            items.append(f"{_ORDINAL[i]}{_WHAT[f]}{goal}：{names}。")
        else:
            items.append(f"{_ORDINAL[i]}存在{_WHAT[f]}：{names}。")
        steps.append(_NEXT[f].format(units="、".join(dict.fromkeys(unit_name(r) for r, _ in units))))
    return items, steps


def compose(b: Bulletin, targets: Targets) -> BulletinDoc:
    """The 通报 of ``b`` (its figures only: every number comes from the Bulletin)."""
    label = period_label(b.start, b.end)
    s, e = b.start.astimezone(CST), (b.end - timedelta(seconds=1)).astimezone(CST)
    total = b.find("total", "all")
    own = [total] if total else [r for d in ("township", "department", "domain") for r in b.by(d)]
    if total:
        opening = _overview(b, total, "全区", label)
    elif own:
        opening = _overview(b, own[0], own[0].name, label)
    else:
        opening = f"{label}，本单位无可通报的监测数据。"
    secs: list[DocSection] = []
    n = 0

    def head(words: str) -> str:
        nonlocal n
        n += 1
        return f"{numeral(n)}、{words}"

    secs.append(DocSection(head("总体情况"), tables=tuple(_headline_table(b, r, f"主要指标{i + 1}" if i else "主要指标")
                                                     for i, r in enumerate(own))))
    for dim in _DIM_TITLE:
        rows = _sorted(b, dim)
        if not rows:
            continue
        word = _DIM_TITLE[dim]
        cols = _UNIT_COLS if dim != "domain" else _UNIT_COLS[1:]
        body = _unit_rows(b, rows) if dim != "domain" else tuple(r[1:] for r in _unit_rows(b, rows))
        best = [r.name for r in rows if r.rank == 1]
        paras = (f"本期{word}综合排名第一：{'、'.join(best)}。",) if best and len(rows) > 1 else ()
        charts = (ChartSpec(f"各{word}设备在线率、报警处置率与隐患整改率", tuple(r.name for r in rows),
                            (("设备在线率", tuple(r.online_rate for r in rows)),
                             ("报警处置率", tuple(r.closure_rate for r in rows)),
                             ("隐患整改率", tuple(r.rectification_rate for r in rows)))),) if dim != "department" else ()
        note = "排名按综合得分（覆盖率、在线率、处置率、整改率的平均值减误报率）。" if dim != "domain" else ""
        secs.append(DocSection(head(f"分{word}情况"), paras, (DocTable(f"各{word}监测预警指标", f"按{word}", cols,
                                                                       body, note),), charts))
    if b.vendors:
        vcols = (DocColumn("排名", "int"), DocColumn("厂商"), DocColumn("设备数", "int"),
                DocColumn("在线率", "pct"), DocColumn("故障率", "pct"), DocColumn("误报率", "pct"))
        body = tuple((i, v.name, v.devices, v.online_rate, v.fault_rate, v.false_alarm_rate)
                     for i, v in enumerate(b.vendors, 1))
        secs.append(DocSection(head("设备厂商情况"), tables=(DocTable("厂商排名", "厂商排名", vcols, body,
                                                                "按在线率由高到低，再按故障率、误报率由低到高。"),)))
    items, steps = _problems(b, targets)
    if items:
        intro = "对照“安装全覆盖、在线全时段、报警全处置”和隐患整改销号的目标要求，本期还存在以下问题："
        secs.append(DocSection(head("存在问题"), (intro, *items)))
    else:
        secs.append(DocSection(head("存在问题"), ("本期各镇（街道）、各部门、各领域各项指标均达到考核目标。",)))
    nxt = [f"（{numeral(i + 1)}）{x}。" for i, x in enumerate(steps)]
    nxt += [f"（{numeral(len(nxt) + i + 1)}）{x}" for i, x in enumerate(_STANDING)]
    secs.append(DocSection(head("下一步工作"), tuple(nxt)))
    slug = label_slug(b)
    return BulletinDoc(
        title=f"{label}安全生产监测预警工作情况通报",
        period=f"统计时段：{s.year}年{s.month}月{s.day}日至{e.year}年{e.month}月{e.day}日",
        addressee="区安委会各成员单位，各镇（街道）：",
        opening=opening,
        sections=tuple(secs),
        date=f"{b.generated_at.astimezone(CST):%Y年%m月%d日}".replace("年0", "年").replace("月0", "月"),
        slug=slug,
    )


def label_slug(b: Bulletin) -> str:
    """bulletin_2026-11, bulletin_2026-Q4, bulletin_2026 or bulletin_2026-11-03_2026-11-20."""
    label = period_label(b.start, b.end)
    s = b.start.astimezone(CST)
    if label.endswith("季度"):
        return f"bulletin_{s.year}-Q{(s.month - 1) // 3 + 1}"
    if label.endswith("月"):
        return f"bulletin_{s:%Y-%m}"
    if label.endswith("年"):
        return f"bulletin_{s.year}"
    e = (b.end - timedelta(seconds=1)).astimezone(CST)
    return f"bulletin_{s:%Y-%m-%d}_{e:%Y-%m-%d}"
