"""A fire device's components (部件, GB/T 26875.3-2011 §8.2 部件地址) in the registry: loaded from
``components.csv`` or inline under a device in YAML, refused at load with the row's path when a
field is bad, a device's list replaced as a whole, in the snapshot by address (real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmon.errors import RegistryError
from hazmon.registry import Component, check, export_registry, import_registry, load_registry, read_sources
from hazmon.registry._import import _connection

HEADER = "device_id,sys_type,sys_addr,comp_type,loop,point,description\n"
PANEL = HEADER + "fpnl-1,1,1,21,1,23,3F 东侧走廊 感烟\nfpnl-1,1,1,23,2,5,3F 楼梯间 手报\n"


def _errors(*paths: Path) -> list[str]:
    errors, _warnings, _plan = check(read_sources(list(paths)), {})
    return [str(e) for e in errors]


async def _parts(dsn: str) -> dict[str, dict[str, Component]]:
    async with _connection(dsn) as conn:
        return {k: dict(v) for k, v in (await load_registry(conn)).components.items()}


async def test_components_load_into_the_snapshot_by_address(pg_dsn: str, tiny_dir: Path) -> None:
    (tiny_dir / "components.csv").write_text(PANEL, encoding="utf-8")
    report = await import_registry(pg_dsn, tiny_dir)
    assert report.counts["device_components"].inserted == 2
    parts = await _parts(pg_dsn)
    assert list(parts) == ["fpnl-1"]  # smk-1 and gas-1 have no list: nothing to check them against
    assert parts["fpnl-1"]["1-1/21/1-023"] == Component(1, 1, 21, 1, 23, "3F 东侧走廊 感烟")
    assert set(parts["fpnl-1"]) == {"1-1/21/1-023", "1-1/23/2-005"}
    again = await import_registry(pg_dsn, tiny_dir)
    assert again.counts["device_components"].unchanged == 2


async def test_a_devices_list_is_replaced_as_a_whole(pg_dsn: str, tiny_dir: Path, tmp_path: Path) -> None:
    (tiny_dir / "components.csv").write_text(PANEL, encoding="utf-8")
    await import_registry(pg_dsn, tiny_dir)
    one = tmp_path / "panel.yaml"  # the vendor's new 点位表: the 手报 moved to loop 3
    one.write_text(
        "devices:\n"
        "  - id: fpnl-1\n    vendor_id: firenet\n    model: FN-JB5000\n    domain: fire\n    site_id: S2\n"
        "    expected_interval_s: 300\n    installed_on: 2022-01-10\n"
        "    components:\n"
        "      - {sys_type: 1, sys_addr: 1, comp_type: 21, loop: 1, point: 23, description: 3F 东侧走廊 感烟}\n"
        "      - {sys_type: 1, sys_addr: 1, comp_type: 23, loop: 3, point: 5, description: 3F 楼梯间 手报}\n",
        encoding="utf-8",
    )
    report = await import_registry(pg_dsn, one)
    c = report.counts["device_components"]
    assert (c.inserted, c.unchanged, c.deleted) == (1, 1, 1)
    assert set((await _parts(pg_dsn))["fpnl-1"]) == {"1-1/21/1-023", "1-1/23/3-005"}
    out = await export_registry(pg_dsn, tmp_path / "out")
    assert out["components"] == 2
    text = (tmp_path / "out" / "components.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER.strip() and "fpnl-1,1,1,23,3,5,3F 楼梯间 手报" in text


async def test_a_district_without_components_exports_no_components_file(pg_dsn: str, tiny_dir: Path,
                                                                        tmp_path: Path) -> None:
    await import_registry(pg_dsn, tiny_dir)
    assert await _parts(pg_dsn) == {}
    await export_registry(pg_dsn, tmp_path / "out")
    assert not (tmp_path / "out" / "components.csv").exists()


async def test_a_bad_component_row_loads_nothing(pg_dsn: str, tiny_dir: Path) -> None:
    (tiny_dir / "components.csv").write_text(PANEL + "fpnl-1,1,1,21,1,70000,\n", encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        await import_registry(pg_dsn, tiny_dir)
    assert [str(e) for e in info.value.errors] == [
        f"{tiny_dir / 'components.csv'}:4: point: 70000 out of range [0, 65535]"
    ]
    async with _connection(pg_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM devices") == 0  # nothing at all


def test_every_bad_component_field_is_named_with_its_line(tiny_dir: Path) -> None:
    f = tiny_dir / "components.csv"
    f.write_text(
        HEADER
        + "fpnl-1,1,1,21,1,23,3F 东侧走廊 感烟\n"
        + "fpnl-1,1,1,21,1,023,同一部件写了两次\n"  # 023 is 23: the same 部件地址
        + "fpnl-1,256,1,21,1,24,\n"
        + "fpnl-1,1,一,21,1,25,\n"
        + "fpnl-1,1,1,21,,26,\n"
        + "gas-1,1,1,21,1,1,\n"
        + "fpnl-9,1,1,21,1,1,\n",
        encoding="utf-8",
    )
    assert _errors(tiny_dir) == [
        f"{f}:3: point: duplicate component address (§8.2 部件地址) '1-1/21/1-023' (first at {f}:2)",
        f"{f}:4: sys_type: 256 out of range [0, 255]",
        f"{f}:5: sys_addr: must be an integer",
        f"{f}:6: loop: required",
        f"{f}:7: device_id: components (部件) are for fire devices, not 'gas-1' of domain 'gas'",
        f"{f}:8: device_id: unknown device 'fpnl-9'",
    ]


def test_inline_yaml_components_are_named_by_their_path(tmp_path: Path, tiny_dir: Path) -> None:
    doc = tmp_path / "panel.yaml"
    doc.write_text(
        "devices:\n"
        "  - id: fpnl-2\n    vendor_id: firenet\n    domain: fire\n    site_id: S2\n"
        "    components:\n"
        "      - {sys_type: 1, sys_addr: 1, comp_type: 21, loop: 1, point: 1}\n"
        "      - {sys_type: 1, sys_addr: 1, comp_type: 21, loop: 1, pt: 2}\n"
        "      - {device_id: fpnl-1, sys_type: 1, sys_addr: 1, comp_type: 21, loop: 1, point: 3}\n",
        encoding="utf-8",
    )
    assert _errors(tiny_dir, doc) == [
        f"{doc}:9: components[2].device_id: unknown field",  # the device's own id is its components'
        f"{doc}:8: components[1].point: required",
        f"{doc}:8: components[1].pt: unknown key (expected one of comp_type, description, device_id, loop, "
        "point, sys_addr, sys_type)",
    ]


def test_a_component_list_of_a_vendor_without_gbt26875_is_a_warning(tiny_dir: Path) -> None:
    (tiny_dir / "vendors.csv").write_text(
        "id,name,adapter,mqtt_username\nacme-gas,安可燃气,gasjson,acme-gas\nfirenet,消防网联,firejson,firenet\n",
        encoding="utf-8",
    )
    (tiny_dir / "components.csv").write_text(PANEL, encoding="utf-8")
    errors, warnings, _plan = check(read_sources([tiny_dir]), {})
    assert errors == []
    assert [str(w) for w in warnings] == [
        f"{tiny_dir / 'components.csv'}:2: device_id: warning: device 'fpnl-1' is of a vendor speaking "
        "'firejson', not gbt26875: its messages carry no GB/T 26875.3 部件地址, so its component list is "
        "not checked"
    ]
