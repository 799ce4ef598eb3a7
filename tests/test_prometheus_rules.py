"""The Prometheus configuration and alert rules pass promtool (issue 20 item 3).

``promtool check config`` (prometheus.yml, its rule files), ``promtool check rules`` and
``promtool test rules`` — the unit tests of every rule in deploy/prometheus/tests/. promtool
comes from Debian's ``prometheus`` package, installed by scripts/setup_system.sh. Without it
the test is skipped on a developer's machine, and fails in CI (``CI`` set): it must run there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "deploy/prometheus"
PROMTOOL = shutil.which("promtool")

if PROMTOOL is None and os.environ.get("CI"):
    pytest.fail("promtool is missing in CI: scripts/setup_system.sh installs Debian's prometheus package",
                pytrace=False)
pytestmark = pytest.mark.skipif(PROMTOOL is None,
                                reason="promtool not installed (scripts/setup_system.sh installs Debian's "
                                       "prometheus package, which provides it)")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL or "promtool", *args], cwd=PROM, capture_output=True, text=True,
                          timeout=120)


def _rule_files() -> list[str]:
    return sorted(str(p.relative_to(PROM)) for p in (PROM / "rules").glob("*.yml"))


def test_check_config_and_rules() -> None:
    config = _promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _promtool("check", "rules", *_rule_files())
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout


def test_rule_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(PROM)) for p in (PROM / "tests").glob("*.yml"))
    assert tests
    proc = _promtool("test", "rules", *tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_has_a_unit_test() -> None:
    rules = {r["alert"] for f in _rule_files() for g in yaml.safe_load((PROM / f).read_text("utf-8"))["groups"]
             for r in g["rules"] if "alert" in r}
    tested: dict[str, set[str]] = {}
    for path in (PROM / "tests").glob("*.yml"):
        for t in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in t.get("alert_rule_test", []):
                tested.setdefault(case["alertname"], set()).add("fires" if case["exp_alerts"] else "quiet")
    assert rules and rules == set(tested), f"untested: {sorted(rules - set(tested))}"
    only_one_way = sorted(name for name, ways in tested.items() if ways != {"fires", "quiet"})
    assert not only_one_way, f"rules tested only firing or only quiet: {only_one_way}"


def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """The unit tests can fail: a wrong expected annotation is caught by promtool."""
    src = (PROM / "tests/hazmon.rules.test.yml").read_text(encoding="utf-8")
    bad = src.replace("每秒 1.0 条。", "每秒 9.9 条。").replace("../rules/", str(PROM / "rules") + "/")
    assert bad != src
    (tmp_path / "bad.yml").write_text(bad, encoding="utf-8")
    proc = subprocess.run([PROMTOOL or "promtool", "test", "rules", str(tmp_path / "bad.yml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "HazmonIngestDeadLetters" in proc.stdout + proc.stderr


def test_compose_wires_prometheus_alerts_to_alerting_with_the_same_token() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text(encoding="utf-8"))
    [am] = prom["alerting"]["alertmanagers"]
    assert am["api_version"] == "v2" and am["authorization"]["type"] == "Bearer"
    alerting = compose["services"]["alerting"]
    port = alerting["environment"]["HAZMON_INBOUND__PORT"]
    assert am["static_configs"][0]["targets"] == [f"alerting:{port}"]
    prometheus = compose["services"]["prometheus"]
    assert am["authorization"]["credentials_file"] == f"/run/secrets/{prometheus['secrets'][0]}"
    var = compose["secrets"][prometheus["secrets"][0]]["environment"]
    assert alerting["environment"]["HAZMON_INBOUND__ALERTMANAGER_TOKEN"].startswith(f"${{{var}:?")
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert prom["rule_files"] == ["rules/*.yml"]
    grafana = compose["services"]["grafana"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
