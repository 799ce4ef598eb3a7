"""Township and village boundaries (辖区边界): ``boundaries.geojson`` beside the registry's CSVs.

The file is a GeoJSON ``FeatureCollection`` (RFC 7946, WGS 84 lon/lat in degrees). Each feature is
one area: ``properties.level`` is ``township`` (镇/街道) or ``village`` (村/社区), ``properties.id``
its registry id (``name`` and any other property are for people and GIS tools, not read);
``geometry`` a ``Polygon`` or ``MultiPolygon``. A file given to an import replaces every stored
boundary (a partition is one whole); an import without one keeps the stored boundaries and checks
the sites it gives against them.

What is checked (each problem ``file: path: problem``, nothing imported on any):

* the shape of the document; every ring a list of ≥ 4 ``[lon, lat]`` positions whose last is its
  first (``ring does not close``), with an area, not crossing itself (segments that touch only
  where they meet are fine); a hole inside its outer ring;
* every id a known township or village, one boundary per area, every township with one (when a
  file is given), every village vertex inside or on its township's boundary;
* every site with coordinates inside its own township's polygon, and in no other
  (``sites.csv: row 14 (site S00012): lon/lat outside every township``).

The checks are plain ray casting and a sweep over segment boxes: cheap enough for the few
thousand vertices a district's boundaries have, not a GIS.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hazmon.errors import RowError

if TYPE_CHECKING:
    from hazmon.registry._checking import _Checking

__all__ = ["Area", "PathError", "SUFFIXES", "read_boundaries", "areas_from_rows", "check_boundaries",
           "feature_collection", "dump_geojson", "contains"]

SUFFIXES = (".geojson",)
Level = Literal["township", "village"]
Point = tuple[float, float]
Ring = tuple[Point, ...]
Polygon = tuple[Ring, ...]  # the outer ring, then the holes
_EPS = 1e-7  # degrees (about 1 cm): a point this close to an edge is on it


class PathError(RowError):
    """A problem at a path of a data file (``file: path: problem``), as :mod:`hazmon.datafile` says it."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        super().__init__(file, 0, path, problem)
        self.args = (f"{file}: {path}: {problem}" if path else f"{file}: {problem}",)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Area:
    """One township's or village's boundary: its polygons and where it was written."""

    level: Level
    id: str
    polygons: tuple[Polygon, ...]
    file: str
    path: str  # ``features[2]``

    @property
    def geometry(self) -> dict[str, Any]:
        coords = [[[list(p) for p in ring] for ring in poly] for poly in self.polygons]
        if len(coords) == 1:
            return {"type": "Polygon", "coordinates": coords[0]}
        return {"type": "MultiPolygon", "coordinates": coords}

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        if not self.polygons:  # a feature whose geometry was refused
            return math.inf, math.inf, -math.inf, -math.inf
        xs = [p[0] for poly in self.polygons for p in poly[0]]
        ys = [p[1] for poly in self.polygons for p in poly[0]]
        return min(xs), min(ys), max(xs), max(ys)


# --------------------------------------------------------------------------- reading


def read_boundaries(path: Path, name: str) -> tuple[list[Area], list[RowError]]:
    """Every area of one GeoJSON file, and every problem of its shape and geometry."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [RowError(name, 1, "(file)", f"cannot read: {exc}")]
    except json.JSONDecodeError as exc:
        return [], [RowError(name, exc.lineno, "(file)", f"not valid JSON: {exc.msg}")]
    errors: list[RowError] = []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        return [], [PathError(name, "type", 'must be "FeatureCollection"')]
    features = doc.get("features")
    if not isinstance(features, list):
        return [], [PathError(name, "features", "must be a list of features")]
    areas = []
    for i, feature in enumerate(features):
        area = _feature(feature, name, f"features[{i}]", errors)
        if area is not None:
            areas.append(area)
    return areas, errors


def _feature(feature: Any, name: str, at: str, errors: list[RowError]) -> Area | None:
    """The area of one feature; one without polygons when its geometry is bad (reported here), so
    its sites are not reported once more as being in a township without a boundary."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        errors.append(PathError(name, at, 'must be a mapping with "type": "Feature"'))
        return None
    props = feature.get("properties")
    if not isinstance(props, dict):
        errors.append(PathError(name, f"{at}.properties", "must be a mapping with level and id"))
        return None
    level, ident, ok = props.get("level"), props.get("id"), True
    if level not in ("township", "village"):
        errors.append(PathError(name, f"{at}.properties.level", 'must be "township" or "village"'))
        ok = False
    if not isinstance(ident, str) or not ident.strip():
        errors.append(PathError(name, f"{at}.properties.id", "must be the township's or village's id"))
        ok = False
    kind: Level = "township" if level == "township" else "village"
    polygons = _geometry(feature.get("geometry"), name, at, errors)
    if not ok:
        return None
    return Area(kind, str(ident).strip(), polygons or (), name, at)


def _geometry(geom: Any, name: str, at: str, errors: list[RowError]) -> tuple[Polygon, ...] | None:
    if not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "MultiPolygon"):
        errors.append(PathError(name, f"{at}.geometry.type", "must be Polygon or MultiPolygon"))
        return None
    coords = geom.get("coordinates")
    where = f"{at}.geometry.coordinates"
    polys = [(coords, where)] if geom["type"] == "Polygon" else None
    if polys is None:
        if not isinstance(coords, list) or not coords:
            errors.append(PathError(name, where, "must be a list of polygons"))
            return None
        polys = [(c, f"{where}[{p}]") for p, c in enumerate(coords)]
    polygons = [_polygon(poly, name, p_at, errors) for poly, p_at in polys]
    return None if any(p is None for p in polygons) else tuple(p for p in polygons if p is not None)


def _polygon(rings: Any, name: str, at: str, errors: list[RowError]) -> Polygon | None:
    if not isinstance(rings, list) or not rings:
        errors.append(PathError(name, at, "must be a list of rings (the outer ring, then holes)"))
        return None
    out: list[Ring] = []
    for j, raw in enumerate(rings):
        ring = _ring(raw, name, f"{at}[{j}]", errors)
        if ring is None:
            return None
        if j and not _in_ring(ring[0], out[0]):
            errors.append(PathError(name, f"{at}[{j}]", "hole lies outside its polygon's outer ring"))
            return None
        out.append(ring)
    return tuple(out)


def _ring(raw: Any, name: str, at: str, errors: list[RowError]) -> Ring | None:
    if not isinstance(raw, list):
        errors.append(PathError(name, at, "must be a list of [lon, lat] positions"))
        return None
    pts: list[Point] = []
    for k, pos in enumerate(raw):
        if (not isinstance(pos, list) or len(pos) not in (2, 3)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in pos)):
            errors.append(PathError(name, f"{at}[{k}]", "must be [lon, lat] in degrees"))
            return None
        if not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90):
            errors.append(PathError(name, f"{at}[{k}]", f"lon/lat {pos[0]}, {pos[1]} out of range"))
            return None
        pts.append((float(pos[0]), float(pos[1])))
    if len(pts) < 4:
        problem = "a ring needs at least 4 positions (3 corners and the first again)"
        errors.append(PathError(name, at, problem))
        return None
    if pts[0] != pts[-1]:
        errors.append(PathError(name, at, "ring does not close"))
        return None
    crossing = _crossing(pts)
    if crossing is not None:
        a, b = crossing
        errors.append(PathError(name, at, f"ring crosses itself (segments {a} and {b})"))
        return None
    if abs(_area(pts)) < 1e-14:
        errors.append(PathError(name, at, "ring has no area"))
        return None
    return tuple(pts)


def areas_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Area]:
    """The stored boundaries (validated when they were imported) as areas."""
    out = []
    for r in rows:
        geom = r["geometry"] if isinstance(r["geometry"], dict) else json.loads(r["geometry"])
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        polygons = tuple(tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in poly)
                         for poly in polys)
        where = f"{r['level']} {r['area_id']}"
        out.append(Area(r["level"], r["area_id"], polygons, "(database) area_boundaries", where))
    return out


def feature_collection(areas: Sequence[Area], names: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    """The areas as a GeoJSON FeatureCollection (export, the sample, the console's map)."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature",
         "properties": {"level": a.level, "id": a.id, "name": names.get((a.level, a.id), "")},
         "geometry": a.geometry} for a in areas]}


def dump_geojson(collection: Mapping[str, Any]) -> str:
    """A FeatureCollection as text with one feature per line (so a changed area is a one-line diff)."""
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in collection["features"]]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


# --------------------------------------------------------------------------- geometry


def _area(pts: Sequence[Point]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False)) / 2


def _orient(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _touches(a: Point, b: Point, p: Point) -> bool:
    """``p`` within _EPS of the segment ``a``–``b``."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy) <= _EPS


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    d1, d2, d3, d4 = _orient(c, d, a), _orient(c, d, b), _orient(a, b, c), _orient(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return _touches(c, d, a) or _touches(c, d, b) or _touches(a, b, c) or _touches(a, b, d)


def _crossing(pts: Sequence[Point]) -> tuple[int, int] | None:
    """Two segments of a closed ring that meet other than as neighbours, by a sweep over x."""
    n = len(pts) - 1
    segs = sorted(range(n), key=lambda i: min(pts[i][0], pts[i + 1][0]))
    for pos, i in enumerate(segs):
        a, b = pts[i], pts[i + 1]
        x_max = max(a[0], b[0]) + _EPS
        for j in segs[pos + 1:]:
            c, d = pts[j], pts[j + 1]
            if min(c[0], d[0]) > x_max:
                break
            if abs(i - j) == 1 or abs(i - j) == n - 1:
                continue  # neighbours share a corner
            if max(c[1], d[1]) + _EPS < min(a[1], b[1]) or min(c[1], d[1]) - _EPS > max(a[1], b[1]):
                continue
            if _segments_cross(a, b, c, d):
                return min(i, j), max(i, j)
    return None


def _in_ring(p: Point, ring: Ring) -> bool:
    x, y = p
    inside = False
    for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def _on_ring(p: Point, ring: Ring) -> bool:
    return any(_touches(a, b, p) for a, b in zip(ring, ring[1:], strict=False))


def contains(area: Area, p: Point) -> Literal["in", "edge", "out"]:
    """Whether ``p`` lies inside ``area``, on its boundary (within about a centimetre), or outside."""
    x0, y0, x1, y1 = area.bbox
    if not (x0 - _EPS <= p[0] <= x1 + _EPS and y0 - _EPS <= p[1] <= y1 + _EPS):
        return "out"
    for poly in area.polygons:
        if any(_on_ring(p, ring) for ring in poly):
            return "edge"
        if _in_ring(p, poly[0]) and not any(_in_ring(p, hole) for hole in poly[1:]):
            return "in"
    return "out"


# --------------------------------------------------------------------------- the import's check


def check_boundaries(c: _Checking, stored: list[Area]) -> None:
    """The boundaries given (or, without a file, the stored ones) against the rows after the
    import; records errors on ``c`` and what to write on ``c.plan.boundaries``."""
    given = c.ds.boundaries
    areas = stored if given is None else given
    if not areas:
        return
    by_key: dict[tuple[str, str], Area] = {}
    for a in areas:
        first = by_key.get((a.level, a.id))
        if first is not None:
            c.errors.append(PathError(a.file, f"{a.path}.properties.id",
                                      f"{a.level} {a.id!r} already has a boundary ({first.path})"))
            continue
        table = "townships" if a.level == "township" else "villages"
        if a.id not in c.known[table] and given is None:  # a stored boundary of a row --replace removes
            problem = "this import removes it (--replace): give a boundaries.geojson without it"
            c.errors.append(PathError(a.file, f"{a.level} {a.id}", problem))
            continue
        if a.id not in c.known[table]:
            c.errors.append(PathError(a.file, f"{a.path}.properties.id", f"unknown {a.level} {a.id!r}"))
            continue
        by_key[(a.level, a.id)] = a
    towns = {k[1]: a for k, a in by_key.items() if k[0] == "township"}
    if given is not None:
        c.plan.boundaries = list(by_key.values())
        file = given[0].file if given else "boundaries"
        for tid, entry in sorted(c.final["townships"].items()):
            if tid not in towns:
                c.errors.append(PathError(file, "features", f"no boundary for township {tid!r} "
                                          f"({entry.values.get('name', '')})"))
    for (level, vid), a in by_key.items():
        village = c.final["villages"].get(vid)
        town = towns.get(str(village.values.get("township_id"))) if village and level == "village" else None
        outside = town is not None and town.polygons and any(
            contains(town, p) == "out" for poly in a.polygons for p in poly[0])
        if town is not None and outside:
            c.errors.append(PathError(a.file, f"{a.path}.geometry",
                                      f"village {vid!r} reaches outside its township {town.id!r}"))
    _sites(c, towns, given is not None)


def _sites(c: _Checking, towns: Mapping[str, Area], all_sites: bool) -> None:
    """Every site with coordinates inside its own township and in no other (given sites only
    when the boundaries are the stored ones: the others were checked when they came)."""
    sites = c.final["sites"] if all_sites else c.given["sites"]
    names = {k: str(e.values.get("name", "")) for k, e in c.final["townships"].items()}
    for key, e in sites.items():
        lon, lat = e.values.get("lon"), e.values.get("lat")
        if lon is None or lat is None:
            continue
        p, tid = (float(lon), float(lat)), str(e.values.get("township_id"))
        own = towns.get(tid)
        if (own is None and all_sites) or (own is not None and not own.polygons):
            continue  # said once: the file gives no boundary for it, or a bad one
        others = [t for t, a in towns.items() if t != tid and contains(a, p) == "in"]
        state = contains(own, p) if own is not None else "out"
        other = f"township {others[0]!r} ({names.get(others[0], '')})" if others else ""
        if own is None:
            problem = f"its township {tid!r} has no boundary"
        elif others and state != "out":
            problem = f"lon/lat inside its township and {other} too (their boundaries overlap)"
        elif others:
            problem = f"lon/lat inside {other}, not its own {tid!r}"
        elif state == "out":
            problem = "lon/lat outside every township"
        else:
            continue
        if e.loc is None:
            c.errors.append(PathError("(database) sites", f"site {key}", problem))
        else:
            c.errors.append(PathError(e.loc.file, f"row {e.loc.line} (site {key})", problem))
