"""Every class of bad registry input gives its exact ``file:line: field: problem`` line.

These run the whole validation (:func:`hazmon.registry.check`) against an empty
database; test_registry_db.py shows the same errors stop a real import with nothing loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import set_line

from hazmon.registry import check, read_sources


def problems(
    *paths: Path, existing: dict | None = None, replace: bool = False
) -> tuple[list[str], list[str]]:
    errors, warnings, _plan = check(read_sources(list(paths)), existing or {}, replace=replace)
    return [str(e) for e in errors], [str(w) for w in warnings]


def test_tiny_district_is_clean(tiny_dir: Path) -> None:
    assert problems(tiny_dir) == ([], [])


# (file, line, new text or None to delete, expected errors as {file}:line: field: problem)
CASES = [
    pytest.param(
        "devices.csv",
        2,
        "gas-1,acme-gas,AG-GD200,gass,S1,60,2023-05-01,,true",
        ["devices.csv:2: domain: unknown domain 'gass' (not in domains)"],
        id="unknown-domain",
    ),
    pytest.param(
        "devices.csv",
        3,
        "gas-1,firenet,FN-JB5000,fire,S2,300,2022-01-10,,true",
        [
            "devices.csv:3: id: duplicate id 'gas-1' (first at {d}/devices.csv:2)",
            "devices.csv:4: parent_id: unknown parent device 'fpnl-1'",
        ],
        id="duplicate-device-id",
    ),
    pytest.param(
        "sites.csv",
        2,
        "S1,老王面馆,江滨路1号,餐饮,restaurant,T9,V1,120.15,30.25,true,false,",
        [
            "sites.csv:2: township_id: unknown township 'T9'",
            "devices.csv:2: site_id: site 'S1' is in no township (its township 'T9' is unknown)",
        ],
        id="unknown-township-and-device-in-no-township",
    ),
    pytest.param(
        "sites.csv",
        2,
        "S1,老王面馆,江滨路1号,餐饮,restaurant,,V1,120.15,30.25,true,false,",
        [
            "sites.csv:2: township_id: required",
            "devices.csv:2: site_id: site 'S1' is in no township (township_id missing)",
        ],
        id="site-without-township",
    ),
    pytest.param(
        "sites.csv",
        2,
        "S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V9,120.15,30.25,true,false,",
        ["sites.csv:2: village_id: unknown village 'V9'"],
        id="unknown-village",
    ),
    pytest.param(
        "villages.csv",
        2,
        "V1,T2,江滨社区,社区,王芳,13900000101",
        ["villages.csv:2: township_id: unknown township 'T2'"],
        id="village-unknown-township",
    ),
    pytest.param(
        "devices.csv",
        2,
        "gas-1,acme-gas,AG-GD200,gas,S9,60,2023-05-01,,true",
        ["devices.csv:2: site_id: unknown site 'S9'"],
        id="unknown-site",
    ),
    pytest.param(
        "devices.csv",
        2,
        "gas-1,nobody,AG-GD200,gas,S1,60,2023-05-01,,true",
        ["devices.csv:2: vendor_id: unknown vendor 'nobody'"],
        id="unknown-vendor",
    ),
    pytest.param(
        "sites.csv",
        3,
        "S2,江滨养老院,江滨路2号,养老,elderly_home,T1,V1,120.16,30.26,true,true,L9",
        ["sites.csv:3: covering_leader_id: unknown leader 'L9'"],
        id="unknown-covering-leader",
    ),
    pytest.param(
        "matrix.csv",
        2,
        "gas,gas,zj;xx,L1,城市运行安全专委会,,",
        ["matrix.csv:2: department_ids[1]: unknown department 'xx'"],
        id="unknown-department",
    ),
    pytest.param(
        "matrix.csv",
        3,
        "fire,fire,yj,L7,消防安全专委会,,",
        ["matrix.csv:3: leader_id: unknown leader 'L7'"],
        id="matrix-unknown-leader",
    ),
    pytest.param(
        "site_contacts.csv",
        2,
        "S1,王五,主要负责人,1390000010",
        [
            "site_contacts.csv:2: phone: invalid mobile number '1390000010' (expected 11 digits 1[3-9]xxxxxxxxx)"
        ],
        id="short-mobile",
    ),
    pytest.param(
        "site_contacts.csv",
        2,
        "S1,王五,主要负责人,0571-86010001",
        [
            "site_contacts.csv:2: phone: invalid mobile number '0571-86010001' (expected 11 digits 1[3-9]xxxxxxxxx)"
        ],
        id="landline-is-not-sms-reachable",
    ),
    pytest.param(
        "villages.csv",
        2,
        "V1,T1,江滨社区,社区,王芳,12900000101",
        [
            "villages.csv:2: grid_member_phone: invalid mobile number '12900000101' (expected 11 digits 1[3-9]xxxxxxxxx)"
        ],
        id="grid-member-bad-prefix",
    ),
    pytest.param(
        "townships.csv",
        2,
        "T1,临江街道,街道,临江街道应急值班室,8601-0001",
        [
            "townships.csv:2: duty_phone: invalid phone number '8601-0001' "
            "(expected a mobile number or a landline such as 0571-87654321)"
        ],
        id="duty-phone-garbage",
    ),
    pytest.param(
        "sites.csv",
        2,
        "S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V1,120.15,95,true,false,",
        ["sites.csv:2: lat: 95 out of range [-90, 90]"],
        id="lat-out-of-range",
    ),
    pytest.param(
        "sites.csv",
        2,
        "S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V1,200.5,30.25,true,false,",
        ["sites.csv:2: lon: 200.5 out of range [-180, 180]"],
        id="lon-out-of-range",
    ),
    pytest.param(
        "sites.csv",
        2,
        "S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V1,120.15,,true,false,",
        ["sites.csv:2: lat: required when lon is given"],
        id="half-a-coordinate",
    ),
    pytest.param(
        "devices.csv",
        2,
        "gas-1,acme-gas,AG-GD200,gas,S1,60,2023-02-30,,true",
        ["devices.csv:2: installed_on: invalid date '2023-02-30' (expected YYYY-MM-DD)"],
        id="impossible-date",
    ),
    pytest.param(
        "devices.csv",
        2,
        "gas-1,acme-gas,AG-GD200,gas,S1,60,01/05/2023,,true",
        ["devices.csv:2: installed_on: invalid date '01/05/2023' (expected YYYY-MM-DD)"],
        id="date-format",
    ),
    pytest.param(
        "devices.csv",
        2,
        "gas-1,acme-gas,AG-GD200,gas,S1,0,2023-05-01,,maybe",
        [
            "devices.csv:2: expected_interval_s: Input should be greater than 0",
            "devices.csv:2: active: invalid boolean 'maybe' (expected true/false, yes/no, 1/0, 是/否)",
        ],
        id="every-problem-of-a-row",
    ),
    pytest.param(
        "matrix.csv",
        2,
        "gas,gas,,L1,城市运行安全专委会,,",
        [
            "matrix.csv:2: department_ids: at least one department required (三管三必须: every domain needs a regulator)"
        ],
        id="matrix-rule-without-department",
    ),
    pytest.param(
        "matrix.csv",
        2,
        None,
        [
            "domains.csv:2: name: no matrix rule covers domain 'gas' (三管三必须: its alarms would reach no department)"
        ],
        id="domain-no-department-covers",
    ),
    pytest.param(
        "matrix.csv",
        3,
        "fire,firefighting,yj,L1,消防安全专委会,,",
        [
            "matrix.csv:3: domain: unknown domain 'firefighting' (not in domains)",
            "domains.csv:3: name: no matrix rule covers domain 'fire' (三管三必须: its alarms would reach no department)",
        ],
        id="matrix-unknown-domain",
    ),
    pytest.param(
        "devices.csv",
        3,
        "fpnl-1,firenet,FN-JB5000,fire,S2,300,2022-01-10,smk-1,true",
        [
            "devices.csv:3: parent_id: parent chain loops back: fpnl-1 → smk-1 → fpnl-1",
            "devices.csv:4: parent_id: parent chain loops back: smk-1 → fpnl-1 → smk-1",
        ],
        id="parent-loop",
    ),
    pytest.param(
        "devices.csv",
        4,
        "smk-1,firenet,FN-JTY-GD,fire,S2,,2022-01-10,smk-1,true",
        ["devices.csv:4: parent_id: a device cannot be its own parent"],
        id="own-parent",
    ),
    pytest.param(
        "vendors.csv",
        3,
        "firenet,消防网联,gbt26875,acme-gas",
        ["vendors.csv:3: mqtt_username: mqtt_username 'acme-gas' already used by vendor 'acme-gas'"],
        id="shared-mqtt-username",
    ),
    pytest.param(
        "site_contacts.csv",
        3,
        "S1,李四,安全员,13900000104",
        [
            "site_contacts.csv:3: phone: duplicate contact phone '13900000104' (first at {d}/site_contacts.csv:2)"
        ],
        id="duplicate-contact",
    ),
    pytest.param(
        "devices.csv",
        1,
        "id,vendor_id,model,domain,site_id,interval,installed_on,parent_id,active",
        [
            "devices.csv:1: interval: unknown column (expected id, vendor_id, model, domain, site_id, "
            "expected_interval_s, installed_on, parent_id, active, location, reg_code, maintainer_id, is_canary)"
        ],
        id="unknown-column",
    ),
    pytest.param(
        "devices.csv",
        2,
        "gas-1,acme-gas,AG-GD200,gas,S1,60,2023-05-01,,true,extra",
        ["devices.csv:2: (row): 10 cells but 9 columns"],
        id="too-many-cells",
    ),
]


# Vendor identifiers end up in the MQTT ACL and password file (``hazmon mqtt-auth``): anything
# that is not an identifier is refused here, so it never reaches them (issue 17, ACL injection).
CASES += [
    pytest.param(
        "vendors.csv",
        2,
        "acme gas,安可,gasjson,acme-gas",
        [
            "vendors.csv:2: id: invalid identifier 'acme gas' (lower-case letters, digits, '-' and '_' only)",
            "devices.csv:2: vendor_id: unknown vendor 'acme-gas'",
        ],
        id="vendor-id-with-space",
    ),
    pytest.param(
        "vendors.csv",
        2,
        "acme#,安可,gasjson,acme-gas",
        [
            "vendors.csv:2: id: invalid identifier 'acme#' (lower-case letters, digits, '-' and '_' only)",
            "devices.csv:2: vendor_id: unknown vendor 'acme-gas'",
        ],
        id="vendor-id-with-hash",
    ),
    pytest.param(
        "vendors.csv",
        2,
        "acme-gas,安可,gasjson,acme+gas",
        ["vendors.csv:2: mqtt_username: invalid MQTT user name 'acme+gas' (letters, digits, '.', '-' and '_' only)"],
        id="mqtt-username-with-plus",
    ),
    pytest.param(
        "vendors.csv",
        2,
        "acme-gas,安可,gasjson,hazmon-bridge-9",
        ["vendors.csv:2: mqtt_username: 'hazmon-bridge-9' is reserved: 'hazmon-' names the project's own accounts"],
        id="mqtt-username-reserved",
    ),
    pytest.param(
        "vendors.csv",
        2,
        '"acme-gas","安可\ttopic read #",gasjson,acme-gas',
        ["vendors.csv:2: name: control character U+0009 not allowed"],
        id="vendor-name-with-control-character",
    ),
]


def test_vendor_name_with_newline_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "vendors.yaml"
    doc.write_text(
        "vendors:\n"
        "  - id: acme-gas\n"
        '    name: "安可\\ntopic read #"\n'
        "    adapter: gasjson\n"
        "    mqtt_username: acme-gas\n"
        '  - {id: "gas\\nco", name: 燃气宝, adapter: gasjson, mqtt_username: "gasco\\ntopic"}\n',
        encoding="utf-8",
    )
    errors, _ = problems(doc)
    assert errors == [
        f"{doc}:3: name: control character U+000A not allowed",
        f"{doc}:6: id: invalid identifier 'gas\\nco' (lower-case letters, digits, '-' and '_' only)",
        f"{doc}:6: mqtt_username: invalid MQTT user name 'gasco\\ntopic' (letters, digits, '.', '-' and '_' only)",
    ]


@pytest.mark.parametrize(("file", "line", "text", "expected"), CASES)
def test_bad_row_reports_exact_line(
    tiny_dir: Path, file: str, line: int, text: str | None, expected: list[str]
) -> None:
    set_line(tiny_dir / file, line, text)
    errors, _warnings = problems(tiny_dir)
    assert errors == [f"{tiny_dir}/{e.format(d=tiny_dir)}" for e in expected]


def test_duplicate_id_across_files(tiny_dir: Path, tmp_path: Path) -> None:
    extra = tmp_path / "more.yaml"
    extra.write_text(
        "devices:\n"
        "  - id: gas-2\n"
        "    vendor_id: acme-gas\n"
        "    domain: gas\n"
        "    site_id: S1\n"
        "  - id: gas-1\n"
        "    vendor_id: acme-gas\n"
        "    domain: gas\n"
        "    site_id: S1\n",
        encoding="utf-8",
    )
    errors, _ = problems(tiny_dir, extra)
    assert errors == [f"{extra}:6: id: duplicate id 'gas-1' (first at {tiny_dir}/devices.csv:2)"]


def test_site_without_contacts_is_a_warning(tiny_dir: Path) -> None:
    set_line(tiny_dir / "site_contacts.csv", 2, None)
    errors, warnings = problems(tiny_dir)
    assert errors == []
    assert warnings == [
        f"{tiny_dir}/sites.csv:2: contacts: warning: site 'S1' has no contacts "
        "(企业主体责任: the business cannot be reached by SMS)"
    ]


def test_other_warnings(tiny_dir: Path) -> None:
    set_line(
        tiny_dir / "sites.csv", 3, "S2,江滨养老院,江滨路2号,养老,elderly_home,T1,V1,120.16,30.26,true,true,"
    )
    set_line(tiny_dir / "vendors.csv", 3, "firenet,消防网联,gbt26875_v2,firenet")
    set_line(tiny_dir / "devices.csv", 4, "smk-1,firenet,FN-JTY-GD,fire,S1,,2022-01-10,fpnl-1,true")
    errors, warnings = problems(tiny_dir)
    assert errors == []
    d = tiny_dir
    assert warnings == [
        f"{d}/vendors.csv:3: adapter: warning: adapter 'gbt26875_v2' is not one ingest ships "
        "(elevator_json, firejson, gasjson, gbt26875, hazmon_json, senml)",
        f"{d}/devices.csv:4: parent_id: warning: parent 'fpnl-1' is at site 'S2', not 'S1'",
        f"{d}/sites.csv:3: covering_leader_id: warning: critical site 'S2' (不放心点位) has no covering leader (包保领导)",
    ]


@pytest.mark.parametrize("adapter", ["firejson", "gbt26875", "senml", "hazmon_json", "gasjson", "elevator_json"])
def test_a_shipped_adapter_is_no_warning(tiny_dir: Path, adapter: str) -> None:
    """Every adapter ingest ships is known to the registry (issue 16: firejson was missing)."""
    set_line(tiny_dir / "vendors.csv", 3, f"firenet,消防网联,{adapter},firenet")
    assert problems(tiny_dir) == ([], [])


def test_yaml_lines_point_at_the_field(tmp_path: Path) -> None:
    doc = tmp_path / "district.yaml"
    doc.write_text(
        """\
domains:
  - {name: gas, name_zh: 燃气}
townships:
  - id: T1
    name: 临江街道
    kind: 街道
    duty_name: 值班室
    duty_phone: '13957100001'
departments:
  - {id: zj, name: 住建, duty_phone: '13900000001'}
vendors:
  - {id: acme-gas, name: 安可, adapter: gasjson, mqtt_username: acme-gas}
sites:
  - id: S1
    name: 老王面馆
    township_id: T1
    lat: 30.2
    lon: 120.1
    contacts:
      - {name: 王五, phone: 13900000104}
      - name: 李四
        phone: 1390000
devices:
  - id: gas-1
    vendor_id: acme-gas
    domain: gas
    site_id: S1
    installed_on: 2023-02-30
matrix:
  - id: gas
    domain: gas
    department_ids: [zj]
""",
        encoding="utf-8",
    )
    errors, warnings = problems(doc)
    assert errors == [
        f"{doc}:22: contacts[1].phone: invalid mobile number '1390000' (expected 11 digits 1[3-9]xxxxxxxxx)",
        f"{doc}:28: installed_on: invalid date '2023-02-30' (expected YYYY-MM-DD)",
    ]
    assert warnings == []


def test_yaml_structure_errors(tmp_path: Path) -> None:
    doc = tmp_path / "bad.yaml"
    doc.write_text(
        "version: 2\nsites:\n  - id: S1\n    id: S2\nstreets: []\ndevices: {id: x}\n", encoding="utf-8"
    )
    errors, _ = problems(doc)
    assert errors[:4] == [
        f"{doc}:4: id: duplicate key",
        f"{doc}:1: version: unsupported version 2 (this hazmon reads 1)",
        f"{doc}:5: streets: unknown table (expected one of domains, townships, villages, departments, "
        "leaders, vendors, maintainers, sites, site_contacts, devices, matrix, components)",
        f"{doc}:6: devices: must be a list of rows",
    ]
    bad = tmp_path / "syntax.yaml"
    bad.write_text("sites:\n  - id: [S1\n", encoding="utf-8")
    errors, _ = problems(bad)
    assert len(errors) == 1 and errors[0].startswith(f"{bad}:3: (file): not valid YAML")


def test_unknown_file_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "streets.csv").write_text("id\nx\n", encoding="utf-8")
    errors, _ = problems(tmp_path, tmp_path / "nope")
    assert errors[0].startswith(f"{tmp_path}/streets.csv:1: (file): unknown table file")
    assert errors[1] == f"{tmp_path}/nope:0: (file): no such file or directory"


def test_csv_line_numbers_survive_multiline_cells(tiny_dir: Path) -> None:
    (tiny_dir / "sites.csv").write_text(
        'id,name,address,township_id\nS1,"老王\n面馆","江滨路\n1号",T1\nS2,江滨养老院,江滨路2号,T1,extra\n',
        encoding="utf-8",
    )
    errors, _ = problems(tiny_dir)
    # the S1 record spans lines 2-4 (two quoted newlines), so S2 is on line 5
    assert f"{tiny_dir}/sites.csv:5: (row): 5 cells but 4 columns" in errors


def test_village_of_another_township(tiny_dir: Path) -> None:
    with (tiny_dir / "townships.csv").open("a", encoding="utf-8") as f:
        f.write("T2,青山镇,镇,青山镇应急值班室,0571-86010002\n")
    with (tiny_dir / "villages.csv").open("a", encoding="utf-8") as f:
        f.write("V2,T2,青山村,村,李强,13900000106\n")
    set_line(
        tiny_dir / "sites.csv", 2, "S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V2,120.15,30.25,true,false,"
    )
    errors, _ = problems(tiny_dir)
    assert errors == [f"{tiny_dir}/sites.csv:2: village_id: village 'V2' belongs to township 'T2', not 'T1'"]


def test_duplicate_contact_after_normalisation(tiny_dir: Path) -> None:
    set_line(tiny_dir / "site_contacts.csv", 3, "S1,李四,安全员,139 0000 0104")
    errors, _ = problems(tiny_dir)
    assert errors == [
        f"{tiny_dir}/site_contacts.csv:3: phone: duplicate '13900000104' (first at {tiny_dir}/site_contacts.csv:2)"
    ]
