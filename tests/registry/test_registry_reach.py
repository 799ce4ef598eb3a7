"""Channels of the duty rooms (触达, issue 13) on real PostgreSQL: the import warns, with file:line,
about every matrix role only a voice call (or nothing) reaches and counts them; an unknown channel
or a malformed number is an import error with file:line and nothing is loaded; the snapshot and
the export carry the channels."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import SAMPLE_DIR, set_line, table_checksums

from hazmon.db import connect
from hazmon.errors import RegistryError
from hazmon.registry import duty_channels, export_registry, import_registry, load_registry

VOICE_ONLY = "only a voice call reaches it (landline-only: no duty mobile, no group robot; no SMS)"


async def test_sample_import_warns_of_every_landline_only_role_with_file_line(pg_dsn: str) -> None:
    report = await import_registry(pg_dsn, SAMPLE_DIR)
    got = [str(w) for w in report.warnings]
    t, d = SAMPLE_DIR / "townships.csv", SAMPLE_DIR / "departments.csv"
    # the landline-only townships (桂溪镇 T03, 云栖街道 T04): 属地 of every site in them
    assert got[:2] == [
        f"{t}:4: duty_phone: warning: township 'T03' (桂溪镇) as township (属地) of 65 site(s): {VOICE_ONLY}",
        f"{t}:5: duty_phone: warning: township 'T04' (云栖街道) as township (属地) of 65 site(s): {VOICE_ONLY}",
    ]
    assert (f"{d}:8: duty_phone: warning: department 'mz' (区民政局（民政部门）) as department (行业监管) of "
            f"matrix rule(s) fire-elderly, gas-elderly: {VOICE_ONLY}") in got
    # those with a duty mobile or a robot (住建 zj, 市监 sj, 应急 yj, 消防 xf, T01, T02) are not named
    for unit in ("'T01'", "'T02'", "'zj'", "'sj'", "'yj'", "'xf'", "'aw'"):
        assert not [w for w in got if unit in w], unit
    assert len(got) == 11 and all(VOICE_ONLY in w for w in got)
    assert report.summary().endswith("; 11 warning(s)")


async def test_snapshot_and_export_carry_the_channels(pg_dsn: str, tmp_path: Path) -> None:
    await import_registry(pg_dsn, SAMPLE_DIR)
    conn = await connect(pg_dsn)
    try:
        snap = await load_registry(conn)
    finally:
        await conn.close()
    t01, t03, zj = snap.townships["T01"], snap.townships["T03"], snap.departments["zj"]
    assert [c for c, _a in duty_channels(vars_of(t01))] == ["voice", "sms", "wecom"]
    assert [c for c, _a in duty_channels(vars_of(t03))] == ["voice"]
    assert (zj.duty_mobile, zj.robot, zj.robot_secret) == ("13957200001", "dingtalk", "SEC-sample-zj-0001")
    await export_registry(pg_dsn, tmp_path / "out")
    for name in ("townships.csv", "departments.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (SAMPLE_DIR / name).read_bytes()


def vars_of(unit: object) -> dict[str, object]:
    return {f: getattr(unit, f) for f in ("duty_phone", "duty_mobile", "robot", "robot_url")}


@pytest.mark.parametrize(
    ("file", "line", "text", "expected"),
    [
        pytest.param("townships.csv", 2, "T1,临江街道,街道,临江街道应急值班室,0571-86010001,1395710000",
                     "townships.csv:2: duty_mobile: invalid mobile number '1395710000' (expected 11 digits "
                     "1[3-9]xxxxxxxxx)", id="malformed-duty-mobile"),
        pytest.param("departments.csv", 2, "zj,区住建局,值班室,0571-8603,13957200001",
                     "departments.csv:2: duty_phone: invalid phone number '0571-8603' (expected a mobile number "
                     "or a landline such as 0571-87654321)", id="malformed-landline"),
    ],
)
async def test_a_malformed_number_is_an_import_error_and_nothing_loads(
    pg_dsn: str, tiny_dir: Path, file: str, line: int, text: str, expected: str
) -> None:
    before = await table_checksums(pg_dsn)
    set_line(tiny_dir / file, line, text)
    with pytest.raises(RegistryError) as exc:
        await import_registry(pg_dsn, tiny_dir)
    assert [str(e) for e in exc.value.errors] == [f"{tiny_dir}/{expected}"]
    assert await table_checksums(pg_dsn) == before


async def test_an_unknown_channel_is_an_import_error_with_its_line(pg_dsn: str, tiny_dir: Path) -> None:
    (tiny_dir / "townships.csv").write_text(
        "id,name,kind,duty_name,duty_phone,duty_mobile,robot,robot_url\n"
        "T1,临江街道,街道,临江街道应急值班室,0571-86010001,13957100001,feishu,https://open.feishu.cn/hook/x\n",
        encoding="utf-8")
    (tiny_dir / "departments.csv").write_text(
        "id,name,duty_name,duty_phone,duty_mobile,robot,robot_url,robot_secret\n"
        "zj,区住建局,值班室,0571-86030001,,dingtalk,,SEC1\n"
        "yj,区应急管理局,值班室,13900000102,,,,SEC2\n",
        encoding="utf-8")
    with pytest.raises(RegistryError) as exc:
        await import_registry(pg_dsn, tiny_dir)
    assert [str(e) for e in exc.value.errors] == [
        f"{tiny_dir}/townships.csv:2: robot: unknown channel 'feishu' (expected wecom or dingtalk)",
        f"{tiny_dir}/departments.csv:2: robot_url: required for robot 'dingtalk'",
        f"{tiny_dir}/departments.csv:3: robot: required when robot_url or robot_secret is given "
        "(wecom or dingtalk)",
    ]


async def test_a_landline_only_township_is_a_warning_and_a_duty_mobile_clears_it(
    pg_dsn: str, tiny_dir: Path
) -> None:
    set_line(tiny_dir / "townships.csv", 2, "T1,临江街道,街道,临江街道应急值班室,0571-86010001,")
    report = await import_registry(pg_dsn, tiny_dir, dry_run=True)
    assert [str(w) for w in report.warnings] == [
        f"{tiny_dir}/townships.csv:2: duty_phone: warning: township 'T1' (临江街道) as township (属地) of "
        f"2 site(s): {VOICE_ONLY}"]
    with pytest.raises(RegistryError):  # --strict: a warning is an error
        await import_registry(pg_dsn, tiny_dir, strict=True)
    set_line(tiny_dir / "townships.csv", 2, "T1,临江街道,街道,临江街道应急值班室,0571-86010001,13957100001")
    assert (await import_registry(pg_dsn, tiny_dir)).warnings == []
