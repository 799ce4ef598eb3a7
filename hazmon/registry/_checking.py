"""What the phases of :func:`hazmon.registry.check` share: the rows per table as they will be
after the import, the findings so far, and the :class:`Plan` of what to write (``_check`` runs
the phases, ``_check_refs`` holds the reference checks table by table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hazmon.errors import RowError
from hazmon.registry._files import Loc, RawDataset
from hazmon.registry._rows import TABLES

__all__ = ["Key", "Existing", "DbRowError", "Plan", "LISTS", "shown_key"]

Key = Any  # str, or a tuple for composite keys (site_contacts, device_components)
#: tables that are a list per parent row: table → the parent table (a site's contacts, a device's
#: components); an import giving a parent's list replaces that list as a whole
LISTS = {"site_contacts": "sites", "device_components": "devices"}
#: What the database holds: table → key → column values (the columns the checks need).
Existing = Mapping[str, Mapping[Key, Mapping[str, Any]]]

_SPECS = {t.name: t for t in TABLES}


class DbRowError(RowError):
    """A problem with a row that is in the database, not in the files (``--replace`` only)."""

    def __init__(self, table: str, key: Key, field_name: str, problem: str) -> None:
        super().__init__(f"(database) {table}", 0, field_name, problem)
        self.table, self.key = table, key

    def __str__(self) -> str:
        return f"(database) {self.table}[{self.key}]: {self.field}: {self.problem}"


@dataclass
class Plan:
    """What to write: validated rows per table (column → value, in file order), tables whose
    absent rows are deleted, and the sites whose contact list is replaced."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replace_tables: set[str] = field(default_factory=set)
    #: per list table (``LISTS``): the parents whose list := the given one, or every list (--replace)
    list_parents: dict[str, set[str]] = field(default_factory=lambda: {t: set() for t in LISTS})
    replace_all: set[str] = field(default_factory=set)
    boundaries: list[Any] | None = None  # the areas of boundaries.geojson (``_boundaries``); None: keep

    @property
    def contact_sites(self) -> set[str]:  # their contacts := the given ones
        return self.list_parents["site_contacts"]

    @property
    def replace_all_contacts(self) -> bool:
        return "site_contacts" in self.replace_all


@dataclass
class _Entry:
    values: dict[str, Any]
    loc: Loc | None  # None: a database row

    def error(self, table: str, key: Key, field_name: str, problem: str) -> RowError:
        if self.loc is None:
            return DbRowError(table, key, field_name, problem)
        return self.loc.error(field_name, problem)


def shown_key(table: str, key: Key) -> str:
    """A key as an error names it: the phone of a contact, a component's full §8.2 address."""
    if table == "device_components" and isinstance(key, tuple):
        _dev, st, sa, ct, loop, point = key
        p = f"{int(point):03d}" if str(point).isdigit() else str(point)
        return f"{st}-{sa}/{ct}/{loop}-{p}"
    return str(key[1] if isinstance(key, tuple) else key)


def _key(table: str, values: Mapping[str, Any]) -> Key:
    cols = _SPECS[table].key
    return values.get(cols[0]) if len(cols) == 1 else tuple(values.get(c) for c in cols)


def _raw_key(table: str, data: Mapping[str, Any]) -> Key | None:
    cols = _SPECS[table].key
    parts = []
    for c in cols:
        v = data.get(c)
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        parts.append(str(v).strip())
    return parts[0] if len(parts) == 1 else tuple(parts)



@dataclass
class _Checking:
    """What the phases of :func:`check` share: the input, the findings so far, and the rows
    per table — given (valid), claimed (every given key, even of a bad row), partial (bad
    rows, still reference-checked) and final (the database overlaid by the given rows)."""

    ds: RawDataset
    replace: bool
    plan: Plan = field(default_factory=Plan)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    given: dict[str, dict[Key, _Entry]] = field(default_factory=lambda: {t.name: {} for t in TABLES})
    claimed: dict[str, set[Key]] = field(default_factory=lambda: {t.name: set() for t in TABLES})
    partial: dict[str, list[tuple[Key, _Entry]]] = field(default_factory=lambda: {t.name: [] for t in TABLES})
    raw_sites: dict[Key, dict[str, Any]] = field(default_factory=dict)
    first_at: dict[tuple[str, Key], Loc] = field(default_factory=dict)
    final: dict[str, dict[Key, _Entry]] = field(default_factory=dict)
    known: dict[str, set[Key]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.errors.extend(self.ds.errors)
        self.plan.replace_tables = {t for t in self.ds.provided if self.replace}

    def ref(
        self, table: str, key: Key, entry: _Entry, col: str, target: str, label: str, suffix: str = ""
    ) -> bool:
        """Whether ``entry``'s ``col`` names a row of ``target`` after the import (or nothing);
        if not, the error is recorded."""
        value = entry.values.get(col)
        if value is None or value in self.known[target]:
            return True
        if entry.loc is None:  # a kept database row whose target this import removes
            problem = f"references {label} {value!r}, which this import removes (--replace)"
        else:
            problem = f"unknown {label} {value!r}{suffix}"
        self.errors.append(entry.error(table, key, col, problem))
        return False

    def warn(self, entry: _Entry, field_name: str, problem: str) -> None:
        """A warning about a given row (a database row is never warned about)."""
        assert entry.loc is not None
        self.warnings.append(entry.loc.error(field_name, f"warning: {problem}"))

    def relevant(self, table: str) -> list[tuple[Key, _Entry]]:
        """The rows of ``table`` whose references are checked: given rows always (bad ones
        too); database rows only when something they reference may be removed."""
        if self.plan.replace_tables or self.plan.replace_all:
            return list(self.final[table].items()) + self.partial[table]
        return list(self.given[table].items()) + self.partial[table]

