"""Every metric the Grafana dashboard or a Prometheus rule queries is one the stages export (issue 20).

The exported names are those registered in prometheus_client's REGISTRY once every module of
the stages that uses prometheus_client is imported (a counter ``x_total`` is exported as
``x_total``, a histogram ``h`` as ``h_bucket``/``h_count``/``h_sum``); the queried names are
parsed out of the PromQL crudely (strings, label matchers, ranges and grouping clauses removed,
function names and keywords dropped). A panel or rule over a misspelt or renamed metric would
show nothing and never fire: this test names it.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy/grafana/dashboards/hazmon-pipeline.json"
RULES = ROOT / "deploy/prometheus/rules/hazmon.rules.yml"
STAGES = ("hazmon", "ingest", "detectors", "alerting", "console")
#: Prometheus's own series
BUILTIN = {"up"}
#: queried by a rule before its stage exports it (none now: the canary's
#: hazmon_canary_last_arrival_timestamp_seconds is exported by alerting/canary.py)
PENDING: set[str] = set()
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
             "bool", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (crude, enough for our own files)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+\d+[smhdwy]", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        name = m.group(0)
        if s[m.end():].lstrip().startswith("(") or name.lower() in _KEYWORDS:
            continue
        if re.match(r"\d", s[m.start() - 1:m.start()] if m.start() else ""):
            continue  # the exponent or unit of a number (1e3)
        names.add(name)
    return names


def exported() -> set[str]:
    for pkg in STAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "prometheus_client" in path.read_text(encoding="utf-8"):
                rel = path.relative_to(ROOT).with_suffix("")
                importlib.import_module(".".join(p for p in rel.parts if p != "__init__"))
    out = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            out.add(f"{family.name}_total")
        elif family.type == "histogram":
            out |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
        else:
            out.add(family.name)
    return out


def dashboard_exprs() -> dict[str, str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return {f"{p['title']} [{t['refId']}]": t["expr"] for p in dash["panels"] for t in p.get("targets", [])}


def rule_exprs() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"]}


def test_the_parser_finds_metrics_and_skips_functions_labels_and_keywords() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, loop) (rate(hazmon_x_bucket{job=~"a|b", le!="1"}[5m])))'
            ' / on() group_left sum(foo_total offset 1h) > 1e3 and bar')
    assert metric_names(expr) == {"hazmon_x_bucket", "foo_total", "bar"}


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_queried_metric_is_exported(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else rule_exprs()
    known = exported() | BUILTIN
    assert len(exprs) >= 10
    unknown = {where: sorted(metric_names(e) - known - PENDING) for where, e in exprs.items()}
    unknown = {k: v for k, v in unknown.items() if v}
    assert not unknown, f"{source} queries metrics no stage exports: {unknown}"
    assert all(metric_names(e) for e in exprs.values()), "an expression without a metric"


def test_pending_metrics_are_not_exported_yet() -> None:
    landed = PENDING & exported()
    assert not landed, (f"{sorted(landed)} is exported now: remove it from PENDING in {Path(__file__).name} "
                        "and check deploy/prometheus/rules/hazmon.rules.yml reads it as it is exported")


def test_dashboard_panels_are_titled_in_chinese_and_use_the_provisioned_datasource() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8"))
    uid = ds["datasources"][0]["uid"]
    for p in dash["panels"]:
        assert re.search(r"[\u4e00-\u9fff]", p["title"]), p["title"]
        if p["type"] != "row":
            assert p["datasource"]["uid"] == uid, p["title"]
    titles = {p["title"] for p in dash["panels"]}
    for wanted in ("各环节读数速率（条/秒）", "检测服务积压（条）", "死信（按原因，条/秒）", "通知结果（按渠道，条/分钟）",
                   "短信结果（按服务商，条/分钟）"):
        assert wanted in titles
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/hazmon.yml").read_text("utf-8"))
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_rules_carry_alerting_severities_and_chinese_annotations() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    for r in (r for g in groups for r in g["rules"]):
        assert r["labels"]["severity"] in {"red", "orange", "yellow", "blue"}, r["alert"]
        for key in ("summary", "description"):
            assert re.search(r"[\u4e00-\u9fff]", r["annotations"][key]), (r["alert"], key)
