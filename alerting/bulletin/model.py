"""The 通报 as data: paragraphs, tables and charts that the DOCX, PDF and XLSX all render, so the
three files say the same. A table's cells keep their raw figures (a rate as a fraction, a time in
seconds); each column says how to show them (:func:`show`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from alerting.kpi.render import dur

__all__ = ["Cell", "ColumnKind", "DocColumn", "DocTable", "DocSection", "ChartSpec", "BulletinDoc", "show"]

Cell = str | int | float | None
#: text; a count; a rate (fraction); a time (seconds); a rate's change (percentage points as a
#: fraction); a count's relative change (fraction)
ColumnKind = Literal["text", "int", "pct", "dur", "pp", "rel"]


def show(kind: ColumnKind, v: Cell) -> str:
    """A cell as it is printed: 92.1%, 35分, +12.1个百分点, +25.0%; "—" when absent."""
    if v is None:
        return "—"
    if kind == "pct":
        return f"{float(v) * 100:.1f}%"
    if kind == "dur":
        return dur(float(v))
    if kind == "pp":
        return f"{float(v) * 100:+.1f}个百分点"
    if kind == "rel":
        return f"{float(v) * 100:+.1f}%"
    return str(v)


@dataclass(frozen=True, slots=True)
class DocColumn:
    title: str
    kind: ColumnKind = "text"


@dataclass(frozen=True, slots=True)
class DocTable:
    title: str
    sheet: str  # the XLSX sheet's name (≤ 31 characters)
    columns: tuple[DocColumn, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""

    def text_rows(self) -> list[list[str]]:
        return [[show(c.kind, v) for c, v in zip(self.columns, r, strict=True)] for r in self.rows]


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """A grouped bar chart: one group per category, one bar per series (rates as fractions)."""

    title: str
    categories: tuple[str, ...]
    series: tuple[tuple[str, tuple[float | None, ...]], ...]
    percent: bool = True
    target: float | None = None


@dataclass(frozen=True, slots=True)
class DocSection:
    heading: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[DocTable, ...] = ()
    charts: tuple[ChartSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class BulletinDoc:
    title: str
    period: str  # 统计时段：2026年11月1日至11月30日
    addressee: str
    opening: str  # the overview paragraph with the headline figures and their 同比
    sections: tuple[DocSection, ...] = field(default_factory=tuple)
    issuer: str = "区安全生产委员会办公室"
    date: str = ""
    slug: str = "bulletin"  # the files' name: bulletin_2026-11

    def tables(self) -> list[DocTable]:
        return [t for s in self.sections for t in s.tables]

    def charts(self) -> list[ChartSpec]:
        return [c for s in self.sections for c in s.charts]
