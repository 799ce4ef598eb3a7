"""The sample district generator: deterministic, committed, and the shape the issue asks for."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from hazmon.registry import check, read_sources
from sim.sample import generate, main, matrix_yaml, write_sample

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = ROOT / "data" / "sample"
MATRIX_FILE = ROOT / "data" / "matrix.yaml"


def _only_reach_warnings(warnings: list) -> None:  # type: ignore[type-arg]
    """The sample leaves some duty rooms landline-only on purpose (issue 13: both the SMS and the
    voice path run in the demo): those, and nothing else, are warned about."""
    assert warnings, "the sample should have landline-only duty rooms"
    assert all("only a voice call reaches it (landline-only" in str(w) for w in warnings), warnings


def _tree(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_two_runs_write_identical_bytes(tmp_path: Path) -> None:
    assert main([str(tmp_path / "a"), "--matrix", str(tmp_path / "a.yaml")]) == 0
    assert main([str(tmp_path / "b"), "--matrix", str(tmp_path / "b.yaml")]) == 0
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert (tmp_path / "a.yaml").read_bytes() == (tmp_path / "b.yaml").read_bytes()
    # and the committed copies are what the generator writes today
    assert _tree(tmp_path / "a") == _tree(SAMPLE_DIR)
    assert (tmp_path / "a.yaml").read_bytes() == MATRIX_FILE.read_bytes()


def test_another_seed_gives_another_district(tmp_path: Path) -> None:
    write_sample(tmp_path / "x", generate(seed=7))
    assert _tree(tmp_path / "x") != _tree(SAMPLE_DIR)


def test_district_shape() -> None:
    t = generate().tables
    assert len(t["townships"]) >= 3 and len(t["villages"]) >= 12
    assert len(t["sites"]) >= 200 and len(t["devices"]) >= 1000
    by_domain = Counter(d["domain"] for d in t["devices"])
    assert set(by_domain) == {"gas", "elevator", "fire"} and min(by_domain.values()) >= 200
    assert {v["adapter"] for v in t["vendors"]} == {
        "gasjson",
        "elevator_json",
        "gbt26875",
        "senml",
        "hazmon_json",
    }
    industries = Counter(s["industry"] for s in t["sites"])
    assert {"餐饮", "商场", "住宅物业", "医院", "养老", "工业企业", "三合一场所"} <= set(industries)
    devices = {d["id"]: d for d in t["devices"]}
    sites = {s["id"]: s for s in t["sites"]}
    # restaurants are required to have gas alarms and have them (安装全覆盖)
    gas_sites = {d["site_id"] for d in t["devices"] if d["domain"] == "gas"}
    assert all(s["id"] in gas_sites for s in t["sites"] if s["gas_alarm_required"])
    # detectors hang off the panel of their own site
    children = [d for d in t["devices"] if d["parent_id"]]
    assert len(children) > 300
    assert all(devices[d["parent_id"]]["site_id"] == d["site_id"] for d in children)
    # coordinates in the small box, phones in the fake 139 0000 range
    assert all(120.08 <= s["lon"] <= 120.32 and 30.18 <= s["lat"] <= 30.37 for s in sites.values())
    phones = [c["phone"] for c in t["site_contacts"]] + [v["grid_member_phone"] for v in t["villages"]]
    assert all(re.fullmatch(r"1390000\d{4}", p) for p in phones) and len(set(phones)) == len(phones)
    # every 不放心点位 has a covering leader, and no leader covers more than 3
    critical = [s for s in sites.values() if s["critical"]]
    assert critical and all(s["covering_leader_id"] for s in critical)
    assert max(Counter(s["covering_leader_id"] for s in critical).values()) <= 3


def test_sample_validates_without_database() -> None:
    errors, warnings, plan = check(read_sources([SAMPLE_DIR]), {})
    assert errors == []
    _only_reach_warnings(warnings)
    assert len(plan.rows["devices"]) == len(generate().tables["devices"])


def test_matrix_yaml_follows_domain_md() -> None:
    text = matrix_yaml(generate())
    errors, warnings, plan = check(read_sources([MATRIX_FILE]), {})
    assert errors == []
    _only_reach_warnings(warnings)
    rules = {r["id"]: r for r in plan.rows["matrix_rules"]}
    assert rules["gas"]["department_ids"] == ["zj"]  # 住建
    assert rules["elevator"]["department_ids"] == ["sj"]  # 市监
    assert rules["fire"]["department_ids"] == ["yj", "xf"]  # 应急 + 消防救援
    assert rules["fire-elderly"]["industries"] == ["养老"] and rules["fire-elderly"]["department_ids"] == [
        "mz"
    ]
    assert all(r["leader_id"] and r["committee"] for r in rules.values())
    assert "专委会" in text


def test_scale_option_reaches_ten_thousand_devices() -> None:
    big = generate(min_devices=10_000)
    assert len(big.tables["devices"]) >= 10_000
    assert len({d["id"] for d in big.tables["devices"]}) == len(big.tables["devices"])
    phones = [c["phone"] for c in big.tables["site_contacts"]]
    assert len(set(phones)) == len(phones)
    errors, warnings, _ = check(_as_dataset(big), {})
    assert errors == []
    _only_reach_warnings(warnings)


def _as_dataset(district):  # type: ignore[no-untyped-def]
    from hazmon.registry import Loc, RawDataset, RawRow
    from hazmon.registry import format_cell as fmt

    ds = RawDataset()
    for table, rows in district.tables.items():
        ds.provided.add(table)
        for i, row in enumerate(rows):
            ds.rows[table].append(RawRow(table, {k: fmt(v) for k, v in row.items()}, Loc(table, i + 2)))
    return ds
