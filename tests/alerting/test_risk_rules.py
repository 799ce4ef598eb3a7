"""data/risk_rules.yaml validated at load: each mistake a precise ``file: path: problem``; a refused
file changes nothing (``hazmon risk grade`` grades nothing, the timers' pass keeps the grades); the
pure grading on hand-made figures."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.risk import grade
from alerting.risk_rules import DEFAULT_RULES, RiskRulesError, load_rules, parse_rules
from alerting.store.risk import SiteFigures
from hazmon.cli import main

BASE: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))


def _with(**edit: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    for path, value in edit.items():
        *parents, last = path.split("__")
        at = raw
        for p in parents:
            at = at[p]
        if value is None:
            del at[last]
        else:
            at[last] = value
    return raw


CASES = {
    "unknown field": (_with(factors__staff={"field": "employees", "reason": "员工", "per": 1}),
                      "f: factors.staff.field: unknown field 'employees' (expected one of alarms, critical, "
                      "density_class, false_alarms, fault_alarms, gas_alarm_required, gas_devices, gas_use, "
                      "industry, major_hazards, open_hazards, overdue_hazards, real_alarms, site_class)"),
    "unknown key": (_with(factors__critical={"field": "critical", "reason": "重点场所", "points": 15,
                                             "weight": 2}),
                    "f: factors.critical.weight: unknown key (expected one of all_of, at_least, field, max, "
                    "min_grade, per, points, reason, values)"),
    "unknown factor": (_with(factors__critical_gas={"all_of": ["critical", "gas"], "reason": "x",
                                                    "points": 5}),
                       "f: factors.critical_gas.all_of[1]: unknown factor 'gas'"),
    "cycle": (_with(factors__a={"all_of": ["b"], "reason": "a", "points": 1},
                    factors__b={"all_of": ["c"], "reason": "b", "points": 1},
                    factors__c={"all_of": ["a", "critical"], "reason": "c", "points": 1}),
              "f: factors.a.all_of: factors refer to each other in a cycle: a → b → c → a"),
    "self": (_with(factors__a={"all_of": ["a"], "reason": "a", "points": 1}),
             "f: factors.a.all_of: factors refer to each other in a cycle: a → a"),
    "text without values": (_with(factors__industry={"field": "industry", "reason": "{value}", "points": 5}),
                            "f: factors.industry.values: required for the text field 'industry' "
                            "(points per value), without points or per"),
    "thresholds": (_with(grades={"red": 50, "orange": 60, "yellow": 30}),
                   "f: grades.orange: must lie between yellow (30) and red (50), got 60 "
                   "(thresholds must fall: red > orange > yellow)"),
    "missing grades": (_with(grades=None), "f: grades: required"),
    "bad floor": (_with(factors__major_hazards={**BASE["factors"]["major_hazards"], "min_grade": "purple"}),
                  "f: factors.major_hazards.min_grade: Input should be 'red', 'orange', 'yellow' or 'blue'"),
}


@pytest.mark.parametrize("raw,message", CASES.values(), ids=CASES.keys())
def test_rules_refused_with_file_path_problem(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(RiskRulesError) as exc:
        parse_rules(raw, file="f")
    assert str(exc.value) == message


def test_shipped_rules_load_and_combinations_come_after_their_parts() -> None:
    rules, digest = load_rules()
    assert rules.window_days == 30 and len(digest) == 12
    order = rules.order()
    assert order.index("critical_gas") > max(order.index("critical"), order.index("gas_use"))


def test_a_refused_file_grades_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "risk_rules.yaml"
    bad.write_text(yaml.safe_dump(_with(factors__x={"field": "nope", "reason": "x", "points": 1}),
                                  allow_unicode=True), encoding="utf-8")
    # refused before any connection is tried (the DSN points nowhere)
    rc = main(["risk", "grade", "--rules", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{bad}: factors.x.field: unknown field 'nope'" in err
    assert main(["risk", "check", str(DEFAULT_RULES)]) == 0
    assert "有效（10 项因素，统计窗口 30 天" in capsys.readouterr().out


def _site(**kw: Any) -> SiteFigures:
    base: dict[str, Any] = dict(site_id="X", site_name="某饭店", township_id="T", industry="餐饮", site_class="",
                                density_class="", critical=False, gas_alarm_required=False, gas_devices=0,
                                alarms=0, real_alarms=0, false_alarms=0, fault_alarms=0, open_hazards=0,
                                major_hazards=0, overdue_hazards=0)
    return SiteFigures(**{**base, **kw})


def test_grading_by_hand() -> None:
    rules, _ = load_rules()
    # 餐饮 20 + 重点场所 15 + 用气 10 + 重点且用气 5 + 真实 4 × 15 = 60 capped at 45 + 报警 2 (< 3): 0 → 95 红
    g = grade(rules, _site(critical=True, gas_devices=2, alarms=2, real_alarms=4))
    assert (g.grade, g.score) == ("red", 95)
    assert g.reasons == ("餐饮 +20", "重点场所 +15", "使用燃气 +10", "重点场所且使用燃气 +5", "近30天真实报警 4 起 +45")
    # nothing but an industry not listed: 0 → 蓝, no reasons
    assert grade(rules, _site(industry="零售")).grade == "blue"
    # 餐饮 20 + 用气 10 = 30: 蓝 (黄 from 35); with 人员密集程度中 8 → 38: 黄
    assert grade(rules, _site(gas_alarm_required=True)).grade == "blue"
    assert grade(rules, _site(gas_alarm_required=True, density_class="中")).grade == "yellow"


def test_the_registry_column_density_class() -> None:
    from hazmon.registry import SiteRow
    from hazmon.registry._rows import validate_row

    row = {"id": "S1", "name": "老王饭店", "township_id": "T1"}
    ok, problems = validate_row(SiteRow, {**row, "density_class": "高"})
    assert ok is not None and ok.density_class == "高" and not problems
    assert validate_row(SiteRow, row)[0].density_class == ""  # type: ignore[union-attr]  # not assessed
    _, problems = validate_row(SiteRow, {**row, "density_class": "很高"})
    assert problems == [("density_class", "Input should be '', '高', '中' or '低'")]


def test_every_mistake_in_one_round() -> None:
    raw = _with(factors__staff={"field": "employees", "reason": "员工", "per": 1},
                factors__critical_gas={"all_of": ["critical", "gas"], "reason": "x", "points": 5},
                factors__a={"all_of": ["a"], "reason": "a", "points": 1})
    with pytest.raises(RiskRulesError) as exc:
        parse_rules(raw, file="f")
    assert [p for p, _ in exc.value.problems] == [
        "factors.staff.field", "factors.critical_gas.all_of[1]", "factors.a.all_of"]
