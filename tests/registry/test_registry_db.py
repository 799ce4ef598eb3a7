"""Registry import/export/snapshot against a real PostgreSQL (the ``pg_dsn`` fixture)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from registry_helpers import MATRIX_FILE, REGISTRY_TABLES, SAMPLE_DIR, set_line, table_checksums

from hazmon.errors import RegistryError
from hazmon.registry import Contact, Device, Registry, export_registry, import_registry, load_registry
from sim.sample import generate


async def _counts(dsn: str) -> dict[str, int]:
    return {t: n for t, (n, _h) in (await table_checksums(dsn)).items()}


async def test_sample_imports_cleanly_and_counts_match(pg_dsn: str) -> None:
    report = await import_registry(pg_dsn, SAMPLE_DIR)
    # the landline-only duty rooms are the only warnings (test_registry_reach.py checks them)
    assert [w for w in report.warnings if "only a voice call reaches it" not in w.problem] == []
    district = generate()
    counts = await _counts(pg_dsn)
    for table in REGISTRY_TABLES:
        assert counts[table] == district.count(table), table
        assert report.counts[table].inserted == district.count(table)
    assert counts["registry_audit"] == 1
    assert counts["townships"] >= 3 and counts["sites"] >= 200 and counts["devices"] >= 1000


async def test_import_twice_is_idempotent(pg_dsn: str) -> None:
    await import_registry(pg_dsn, SAMPLE_DIR)
    before = await table_checksums(pg_dsn)
    again = await import_registry(pg_dsn, SAMPLE_DIR)
    after = await table_checksums(pg_dsn)
    for table in REGISTRY_TABLES:
        c = again.counts[table]
        assert (c.inserted, c.updated, c.deleted) == (0, 0, 0), table
        assert c.unchanged == c.given > 0
        assert after[table] == before[table], table
    assert after["registry_audit"][0] == before["registry_audit"][0] + 1  # every import is audited


async def test_one_bad_row_leaves_database_exactly_as_it_was(pg_dsn: str, tmp_path: Path) -> None:
    await import_registry(pg_dsn, SAMPLE_DIR)
    before = await table_checksums(pg_dsn)
    changed = tmp_path / "sample"
    shutil.copytree(SAMPLE_DIR, changed)
    # good edits (a renamed site, a new device) next to one bad row at the end
    sites = changed / "sites.csv"
    lines = sites.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[1], "改名后的面馆", 1)
    sites.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (changed / "devices.csv").open("a", encoding="utf-8") as f:
        f.write("gas-99990,acme-gas,AG-GD200,gas,S00001,60,2024-01-01,,true\n")
        f.write("gas-99991,acme-gas,AG-GD200,gass,S00001,60,2024-01-01,,true\n")
    n_lines = len((changed / "devices.csv").read_text(encoding="utf-8").splitlines())
    for replace in (False, True):
        with pytest.raises(RegistryError) as info:
            await import_registry(pg_dsn, changed, replace=replace)
        assert [str(e) for e in info.value.errors] == [
            f"{changed}/devices.csv:{n_lines}: domain: unknown domain 'gass' (not in domains)"
        ]
        assert await table_checksums(pg_dsn) == before


async def test_bad_first_import_loads_nothing(pg_dsn: str, tiny_dir: Path) -> None:
    set_line(tiny_dir / "devices.csv", 4, "smk-1,firenet,FN-JTY-GD,fire,S2,,2022-13-10,fpnl-1,true")
    empty = await table_checksums(pg_dsn)
    with pytest.raises(RegistryError):
        await import_registry(pg_dsn, tiny_dir)
    assert await table_checksums(pg_dsn) == empty
    assert all(n == 0 for n, _ in empty.values())


async def test_dry_run_and_strict(pg_dsn: str, tiny_dir: Path) -> None:
    report = await import_registry(pg_dsn, tiny_dir, dry_run=True)
    assert report.counts["devices"].inserted == 3
    assert (await _counts(pg_dsn))["devices"] == 0
    set_line(tiny_dir / "site_contacts.csv", 2, None)
    with pytest.raises(RegistryError) as info:
        await import_registry(pg_dsn, tiny_dir, strict=True)
    assert [str(e) for e in info.value.errors] == [
        f"{tiny_dir}/sites.csv:2: contacts: warning: site 'S1' has no contacts "
        "(企业主体责任: the business cannot be reached by SMS)"
    ]
    report = await import_registry(pg_dsn, tiny_dir)  # not strict: loaded, warning reported
    assert [w.field for w in report.warnings] == ["contacts"]
    assert (await _counts(pg_dsn))["sites"] == 2


async def test_replace_deletes_rows_absent_from_the_files(pg_dsn: str, tiny_dir: Path) -> None:
    await import_registry(pg_dsn, tiny_dir)
    set_line(tiny_dir / "devices.csv", 4, None)  # smk-1
    set_line(tiny_dir / "site_contacts.csv", 2, "S1,王五,主要负责人,13900000199")  # new phone
    report = await import_registry(pg_dsn, tiny_dir)
    snap = await _snapshot(pg_dsn)
    assert "smk-1" in snap.devices  # plain import never deletes devices
    # a site's contacts are the given ones: the old phone went, the new one came
    assert snap.sites["S1"].contacts == (Contact("王五", "主要负责人", "13900000199"),)
    assert report.counts["site_contacts"].deleted == 1
    report = await import_registry(pg_dsn, tiny_dir, replace=True)
    assert report.counts["devices"].deleted == 1
    assert "smk-1" not in (await _snapshot(pg_dsn)).devices


async def test_replace_refuses_to_orphan_kept_rows(pg_dsn: str, tiny_dir: Path, tmp_path: Path) -> None:
    await import_registry(pg_dsn, tiny_dir)
    before = await table_checksums(pg_dsn)
    leaders = tmp_path / "leaders.yaml"
    leaders.write_text("leaders:\n  - {id: L2, name: 李强, phone: '13900000111'}\n", encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        await import_registry(pg_dsn, leaders, replace=True)
    assert [str(e) for e in info.value.errors] == [
        "(database) sites[S2]: covering_leader_id: references leader 'L1', which this import removes (--replace)",
        "(database) matrix_rules[fire]: leader_id: references leader 'L1', which this import removes (--replace)",
        "(database) matrix_rules[gas]: leader_id: references leader 'L1', which this import removes (--replace)",
    ]
    assert await table_checksums(pg_dsn) == before
    # without --replace the same file just adds a leader
    report = await import_registry(pg_dsn, leaders)
    assert report.counts["leaders"].inserted == 1


async def test_partial_import_references_existing_rows(pg_dsn: str, tiny_dir: Path, tmp_path: Path) -> None:
    await import_registry(pg_dsn, tiny_dir)
    more = tmp_path / "more.yaml"
    more.write_text(
        "devices:\n"
        "  - {id: gas-2, vendor_id: acme-gas, domain: gas, site_id: S2, parent_id: null}\n"
        "  - {id: heat-1, vendor_id: firenet, domain: fire, site_id: S2, parent_id: fpnl-1}\n"
        "  - {id: gas-3, vendor_id: acme-gas, domain: gas, site_id: S7}\n",
        encoding="utf-8",
    )
    with pytest.raises(RegistryError) as info:
        await import_registry(pg_dsn, more)
    assert [str(e) for e in info.value.errors] == [f"{more}:4: site_id: unknown site 'S7'"]
    set_line(more, 4, None)
    await import_registry(pg_dsn, more)
    snap = await _snapshot(pg_dsn)
    assert snap.devices["gas-2"].expected_interval_s == 60  # the gas domain's default
    assert snap.children["fpnl-1"] == ("heat-1", "smk-1")


async def test_matrix_yaml_imports_alone(pg_dsn: str) -> None:
    report = await import_registry(pg_dsn, MATRIX_FILE)
    assert [w for w in report.warnings if "only a voice call reaches it" not in w.problem] == []
    snap = await _snapshot(pg_dsn)
    assert [r.department_ids for r in snap.rules_for("fire", "养老")] == [("yj", "xf"), ("mz",)]
    assert [r.id for r in snap.rules_for("gas", "餐饮")] == ["gas"]
    assert snap.rules_for("power") and not snap.rules_for("elevator", "x")[0].industries
    # and the sample district on top agrees with it row for row
    again = await import_registry(pg_dsn, SAMPLE_DIR)
    for table in ("domains", "departments", "matrix_rules"):
        assert again.counts[table].unchanged == again.counts[table].given


async def test_audit_row(pg_dsn: str, tiny_dir: Path) -> None:
    await import_registry(pg_dsn, tiny_dir, actor="test")
    conn = await asyncpg.connect(pg_dsn)
    try:
        row = await conn.fetchrow("SELECT actor, action, detail FROM registry_audit")
    finally:
        await conn.close()
    detail = json.loads(row["detail"])
    assert (row["actor"], row["action"]) == ("test", "import")
    assert detail["counts"]["devices"]["inserted"] == 3
    assert set(detail["sha256"]) == {str(tiny_dir / n) for n in os.listdir(tiny_dir)}


async def _snapshot(dsn: str) -> Registry:
    conn = await asyncpg.connect(dsn)
    try:
        return await load_registry(conn)
    finally:
        await conn.close()


async def test_snapshot_matches_the_generated_district(pg_dsn: str) -> None:
    await import_registry(pg_dsn, SAMPLE_DIR)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        snap = await load_registry(pool)
    finally:
        await pool.close()
    t = generate().tables
    assert len(snap.devices) == len(t["devices"])
    for row in t["devices"]:
        assert snap.devices[row["id"]] == Device(**row)
    contacts: dict[str, list[Contact]] = {}
    for c in t["site_contacts"]:
        contacts.setdefault(c["site_id"], []).append(Contact(c["name"], c["role"], c["phone"]))
    for row in t["sites"]:
        site = snap.sites[row["id"]]
        assert (site.township_id, site.village_id, site.lon, site.lat) == (
            row["township_id"],
            row["village_id"],
            row["lon"],
            row["lat"],
        )
        assert (site.critical, site.covering_leader_id, site.gas_alarm_required) == (
            row["critical"],
            row["covering_leader_id"],
            row["gas_alarm_required"],
        )
        assert sorted(site.contacts, key=lambda c: c.phone) == sorted(
            contacts[row["id"]], key=lambda c: c.phone
        )
        assert site.covering_leader_id is None or site.covering_leader_id in snap.leaders
    # every detector hangs off the fire panel of its own site
    for parent, kids in snap.children.items():
        assert snap.devices[parent].model == "FN-JB5000"
        assert all(snap.devices[k].site_id == snap.devices[parent].site_id for k in kids)
    assert sum(map(len, snap.children.values())) == sum(1 for d in t["devices"] if d["parent_id"])
    # lookups the other stages use
    dev = next(d for d in snap.devices.values() if d.domain == "elevator")
    assert snap.site_of(dev.id) is snap.sites[dev.site_id]
    assert snap.device("no-such-device") is None and snap.site_of("no-such-device") is None
    assert snap.expected_interval_s(dev.id) == 30
    assert snap.vendors_by_username["liftlink"].adapter == "elevator_json"
    assert {v.adapter for v in snap.vendors.values()} == {
        "gasjson",
        "elevator_json",
        "gbt26875",
        "senml",
        "hazmon_json",
    }
    assert set(snap.site_devices) <= set(snap.sites)
    assert sum(map(len, snap.site_devices.values())) == len(snap.devices)
    elderly = next(s for s in snap.sites.values() if s.industry == "养老")
    assert {r.id for r in snap.rules_for("fire", elderly.industry)} == {"fire", "fire-elderly"}
    assert snap.villages[elderly.village_id].township_id == elderly.township_id


async def test_export_round_trips_byte_for_byte(pg_dsn: str, tmp_path: Path) -> None:
    await import_registry(pg_dsn, SAMPLE_DIR)
    counts = await export_registry(pg_dsn, tmp_path / "out")
    assert counts["devices"] == generate().count("devices")
    for f in sorted(SAMPLE_DIR.iterdir()):
        assert (tmp_path / "out" / f.name).read_bytes() == f.read_bytes(), f.name


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAZMON_POSTGRES__DSN": dsn}
    env.pop("HAZMON_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "registry", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def test_cli_import_reports_every_bad_row_and_exits_2(pg_dsn: str, tiny_dir: Path) -> None:
    set_line(tiny_dir / "devices.csv", 2, "gas-1,acme-gas,AG-GD200,gass,S1,60,2023-02-30,,true")
    set_line(tiny_dir / "site_contacts.csv", 3, "S2,李四,主要负责人,1234")
    proc = _cli(pg_dsn, "import", str(tiny_dir))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if " INFO " not in ln]
    assert lines == [
        f"{tiny_dir}/site_contacts.csv:3: phone: invalid mobile number '1234' (expected 11 digits 1[3-9]xxxxxxxxx)",
        f"{tiny_dir}/devices.csv:2: installed_on: invalid date '2023-02-30' (expected YYYY-MM-DD)",
        f"{tiny_dir}/devices.csv:2: domain: unknown domain 'gass' (not in domains)",
        "hazmon: registry import refused: 3 error(s), nothing loaded",
    ]
    assert (await _counts(pg_dsn))["devices"] == 0
    good = _cli(pg_dsn, "import", str(SAMPLE_DIR))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("loaded: domains 8 (+8")


async def test_unreadable_input_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as info:
        await import_registry("postgresql://postgres@127.0.0.1:1/unreachable", tmp_path / "nope.yaml")
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path}/nope.yaml:0: (file): no such file or directory"
    ]


async def test_yaml_form_of_the_sample_loads_the_same_rows(pg_dsn: str, tmp_path: Path) -> None:
    import yaml

    t = generate().tables
    contacts: dict[str, list[dict]] = {}
    for c in t["site_contacts"]:
        contacts.setdefault(c["site_id"], []).append(
            {"name": c["name"], "role": c["role"], "phone": c["phone"]}
        )
    doc = {
        "version": 1,
        **{
            k: t[k]
            for k in ("domains", "townships", "villages", "departments", "leaders", "vendors", "maintainers",
                      "devices")
        },
        "sites": [{**s, "contacts": contacts[s["id"]]} for s in t["sites"]],
        "matrix": t["matrix_rules"],
    }
    path = tmp_path / "district.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # the 辖区边界 are a GeoJSON file of their own, beside the YAML
    report = await import_registry(pg_dsn, [path, SAMPLE_DIR / "boundaries.geojson"])
    assert [w for w in report.warnings if "only a voice call reaches it" not in w.problem] == []
    await export_registry(pg_dsn, tmp_path / "out")
    for f in sorted(SAMPLE_DIR.iterdir()):
        assert (tmp_path / "out" / f.name).read_bytes() == f.read_bytes(), f.name
