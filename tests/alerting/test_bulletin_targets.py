"""考核目标 (data/targets.yaml): refusals in the data files' wording (file: path: problem), and the
存在问题 / 下一步工作 a hand-built Bulletin gets from them (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerting.bulletin import compose, load_targets
from alerting.bulletin.compose import change_phrase, numeral
from alerting.bulletin.targets import TargetsError, parse_targets
from alerting.kpi import Bulletin, KpiRow, period_bounds


@pytest.mark.parametrize(("raw", "problem"), [
    ({"targets": {"uptime": {"min": 0.9}}}, "data/targets.yaml: targets.uptime: unknown figure (expected one of"),
    ({"targets": {"online_rate": {"min": 95}}}, "data/targets.yaml: targets.online_rate.min: a rate is a fraction"),
    ({"targets": {"online_rate": {"min": 0.9, "max": 1}}},
     "data/targets.yaml: targets.online_rate: give exactly one of min or max"),
    ({"targets": {"online_rate": {"mn": 0.9}}},
     "data/targets.yaml: targets.online_rate.mn: unknown key (expected one of max, min)"),
    ({"targets": {"overdue_orders": {"min": 1}}}, "data/targets.yaml: targets.overdue_orders: a 逾期 count takes max"),
    ({"targets": {}, "dimensions": ["site"]}, "data/targets.yaml: dimensions[0]: "),
    ([1, 2], "data/targets.yaml: must be a mapping"),
])
def test_bad_targets_are_refused_with_their_path(raw: object, problem: str) -> None:
    with pytest.raises(TargetsError) as exc:
        parse_targets(raw)
    assert str(exc.value).startswith(problem), str(exc.value)


def test_a_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match="no such file"):
        load_targets(tmp_path / "none.yaml")
    bad = tmp_path / "t.yaml"
    bad.write_text("targets: [", encoding="utf-8")
    with pytest.raises(TargetsError, match="not valid YAML"):
        load_targets(bad)


def test_the_shipped_file_loads() -> None:
    t = load_targets()
    assert t.targets["online_rate"].min == 0.95 and t.targets["overdue_hazards"].max == 0


def _bulletin() -> Bulletin:
    start, end = period_bounds("2026-10")
    rows = (KpiRow("total", "all", "全区", devices=10, online_rate=0.97, alerts=4, alerts_closed=4,
                   closure_rate=1.0),
            KpiRow("township", "T1", "东城街道", devices=6, online_rate=0.99, alerts=2, alerts_closed=2,
                   closure_rate=1.0, rank=1),
            KpiRow("township", "T2", "西山镇", devices=4, online_rate=0.90, alerts=2, alerts_closed=2,
                   closure_rate=1.0, overdue_hazards=2, rank=2),
            KpiRow("domain", "gas", "燃气", devices=10, online_rate=0.94))
    return Bulletin(start, end, datetime(2026, 11, 2, tzinfo=UTC), rows)


def test_units_below_target_are_named_and_given_next_steps() -> None:
    doc = compose(_bulletin(), load_targets())
    problems = next(s for s in doc.sections if s.heading.endswith("存在问题")).paragraphs
    assert problems[1] == "一是设备在线率低于95.0%的目标：西山镇（90.0%）、燃气领域（94.0%）。"
    assert problems[2] == "二是存在逾期未整改隐患：西山镇（2处）。"
    steps = next(s for s in doc.sections if s.heading.endswith("下一步工作")).paragraphs
    assert steps[0].startswith("（一）督促西山镇、燃气领域会同设备厂商排查离线")
    assert steps[1].startswith("（二）对西山镇逾期未整改隐患下发问题督办单")
    # no comparison periods: said in words, not as 0 or a crash
    assert "设备在线率97.0%（无同期数据）" in doc.opening
    assert doc.slug == "bulletin_2026-10" and doc.title == "2026年10月安全生产监测预警工作情况通报"


def test_all_on_target_says_so() -> None:
    raw = {"targets": {"closure_rate": {"min": 1.0}}}
    doc = compose(_bulletin(), parse_targets(raw))
    problems = next(s for s in doc.sections if s.heading.endswith("存在问题")).paragraphs
    assert problems == ("本期各镇（街道）、各部门、各领域各项指标均达到考核目标。",)


def test_words() -> None:
    assert [numeral(n) for n in (1, 10, 11, 20, 23)] == ["一", "十", "十一", "二十", "二十三"]
    assert change_phrase("pct", 0.121) == "同比上升12.1个百分点"
    assert change_phrase("int", -1 / 3) == "同比下降33.3%"
    assert change_phrase("int", 0.0) == "同比持平" and change_phrase("pct", None) == "无同期数据"
