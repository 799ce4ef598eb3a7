"""data/area_warnings.yaml checked at load: every problem at once as ``file: path: problem`` — an
unknown key, a condition naming an unknown measure, a sum whose terms come back to itself, a 点
condition that counts 点 warnings — and the CLI refuses such a file changing nothing."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.area_warning_rules import DEFAULT_RULES_FILE, RulesFileError, load_rules, parse_rules

GOOD: dict[str, Any] = {
    "every": "5m",
    "measures": {
        "real": {"name": "近30天真实警情", "unit": "起", "from": "alarms", "days": 30, "verdicts": ["real"]},
        "overdue": {"name": "逾期未整改隐患", "from": "hazards", "overdue": True},
        "major": {"name": "未整改重大隐患", "from": "hazards", "grade": "major"},
        "red_sites": {"name": "红色预警点位", "unit": "个", "from": "site_warnings", "level": "red"},
        "score": {"name": "隐患风险分", "unit": "分", "from": "sum", "terms": {"overdue": 2, "major": 5}},
    },
    "levels": {
        "site": {"red": [{"real": 3}], "orange": [{"major": 1, "overdue": 1}]},
        "township": {"red": [{"red_sites": 2}], "yellow": [{"score": 10}]},
    },
}


def _bad(change: Any) -> str:
    raw = copy.deepcopy(GOOD)
    change(raw)
    with pytest.raises(RulesFileError) as exc:
        parse_rules(raw, file="area_warnings.yaml")
    return str(exc.value)


def test_the_shipped_rules_and_the_good_ones_load() -> None:
    shipped = load_rules(DEFAULT_RULES_FILE)
    assert {"site", "township", "industry"} <= set(shipped.levels)
    rules = parse_rules(GOOD)
    assert rules.every_s == 300
    assert rules.order.index("score") > max(rules.order.index("overdue"), rules.order.index("major"))
    assert rules.used("township") == {"red_sites", "score", "overdue", "major"}


def test_an_unknown_key_is_named_with_the_keys_expected() -> None:
    msg = _bad(lambda r: r["measures"]["real"].update(verdict=["real"]))
    assert msg.startswith("area_warnings.yaml: measures.real.verdict: unknown key (expected one of ")
    assert "verdicts" in msg
    assert "area_warnings.yaml: levels.town: " in _bad(lambda r: r["levels"].update(town={}))


def test_a_key_the_measure_s_source_does_not_read_is_refused() -> None:
    msg = _bad(lambda r: r["measures"]["overdue"].update(days=7))
    assert msg == (
        "area_warnings.yaml: measures.overdue.days: not read by a measure from hazards "
        "(it reads grade, overdue)"
    )


def test_a_condition_naming_an_unknown_measure() -> None:
    msg = _bad(lambda r: r["levels"]["site"]["red"].append({"deaths": 1}))
    assert msg == (
        "area_warnings.yaml: levels.site.red[1].deaths: unknown measure "
        "(expected one of major, overdue, real, red_sites, score)"
    )


def test_a_cycle_of_sums_is_refused_with_its_path() -> None:
    def cycle(r: dict) -> None:
        r["measures"]["score"]["terms"]["load"] = 1
        r["measures"]["load"] = {"name": "负荷", "from": "sum", "terms": {"score": 1}}

    msg = _bad(cycle)
    assert "area_warnings.yaml: measures.score.terms.load: cycle: score → load → score" in msg


def test_a_site_condition_counting_site_warnings_is_a_cycle() -> None:
    def self_ref(r: dict) -> None:
        r["measures"]["weighted"] = {"name": "加权", "from": "sum", "terms": {"red_sites": 1, "real": 1}}
        r["levels"]["site"]["yellow"] = [{"weighted": 1}]

    msg = _bad(self_ref)
    assert msg == (
        "area_warnings.yaml: levels.site.yellow[0].weighted: cycle: the 点 warnings that weighted "
        "counts are decided by this rule"
    )


def test_every_problem_at_once() -> None:
    def many(r: dict) -> None:
        r["levels"]["site"]["red"] = [{"nothing": 1}, {"real": 0}]
        r["every"] = "10s"

    msg = _bad(many)
    assert msg.count("area_warnings.yaml: ") == 3, msg
    assert "every: at least 1m" in msg and "levels.site.red[1].real: the threshold must be above 0" in msg


def test_the_cli_refuses_a_bad_file_and_exits_2(tmp_path: Path) -> None:
    raw = copy.deepcopy(GOOD)
    raw["measures"]["real"]["from"] = "alarm"
    bad = tmp_path / "area_warnings.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "warnings", "evaluate", "--rules", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out
    assert f"{bad}: measures.real.from: " in out.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "warnings", "evaluate", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "规则有效" in ok.stdout, ok
