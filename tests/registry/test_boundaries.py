"""辖区边界: boundaries.geojson beside the registry's CSVs — validated at load (each bad input its
own ``file: path: problem``, nothing imported), stored by the import (migration 038), exported back;
the sample district's boundaries contain every site."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from registry_helpers import SAMPLE_DIR, set_line, table_checksums, write_tiny

from hazmon.errors import RegistryError
from hazmon.registry import check, contains, export_registry, import_registry, read_sources

T1 = [[120.10, 30.20], [120.20, 30.20], [120.20, 30.30], [120.10, 30.30], [120.10, 30.20]]
V1 = [[120.12, 30.22], [120.18, 30.22], [120.18, 30.28], [120.12, 30.28], [120.12, 30.22]]
T2 = [[120.20, 30.20], [120.30, 30.20], [120.30, 30.30], [120.20, 30.30], [120.20, 30.20]]


def _feature(level: str, ident: str, ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"level": level, "id": ident},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _write(d: Path, features: list[dict[str, Any]] | Any) -> Path:
    doc = {"type": "FeatureCollection", "features": features} if isinstance(features, list) else features
    path = d / "boundaries.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _good(d: Path) -> Path:
    return _write(d, [_feature("township", "T1", T1), _feature("village", "V1", V1)])


def _errors(d: Path) -> list[str]:
    errors, _warnings, _plan = check(read_sources([d]), {})
    return [str(e) for e in errors]


def test_good_boundaries_validate_and_are_planned(tiny_dir: Path) -> None:
    _good(tiny_dir)
    errors, _w, plan = check(read_sources([tiny_dir]), {})
    assert errors == []
    assert plan.boundaries is not None
    assert [(a.level, a.id) for a in plan.boundaries] == [("township", "T1"), ("village", "V1")]


def _second_township(d: Path) -> None:
    with (d / "townships.csv").open("a", encoding="utf-8") as f:
        f.write("T2,青山镇,镇,青山镇应急值班室,0571-86010002,13957100002\n")


def _open_ring(d: Path) -> None:
    _write(d, [_feature("township", "T1", T1[:-1] + [[120.10, 30.21]])])


def _bow_tie(d: Path) -> None:
    tie = [[120.10, 30.20], [120.20, 30.30], [120.20, 30.20], [120.10, 30.30], [120.10, 30.20]]
    _write(d, [_feature("township", "T1", tie)])


def _three_positions(d: Path) -> None:
    _write(d, [_feature("township", "T1", [[120.1, 30.2], [120.2, 30.2], [120.1, 30.2]])])


def _bad_position(d: Path) -> None:
    _write(d, [_feature("township", "T1", [T1[0], [120.2, "30.2"], *T1[2:]])])


def _unknown_township(d: Path) -> None:
    _write(d, [_feature("township", "T1", T1), _feature("township", "T9", T2)])


def _unknown_village(d: Path) -> None:
    _write(d, [_feature("township", "T1", T1), _feature("village", "V9", V1)])


def _twice(d: Path) -> None:
    _write(d, [_feature("township", "T1", T1), _feature("township", "T1", T1)])


def _no_boundary_for_t2(d: Path) -> None:
    _second_township(d)
    _good(d)


def _village_outside(d: Path) -> None:
    wide = [[120.15, 30.22], [120.25, 30.22], [120.25, 30.28], [120.15, 30.28], [120.15, 30.22]]
    _write(d, [_feature("township", "T1", T1), _feature("village", "V1", wide)])


def _site_outside(d: Path) -> None:
    _good(d)
    set_line(d / "sites.csv", 2, "S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V1,120.35,30.25,true,false,")


def _site_in_other(d: Path) -> None:
    _second_township(d)
    _write(d, [_feature("township", "T1", T1), _feature("township", "T2", T2)])
    set_line(d / "sites.csv", 3, "S2,江滨养老院,江滨路2号,养老,elderly_home,T1,V1,120.25,30.26,true,true,L1")


def _not_a_collection(d: Path) -> None:
    _write(d, {"type": "Feature", "features": []})


def _not_json(d: Path) -> None:
    (d / "boundaries.geojson").write_text('{"type": "FeatureCollection",\n "features": [}', encoding="utf-8")


def _multipolygon_hole_outside(d: Path) -> None:
    hole = [[120.5, 30.5], [120.6, 30.5], [120.6, 30.6], [120.5, 30.5]]
    geom = {"type": "MultiPolygon", "coordinates": [[T1, hole]]}
    _write(d, [{"type": "Feature", "properties": {"level": "township", "id": "T1"}, "geometry": geom}])


GEO = "boundaries.geojson"
BAD: dict[str, tuple[Callable[[Path], None], str]] = {
    "ring does not close": (_open_ring, f"{GEO}: features[0].geometry.coordinates[0]: ring does not close"),
    "ring crosses itself": (
        _bow_tie, f"{GEO}: features[0].geometry.coordinates[0]: ring crosses itself (segments 0 and 2)"),
    "too few positions": (_three_positions, f"{GEO}: features[0].geometry.coordinates[0]: a ring needs at "
                          "least 4 positions (3 corners and the first again)"),
    "a position not numbers": (_bad_position, f"{GEO}: features[0].geometry.coordinates[0][1]: "
                               "must be [lon, lat] in degrees"),
    "unknown township": (_unknown_township, f"{GEO}: features[1].properties.id: unknown township 'T9'"),
    "unknown village": (_unknown_village, f"{GEO}: features[1].properties.id: unknown village 'V9'"),
    "an area twice": (_twice, f"{GEO}: features[1].properties.id: township 'T1' already has a boundary "
                      "(features[0])"),
    "a township without": (_no_boundary_for_t2, f"{GEO}: features: no boundary for township 'T2' (青山镇)"),
    "village outside": (_village_outside, f"{GEO}: features[1].geometry: village 'V1' reaches outside its "
                        "township 'T1'"),
    "site outside": (_site_outside, "sites.csv: row 2 (site S1): lon/lat outside every township"),
    "site in another": (_site_in_other, "sites.csv: row 3 (site S2): lon/lat inside township 'T2' (青山镇), "
                        "not its own 'T1'"),
    "not a collection": (_not_a_collection, f'{GEO}: type: must be "FeatureCollection"'),
    "not JSON": (_not_json, f"{GEO}:2: (file): not valid JSON: Expecting value"),
    "hole outside": (_multipolygon_hole_outside, f"{GEO}: features[0].geometry.coordinates[0][1]: hole lies "
                     "outside its polygon's outer ring"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_input_gets_its_precise_error(tiny_dir: Path, case: str) -> None:
    make, expected = BAD[case]
    make(tiny_dir)
    errors = _errors(tiny_dir)
    assert [e.replace(f"{tiny_dir}/", "") for e in errors] == [expected]


async def _boundary_rows(dsn: str) -> list[tuple[str, str, str | None, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT level, area_id, village_id, geometry::text AS g FROM area_boundaries "
                                "ORDER BY 1, 2")
        return [(r["level"], r["area_id"], r["village_id"], r["g"]) for r in rows]
    finally:
        await conn.close()


async def test_import_stores_the_boundaries_and_a_bad_file_changes_nothing(
    pg_dsn: str, tmp_path: Path, tiny_dir: Path
) -> None:
    _good(tiny_dir)
    report = await import_registry(pg_dsn, tiny_dir)
    assert report.counts["area_boundaries"].inserted == 2
    stored = await _boundary_rows(pg_dsn)
    assert [(lv, a, v) for lv, a, v, _g in stored] == [("township", "T1", None), ("village", "V1", "V1")]
    assert json.loads(stored[0][3]) == {"type": "Polygon", "coordinates": [T1]}
    again = await import_registry(pg_dsn, tiny_dir)
    assert again.counts["area_boundaries"].unchanged == 2
    before = await table_checksums(pg_dsn), await _boundary_rows(pg_dsn)
    for case, (make, expected) in BAD.items():
        d = write_tiny(tmp_path / case.replace(" ", "_"))
        make(d)
        with pytest.raises(RegistryError) as info:
            await import_registry(pg_dsn, d)
        assert [str(e).replace(f"{d}/", "") for e in info.value.errors] == [expected], case
        assert (await table_checksums(pg_dsn), await _boundary_rows(pg_dsn)) == before, case


async def test_sites_given_alone_are_checked_against_the_stored_boundaries(
    pg_dsn: str, tiny_dir: Path
) -> None:
    _good(tiny_dir)
    await import_registry(pg_dsn, tiny_dir)
    before = await table_checksums(pg_dsn)
    (tiny_dir / "boundaries.geojson").unlink()
    outside = "S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V1,120.35,30.25,true,false,"
    set_line(tiny_dir / "sites.csv", 2, outside)
    with pytest.raises(RegistryError) as info:
        await import_registry(pg_dsn, tiny_dir / "sites.csv")
    assert [str(e).replace(f"{tiny_dir}/", "") for e in info.value.errors] == [
        "sites.csv: row 2 (site S1): lon/lat outside every township"]
    assert await table_checksums(pg_dsn) == before


async def test_the_sample_imports_its_boundaries_and_exports_them_back(pg_dsn: str, tmp_path: Path) -> None:
    await import_registry(pg_dsn, SAMPLE_DIR)
    rows = await _boundary_rows(pg_dsn)
    assert {lv for lv, *_ in rows} == {"township", "village"} and len(rows) == 16
    counts = await export_registry(pg_dsn, tmp_path / "out")
    assert counts["boundaries"] == 16
    report = await import_registry(pg_dsn, tmp_path / "out")
    assert report.counts["area_boundaries"].unchanged == 16


def test_the_sample_boundaries_validate_and_hold_every_site() -> None:
    ds = read_sources([SAMPLE_DIR])
    errors, _warnings, plan = check(ds, {})
    assert errors == []
    assert ds.boundaries is not None and plan.boundaries is not None
    towns = {a.id: a for a in ds.boundaries if a.level == "township"}
    villages = {a.id: a for a in ds.boundaries if a.level == "village"}
    assert len(towns) == 4 and len(villages) == 12
    sites = ds.rows["sites"]
    assert len(sites) >= 200
    for raw in sites:
        p = (float(raw.data["lon"]), float(raw.data["lat"]))
        tid, vid = raw.data["township_id"], raw.data["village_id"]
        assert contains(towns[tid], p) == "in", raw.data["id"]
        assert all(contains(a, p) == "out" for t, a in towns.items() if t != tid), raw.data["id"]
        assert contains(villages[vid], p) == "in", raw.data["id"]
    # the townships tile the district: their areas add up to the union's, no overlaps or gaps
    # between neighbours (every township vertex off the outline is shared with another township)
    shared = 0
    for t, a in towns.items():
        others = [o for k, o in towns.items() if k != t]
        shared += sum(any(contains(o, p) == "edge" for o in others) for p in a.polygons[0][0])
    assert shared > 20


def test_a_stored_boundary_of_a_township_replace_removes_is_an_error(tiny_dir: Path) -> None:
    from hazmon.registry import Area

    ring = tuple((p[0], p[1]) for p in T1)
    stored = [Area("township", "T1", ((ring,),), "(database) area_boundaries", "township T1"),
              Area("township", "T2", ((ring,),), "(database) area_boundaries", "township T2")]
    existing = {"townships": {"T1": {"id": "T1"}, "T2": {"id": "T2"}}}
    errors, _w, plan = check(read_sources([tiny_dir]), existing, replace=True, boundaries=stored)
    assert [str(e) for e in errors] == ["(database) area_boundaries: township T2: this import removes it "
                                        "(--replace): give a boundaries.geojson without it"]
    assert plan.boundaries is None  # the stored ones stay as they are


def test_a_bad_township_boundary_is_said_once_not_for_each_of_its_sites(tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "sample"
    shutil.copytree(SAMPLE_DIR, d)
    doc = json.loads((d / GEO).read_text(encoding="utf-8"))
    doc["features"][2]["geometry"]["coordinates"][0][-1] = [120.2, 30.3]  # 桂溪镇, 60-odd sites
    _write(d, doc)
    assert [e.replace(f"{d}/", "") for e in _errors(d)] == [
        f"{GEO}: features[2].geometry.coordinates[0]: ring does not close"]
