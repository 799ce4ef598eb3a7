"""Reading and writing registry files, keeping the line of every row and field.

The registry file format
========================
A district is described either by **one YAML document** or by **a directory of CSV files**
(one per table, UTF-8, a header row naming the columns; a BOM from Excel is accepted). A
directory may also hold YAML documents; everything given in one import is merged and every
id must be unique across all of it. The tables, CSV file names and YAML keys:

============== ================== ===========================================================
YAML key       CSV file           columns (``*`` = required)
============== ================== ===========================================================
domains        domains.csv        name*, name_zh*, default_interval_s (60)
townships      townships.csv      id*, name*, kind (镇|街道|乡|园区), duty_name*, duty_phone*
                                  (mobile or landline), duty_mobile, robot (wecom|dingtalk),
                                  robot_url, robot_secret (钉钉 加签)
villages       villages.csv       id*, township_id*, name*, kind (村|社区), grid_member*,
                                  grid_member_phone*
departments    departments.csv    id*, name*, duty_name, duty_phone*, duty_mobile, robot,
                                  robot_url, robot_secret (as townships)
leaders        leaders.csv        id*, name*, title, phone*
vendors        vendors.csv        id*, name*, adapter*, mqtt_username*
maintainers    maintainers.csv    id*, name*, duty_name, duty_phone* (mobile or landline),
                                  duty_mobile — 电梯维保单位
sites          sites.csv          id*, name*, address, industry, site_class, township_id*,
                                  village_id, lon, lat, gas_alarm_required, critical,
                                  covering_leader_id
site_contacts  site_contacts.csv  site_id*, name*, role (主要负责人), phone*
devices        devices.csv        id*, vendor_id*, model, domain*, site_id*,
                                  expected_interval_s (domain default), installed_on
                                  (YYYY-MM-DD), parent_id, active (true), location,
                                  reg_code, maintainer_id (a lift's 维保单位), is_canary
                                  (false; a 监测链路探针 of ``hazmon canary``)
matrix         matrix.csv         id*, domain*, department_ids* (``a;b``), leader_id,
                                  committee, industries (``a;b``), note
components     components.csv     device_id*, sys_type*, sys_addr*, comp_type*, loop*, point*,
                                  description — a fire panel's 部件 (GB/T 26875.3 §8.2 部件地址)
============== ================== ===========================================================

In YAML each key holds a list of mappings; a site may carry its contacts inline as
``contacts: [{name, role, phone}, ...]``, a device its components as ``components: [{sys_type,
sys_addr, comp_type, loop, point, description}, ...]``, and list columns are YAML lists. An empty cell (or a
YAML null) means "not given". Booleans accept true/false, yes/no, 1/0, 是/否. See
``docs/registry.md`` for the checks and an example.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from hazmon.errors import RowError
from hazmon.registry._boundaries import SUFFIXES as BOUNDARY_SUFFIXES
from hazmon.registry._boundaries import Area, read_boundaries
from hazmon.registry._rows import TABLES, TableSpec

__all__ = ["Loc", "RawRow", "RawDataset", "read_sources", "write_csv_table", "format_cell", "CONTACTS_KEY",
           "COMPONENTS_KEY"]

_BY_STEM: dict[str, TableSpec] = {t.stem: t for t in TABLES}
CONTACTS_KEY = "contacts"  # inline contacts of a site in YAML
COMPONENTS_KEY = "components"  # inline components (部件) of a fire device in YAML
#: parent table → (YAML key, child table, the child's parent column, what a child holds)
_INLINE = {
    "sites": (CONTACTS_KEY, "site_contacts", "site_id", "{name, role, phone}"),
    "devices": (COMPONENTS_KEY, "device_components", "device_id",
                "{sys_type, sys_addr, comp_type, loop, point, description}"),
}


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a row came from: its file and line, the line of each YAML field, and a field prefix
    for nested rows (a site's inline ``contacts[0].``)."""

    file: str
    line: int
    fields: Mapping[str, int] = field(default_factory=dict)
    prefix: str = ""

    def error(self, field_name: str, problem: str) -> RowError:
        base = field_name.split(".", 1)[0].split("[", 1)[0]
        return RowError(self.file, self.fields.get(base, self.line), self.prefix + field_name, problem)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class RawRow:
    table: str  # PostgreSQL table name
    data: dict[str, Any]
    loc: Loc


@dataclass
class RawDataset:
    """Everything read from the given paths, not yet validated."""

    rows: dict[str, list[RawRow]] = field(default_factory=lambda: {t.name: [] for t in TABLES})
    provided: set[str] = field(default_factory=set)  # tables that some file gives (even empty)
    errors: list[RowError] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    boundaries: list[Area] | None = None  # boundaries.geojson (辖区边界), when a file gives it


# --------------------------------------------------------------------------- YAML


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers lines, keeps dates as text (so ``2023-02-30`` becomes a
    row error instead of a crash) and reports duplicate keys."""

    duplicate_keys: list[tuple[int, str]]


_LineLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = str(key)
        if key in lines:
            loader.duplicate_keys.append((key_node.start_mark.line + 1, key))
        out[key] = loader.construct_object(value_node, deep=True)
        lines[key] = value_node.start_mark.line + 1
    out["__line__"] = node.start_mark.line + 1
    out["__lines__"] = lines
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]


def _strip_meta(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_meta(v) for k, v in value.items() if k not in ("__line__", "__lines__")}
    if isinstance(value, list):
        return [_strip_meta(v) for v in value]
    return value


def _read_yaml(path: Path, name: str, ds: RawDataset) -> None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        ds.errors.append(RowError(name, 1, "(file)", f"cannot read: {exc}"))
        return
    loader = _LineLoader(text)
    loader.duplicate_keys = []
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        ds.errors.append(RowError(name, line, "(file)", f"not valid YAML: {exc.problem or exc}"))
        return
    finally:
        loader.dispose()
    for line, key in loader.duplicate_keys:
        ds.errors.append(RowError(name, line, key, "duplicate key"))
    if doc is None:
        return
    if not isinstance(doc, dict):
        ds.errors.append(RowError(name, 1, "(file)", "a registry YAML document must be a mapping of tables"))
        return
    lines = doc["__lines__"]
    for key, value in doc.items():
        if key in ("__line__", "__lines__"):
            continue
        if key == "version":
            if value != 1:
                ds.errors.append(
                    RowError(name, lines[key], key, f"unsupported version {value!r} (this hazmon reads 1)")
                )
            continue
        spec = _BY_STEM.get(key)
        if spec is None:
            known = ", ".join(t.stem for t in TABLES)
            ds.errors.append(RowError(name, lines[key], key, f"unknown table (expected one of {known})"))
            continue
        ds.provided.add(spec.name)
        if value is None:
            continue
        if not isinstance(value, list):
            ds.errors.append(RowError(name, lines[key], key, "must be a list of rows"))
            continue
        for item in value:
            if not isinstance(item, dict):
                ds.errors.append(RowError(name, lines[key], key, f"each row must be a mapping, got {item!r}"))
                continue
            row_lines = item["__lines__"]
            data = {k: _strip_meta(v) for k, v in item.items() if k not in ("__line__", "__lines__")}
            loc = Loc(name, item["__line__"], row_lines)
            inline = _INLINE.get(spec.name)
            if inline is not None and inline[0] in data:
                children = data.pop(inline[0])
                ds.provided.add(inline[1])
                _inline_rows(item, children, inline, name, ds)
            ds.rows[spec.name].append(RawRow(spec.name, data, loc))


def _inline_rows(
    parent: dict[str, Any], children: Any, inline: tuple[str, str, str, str], name: str, ds: RawDataset
) -> None:
    """A site's inline ``contacts``, a device's inline ``components``: rows of their own table,
    named ``contacts[0].phone`` in errors, their parent column set from the parent's id."""
    key, table, parent_col, shape = inline
    line = parent["__lines__"].get(key, parent["__line__"])
    if children is None:
        return
    if not isinstance(children, list):
        ds.errors.append(RowError(name, line, key, f"must be a list of {shape}"))
        return
    for i, child in enumerate(parent.get(key) or []):
        prefix = f"{key}[{i}]."
        if not isinstance(child, dict):
            ds.errors.append(RowError(name, line, f"{key}[{i}]", f"each {key[:-1]} must be a mapping"))
            continue
        data = {k: _strip_meta(v) for k, v in child.items() if k not in ("__line__", "__lines__")}
        if parent_col in data:
            at = child["__lines__"][parent_col]
            ds.errors.append(RowError(name, at, prefix + parent_col, "unknown field"))
        data[parent_col] = parent.get("id")
        loc = Loc(name, child["__line__"], child["__lines__"], prefix)
        ds.rows[table].append(RawRow(table, data, loc))


# --------------------------------------------------------------------------- CSV


def _read_csv(path: Path, name: str, spec: TableSpec, ds: RawDataset) -> None:
    ds.provided.add(spec.name)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        ds.errors.append(RowError(name, 1, "(file)", f"cannot read: {exc}"))
        return
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            bad_header = False
            for h in header:
                if h not in spec.columns:
                    ds.errors.append(
                        RowError(
                            name, 1, h or "(blank)", f"unknown column (expected {', '.join(spec.columns)})"
                        )
                    )
                    bad_header = True
                elif header.count(h) > 1:
                    ds.errors.append(RowError(name, 1, h, "column given twice"))
                    bad_header = True
            if bad_header:
                return
            prev_end = reader.line_num
            for record in reader:
                line = prev_end + 1
                prev_end = reader.line_num
                if not any(cell.strip() for cell in record):
                    continue
                if len(record) > len(header):
                    ds.errors.append(
                        RowError(name, line, "(row)", f"{len(record)} cells but {len(header)} columns")
                    )
                    continue
                data = dict(zip(header, record, strict=False))
                ds.rows[spec.name].append(RawRow(spec.name, data, Loc(name, line)))
        except (csv.Error, UnicodeDecodeError) as exc:
            ds.errors.append(RowError(name, reader.line_num or 1, "(file)", f"not valid CSV: {exc}"))


# --------------------------------------------------------------------------- entry point


def read_sources(paths: Sequence[Path | str]) -> RawDataset:
    """Read YAML files, CSV files named after their table, and directories of both."""
    ds = RawDataset()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            suffixes = (".csv", ".yaml", ".yml", *BOUNDARY_SUFFIXES)
            entries = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
            if not entries:
                ds.errors.append(RowError(str(path), 0, "(dir)", "no .csv or .yaml registry files here"))
            for entry in entries:
                _read_file(entry, ds)
        elif path.is_file():
            _read_file(path, ds)
        else:
            ds.errors.append(RowError(str(path), 0, "(file)", "no such file or directory"))
    return ds


def _read_file(path: Path, ds: RawDataset) -> None:
    name = str(path)
    ds.files.append(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        _read_yaml(path, name, ds)
        return
    if path.suffix.lower() in BOUNDARY_SUFFIXES:  # several files: their features together
        areas, errors = read_boundaries(path, name)
        ds.boundaries = (ds.boundaries or []) + areas
        ds.errors.extend(errors)
        return
    spec = _BY_STEM.get(path.stem)
    if spec is None:
        known = ", ".join(f"{t.stem}.csv" for t in TABLES)
        ds.errors.append(RowError(name, 1, "(file)", f"unknown table file (expected one of {known})"))
        return
    _read_csv(path, name, spec, ds)


# --------------------------------------------------------------------------- writing


def format_cell(value: Any) -> str:
    """One canonical text form per value, so export and the sample generator agree byte for byte."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def write_csv_table(path: Path, spec: TableSpec, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write one table as CSV (rows sorted by primary key, ``\\n`` line ends); returns the count."""
    ordered = sorted(rows, key=lambda r: tuple(str(r[k]) for k in spec.key))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(spec.columns)
    for row in ordered:
        writer.writerow([format_cell(row.get(col)) for col in spec.columns])
    path.write_text(buf.getvalue(), encoding="utf-8")
    return len(ordered)
