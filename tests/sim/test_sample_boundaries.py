"""The sample district's 辖区边界 (sim/sample_boundaries.py) for other seeds and sizes too: they
validate as the registry import checks them, every site lies inside its own village and township,
and the townships tile the district (their areas add up to the outline's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmon.registry import check, contains, read_sources
from sim.sample import generate, write_sample


def _area(ring: tuple[tuple[float, float], ...]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False))) / 2


@pytest.mark.parametrize(("seed", "sites"), [(7, 240), (11, 60), (2024, 400)])
def test_other_districts_get_valid_boundaries(tmp_path: Path, seed: int, sites: int) -> None:
    write_sample(tmp_path, generate(seed=seed, min_sites=sites, min_devices=100))
    ds = read_sources([tmp_path])
    errors, _warnings, _plan = check(ds, {})
    assert errors == []
    assert ds.boundaries is not None
    towns = {a.id: a for a in ds.boundaries if a.level == "township"}
    villages = {a.id: a for a in ds.boundaries if a.level == "village"}
    for raw in ds.rows["sites"]:
        p = (float(raw.data["lon"]), float(raw.data["lat"]))
        assert contains(towns[raw.data["township_id"]], p) == "in"
        assert contains(villages[raw.data["village_id"]], p) == "in"
    town_area = sum(_area(poly[0]) for a in towns.values() for poly in a.polygons)
    village_area = sum(_area(poly[0]) for a in villages.values() for poly in a.polygons)
    assert town_area == pytest.approx(village_area, rel=1e-6)
    assert all(len(a.polygons) == 1 for a in towns.values())  # each township one piece
