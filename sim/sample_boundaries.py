"""Plausible boundaries (辖区边界) for the sample district: a Voronoi partition of the district.

Each village/community (村/社区) gets the part of the district closer to its centre than to any
other village's, clipped to a wavy district outline; a township (镇/街道) is the union of its
villages' cells, so villages lie inside their township and the townships tile the district.
Sites are then pulled towards their village's centre until they lie inside their village (and so
their township): most were already, the few near a border move a little.

Deterministic: its own :class:`random.Random` keyed by the seed, so the other rows of the sample
draw exactly what they drew before boundaries existed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from hazmon.registry import Area, contains, feature_collection

__all__ = ["district_boundaries"]

Point = tuple[float, float]
_DIGITS = 6  # about 0.1 m, as the sites' coordinates


def _outline(box: tuple[float, float, float, float], rnd: random.Random) -> list[Point]:
    """The district's border: the box pushed outwards by a smooth wave (never inwards, so every
    site of the box stays inside), counter-clockwise."""
    lon0, lon1, lat0, lat1 = box
    cx, cy = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    waves = [(rnd.randint(2, 7), rnd.uniform(0, 2 * math.pi), rnd.uniform(0.3, 1.0)) for _ in range(3)]
    out = []
    n = 96
    for i in range(n):
        a = 2 * math.pi * i / n
        dx, dy = math.cos(a), math.sin(a)
        # where the ray from the centre leaves the box
        t = min((lon1 - cx) / abs(dx) if dx else math.inf, (lat1 - cy) / abs(dy) if dy else math.inf)
        wave = sum(w * (1 + math.sin(k * a + ph)) / 2 for k, ph, w in waves) / sum(w for *_, w in waves)
        push = 0.002 + 0.010 * wave
        out.append((cx + dx * t + dx * push, cy + dy * t + dy * push * 0.8))
    return out


def _clip(poly: Sequence[Point], a: Point, b: Point) -> list[Point]:
    """Sutherland–Hodgman: the part of ``poly`` closer to ``a`` than to ``b``."""
    mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    nx, ny = b[0] - a[0], b[1] - a[1]

    def side(p: Point) -> float:
        return (p[0] - mx) * nx + (p[1] - my) * ny  # < 0: a's side

    out: list[Point] = []
    for i, p in enumerate(poly):
        q = poly[(i + 1) % len(poly)]
        sp, sq = side(p), side(q)
        if sp <= 0:
            out.append(p)
        if (sp < 0 < sq) or (sq < 0 < sp):
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


class _Snap:
    """One vertex id per point: the same Voronoi vertex computed from two cells differs by
    rounding noise, and the union of a township's cells needs them equal."""

    def __init__(self) -> None:
        self.points: list[Point] = []

    def id(self, p: Point) -> int:
        for i, q in enumerate(self.points):
            if abs(p[0] - q[0]) < 1e-9 and abs(p[1] - q[1]) < 1e-9:
                return i
        self.points.append(p)
        return len(self.points) - 1

    def ring(self, ids: Sequence[int]) -> list[list[float]]:
        pts = [[round(self.points[i][0], _DIGITS), round(self.points[i][1], _DIGITS)] for i in ids]
        return [*pts, pts[0]]


def _cell_ids(snap: _Snap, cell: Sequence[Point]) -> list[int]:
    ids = [snap.id(p) for p in cell]
    return [v for i, v in enumerate(ids) if v != ids[i - 1]]  # no zero-length edges


def _union(cells: Sequence[Sequence[int]]) -> list[list[int]]:
    """The outer rings of cells that share whole edges: the edges not shared, chained."""
    edges = {(c[i], c[(i + 1) % len(c)]) for c in cells for i in range(len(c))}
    nxt = {a: b for a, b in edges if (b, a) not in edges}
    rings = []
    while nxt:
        start = min(nxt)
        ring, v = [start], nxt.pop(start)
        while v != start:
            ring.append(v)
            v = nxt.pop(v)
        rings.append(ring)
    return rings


def district_boundaries(
    tables: Mapping[str, list[dict[str, Any]]], centres: Mapping[str, Point],
    box: tuple[float, float, float, float], seed: int,
) -> dict[str, Any]:
    """The boundaries.geojson of the district (townships, then villages), moving sites into
    their village where a border cut them off (their ``lon``/``lat`` are changed in place)."""
    rnd = random.Random(f"{seed}:boundaries")
    outline = _outline(box, rnd)
    snap = _Snap()
    cells: dict[str, list[int]] = {}
    for vid, c in centres.items():
        cell: list[Point] = list(outline)
        for other, o in centres.items():
            if other != vid:
                cell = _clip(cell, c, o)
        cells[vid] = _cell_ids(snap, cell)
    town_of = {v["id"]: v["township_id"] for v in tables["villages"]}
    areas: list[Area] = []
    for t in tables["townships"]:
        rings = _union([cells[v] for v in centres if town_of[v] == t["id"]])
        polys = tuple((tuple((p[0], p[1]) for p in snap.ring(r)),) for r in rings)
        areas.append(Area("township", t["id"], polys, "", ""))
    for vid in sorted(centres):
        ring = tuple((p[0], p[1]) for p in snap.ring(cells[vid]))
        areas.append(Area("village", vid, ((ring,),), "", ""))
    villages = {a.id: a for a in areas if a.level == "village"}
    for s in tables["sites"]:
        home = str(s.get("village_id"))
        if home not in villages or s.get("lon") is None:
            continue
        (cx, cy), k = centres[home], 1.0
        dx, dy = s["lon"] - cx, s["lat"] - cy
        while contains(villages[home], (s["lon"], s["lat"])) != "in":
            k *= 0.8
            s["lon"], s["lat"] = round(cx + dx * k, _DIGITS), round(cy + dy * k, _DIGITS)
    names = {("township", t["id"]): t["name"] for t in tables["townships"]}
    names |= {("village", v["id"]): v["name"] for v in tables["villages"]}
    return feature_collection(areas, names)
