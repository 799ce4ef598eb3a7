"""The district registry: who and what is where, and who is responsible (责任矩阵).

Two halves:

* **Loading** (``hazmon registry import``): :func:`import_registry` validates a YAML file or a
  directory of CSV files row by row and loads it in one transaction, or loads nothing and
  raises :class:`~hazmon.errors.RegistryError` listing every bad row as
  ``file:line: field: problem``. :func:`read_sources` and :func:`check` are the same
  validation without a database (benchmarks, tests, a dry run of one's own). The file format
  is documented in ``docs/registry.md``.
* **Reading** (every stage): :func:`load_registry` returns an immutable in-memory
  :class:`Registry` snapshot — dicts keyed by id — that ingest, detectors and alerting consult
  without touching the database in their hot loops.

Only the names in ``__all__`` are public; the ``_modules`` are implementation:

=============== ============================================================================
``_snapshot``   the :class:`Registry` snapshot and :func:`load_registry`
``_rows``       one pydantic model per table (one row's rules), :data:`KNOWN_ADAPTERS`
``_files``      reading YAML/CSV with the line of every field; writing CSV
``_check``      the whole-import checks, phase by phase, and the :class:`Plan` to write
``_boundaries`` boundaries.geojson (辖区边界): reading, checking, :func:`contains`
``_reach``      the channels of a duty room and the matrix roles no channel reaches (触达)
``_import``     the all-or-nothing import transaction and the export
``cli``         ``hazmon registry import|export|sample`` (``register(sub)``)
=============== ============================================================================
"""

from __future__ import annotations

from hazmon.registry._boundaries import Area, PathError, contains, dump_geojson, feature_collection
from hazmon.registry._check import DbRowError, Existing, Plan, check
from hazmon.registry._files import Loc, RawDataset, RawRow, format_cell, read_sources, write_csv_table
from hazmon.registry._import import ImportReport, TableCounts, export_registry, import_registry
from hazmon.registry._reach import ReachFinding, duty_channels, reach_findings
from hazmon.registry._rows import (
    KNOWN_ADAPTERS,
    RESERVED_MQTT_PREFIX,
    TABLES,
    ComponentRow,
    ContactRow,
    DepartmentRow,
    DeviceRow,
    DomainRow,
    LeaderRow,
    MaintainerRow,
    MatrixRow,
    SiteRow,
    TableSpec,
    TownshipRow,
    VendorRow,
    VillageRow,
    mqtt_username,
    no_control_characters,
    normalize_mobile,
    normalize_phone,
    parse_bool,
    parse_date,
    validate_row,
    vendor_id,
)
from hazmon.registry._snapshot import (
    Component,
    Contact,
    Department,
    Device,
    DomainInfo,
    Leader,
    Maintainer,
    MatrixRule,
    Registry,
    Site,
    Township,
    Vendor,
    Village,
    load_registry,
)

__all__ = [
    # the snapshot every stage reads
    "DomainInfo",
    "Township",
    "Village",
    "Department",
    "Leader",
    "Vendor",
    "Maintainer",
    "Contact",
    "Site",
    "Component",
    "Device",
    "MatrixRule",
    "Registry",
    "load_registry",
    # loading and exporting
    "import_registry",
    "export_registry",
    "ImportReport",
    "TableCounts",
    # the file format: reading, validating, writing
    "read_sources",
    "write_csv_table",
    "format_cell",
    "Loc",
    "RawRow",
    "RawDataset",
    "check",
    "ReachFinding",
    "duty_channels",
    "reach_findings",
    "Plan",
    "Existing",
    # 辖区边界 (boundaries.geojson)
    "Area",
    "PathError",
    "contains",
    "feature_collection",
    "dump_geojson",
    "DbRowError",
    # one row's rules
    "TABLES",
    "TableSpec",
    "DomainRow",
    "TownshipRow",
    "VillageRow",
    "DepartmentRow",
    "LeaderRow",
    "VendorRow",
    "SiteRow",
    "ComponentRow",
    "ContactRow",
    "DeviceRow",
    "MatrixRow",
    "MaintainerRow",
    "validate_row",
    "normalize_mobile",
    "normalize_phone",
    "parse_bool",
    "parse_date",
    "no_control_characters",
    # names ingest checks against the registry's own rules
    "KNOWN_ADAPTERS",
    "RESERVED_MQTT_PREFIX",
    "vendor_id",
    "mqtt_username",
]
