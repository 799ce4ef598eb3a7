"""电梯维保单位 in the registry: a maintenance company with its duty contacts, linked to lifts;
bad rows refused with ``file:line``; the reach report names a company no SMS reaches; the
import and the snapshot carry the link (real PostgreSQL for the import)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import SAMPLE_DIR, set_line

from hazmon.errors import RegistryError
from hazmon.registry import check, import_registry, load_registry, read_sources

MAINTAINERS = """id,name,duty_name,duty_phone,duty_mobile
M1,杭州钱江电梯工程有限公司,钱江电梯应急救援值班,0571-86050001,13957300001
M2,杭州恒安电梯维修保养有限公司,恒安电梯维保调度,0571-86050002,
"""
LIFTS = """id,vendor_id,model,domain,site_id,expected_interval_s,installed_on,parent_id,active,location,reg_code,maintainer_id
gas-1,acme-gas,AG-GD200,gas,S1,60,2023-05-01,,true,后厨灶台上方,,
elv-1,liftlink,LL-EB3,elevator,S2,30,2022-02-07,,true,1号楼 1号梯,31103301152017432274,M1
elv-2,liftlink,LL-EB3,elevator,S2,30,2022-02-07,,true,1号楼 2号梯,,M1
"""


@pytest.fixture
def lift_dir(tiny_dir: Path) -> Path:
    (tiny_dir / "maintainers.csv").write_text(MAINTAINERS, encoding="utf-8")
    (tiny_dir / "devices.csv").write_text(LIFTS, encoding="utf-8")
    with (tiny_dir / "vendors.csv").open("a", encoding="utf-8") as f:
        f.write("liftlink,联梯物联,elevator_json,liftlink\n")
    (tiny_dir / "domains.csv").write_text("name,name_zh,default_interval_s\ngas,燃气,60\nfire,消防,300\n"
                                          "elevator,电梯,30\n", encoding="utf-8")
    with (tiny_dir / "matrix.csv").open("a", encoding="utf-8") as f:
        f.write("elevator,elevator,yj,L1,特种设备安全专委会,,\n")
    return tiny_dir


def problems(d: Path) -> tuple[list[str], list[str]]:
    errors, warnings, _plan = check(read_sources([d]), {})
    return [str(e).replace(str(d) + "/", "") for e in errors], [str(w).replace(str(d) + "/", "") for w in warnings]


def test_lifts_with_their_maintenance_company_are_clean(lift_dir: Path) -> None:
    assert problems(lift_dir) == ([], [])


@pytest.mark.parametrize(("file", "line", "text", "expected"), [
    pytest.param("devices.csv", 3,
                 "elv-1,liftlink,LL-EB3,elevator,S2,30,2022-02-07,,true,1号楼 1号梯,,M9",
                 "devices.csv:3: maintainer_id: unknown maintenance company (维保单位) 'M9' (not in maintainers)",
                 id="unknown-company"),
    pytest.param("maintainers.csv", 2, "M1,杭州钱江电梯工程有限公司,值班,0571-8605,13957300001",
                 "maintainers.csv:2: duty_phone: invalid phone number '0571-8605' (expected a mobile number or a"
                 " landline such as 0571-87654321)", id="malformed-duty-phone"),
    pytest.param("maintainers.csv", 3, "M2,杭州恒安电梯维修保养有限公司,调度,0571-86050002,1395730000",
                 "maintainers.csv:3: duty_mobile: invalid mobile number '1395730000' (expected 11 digits"
                 " 1[3-9]xxxxxxxxx)", id="malformed-duty-mobile"),
    pytest.param("devices.csv", 2, "gas-1,acme-gas,AG-GD200,gas,S1,60,2023-05-01,,true,后厨灶台上方,,M1",
                 "devices.csv:2: maintainer_id: a maintenance company (维保单位) is for lifts only, not domain 'gas'",
                 id="not-a-lift"),
])
def test_bad_rows_are_refused_with_file_and_line(lift_dir: Path, file: str, line: int, text: str,
                                                 expected: str) -> None:
    set_line(lift_dir / file, line, text)
    errors, _warnings = problems(lift_dir)
    print("\n".join(errors))
    assert expected in errors, errors


def test_a_company_only_a_call_reaches_is_a_warning_naming_its_lifts(lift_dir: Path) -> None:
    set_line(lift_dir / "devices.csv", 4, "elv-2,liftlink,LL-EB3,elevator,S2,30,2022-02-07,,true,1号楼 2号梯,,M2")
    errors, warnings = problems(lift_dir)
    print("\n".join(warnings))
    assert errors == []
    assert warnings == ["maintainers.csv:3: duty_phone: warning: maintenance company 'M2' (杭州恒安电梯维修保养有限公司)"
                        " as maintenance company (维保单位) of 1 lift(s): only a voice call reaches it (landline-only:"
                        " no duty mobile, no group robot; no SMS)"]


def test_yaml_lifts_and_companies_give_yaml_lines(tmp_path: Path) -> None:
    doc = tmp_path / "lifts.yaml"
    doc.write_text("""maintainers:
  - {id: M1, name: 杭州钱江电梯工程有限公司, duty_phone: "0571-8605"}
devices:
  - id: elv-1
    vendor_id: liftlink
    domain: elevator
    site_id: S2
    maintainer_id: M7
""", encoding="utf-8")
    errors, _w, _p = check(read_sources([doc]), {})
    shown = [str(e).replace(str(tmp_path) + "/", "") for e in errors]
    print("\n".join(shown))
    assert "lifts.yaml:2: duty_phone: invalid phone number '0571-8605' (expected a mobile number or a landline" \
           " such as 0571-87654321)" in shown
    assert "lifts.yaml:8: maintainer_id: unknown maintenance company (维保单位) 'M7' (not in maintainers)" in shown


async def test_import_refuses_an_unknown_company_and_loads_the_sample_links(pg_dsn: str, lift_dir: Path) -> None:
    set_line(lift_dir / "devices.csv", 3, "elv-1,liftlink,LL-EB3,elevator,S2,30,2022-02-07,,true,1号楼 1号梯,,M9")
    with pytest.raises(RegistryError) as err:
        await import_registry(pg_dsn, lift_dir)
    assert any(e.field == "maintainer_id" and e.line == 3 for e in err.value.errors)
    report = await import_registry(pg_dsn, SAMPLE_DIR)
    assert report.counts["maintainers"].inserted == 3
    import asyncpg

    conn = await asyncpg.connect(pg_dsn)
    try:
        reg = await load_registry(conn)
    finally:
        await conn.close()
    lifts = [d for d in reg.devices.values() if d.domain == "elevator"]
    assert lifts and all(d.maintainer_id in reg.maintainers for d in lifts)
    company = reg.maintainer_of("elv-00001")
    assert company is not None and company.name.endswith("有限公司") and company.duty_mobile
    assert reg.maintainer_of("gas-00001") is None
