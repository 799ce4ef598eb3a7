"""Loading registry files into PostgreSQL, all or nothing, and exporting them back.

:func:`import_registry` reads and validates everything, then writes in ONE transaction: an
upsert by primary key per table (rows that did not change are not touched, so importing the
same files twice changes nothing), then — with ``replace`` — deletes the rows of every table
the files give that the files do not name. A ``registry_audit`` row records who imported what
(file checksums, counts). Any bad row raises :class:`~hazmon.errors.RegistryError` listing
every problem, and the database is left exactly as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from hazmon.db import connect
from hazmon.errors import MigrationError, RegistryError, RowError
from hazmon.logs import kv
from hazmon.registry._boundaries import Area, areas_from_rows, dump_geojson, feature_collection
from hazmon.registry._check import Existing, check
from hazmon.registry._checking import LISTS
from hazmon.registry._files import read_sources, write_csv_table
from hazmon.registry._rows import TABLES, TableSpec

__all__ = ["ImportReport", "TableCounts", "import_registry", "export_registry"]

log = logging.getLogger(__name__)

_LOCK_KEY = 0x48524547  # pg_advisory_xact_lock: one registry import at a time


@dataclass
class TableCounts:
    given: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    sources: list[str]
    replace: bool
    dry_run: bool = False
    counts: dict[str, TableCounts] = field(default_factory=dict)
    warnings: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        for table, c in self.counts.items():
            if c.given or c.deleted:
                parts.append(f"{table} {c.given} (+{c.inserted} ~{c.updated} ={c.unchanged} -{c.deleted})")
        verb = "would load" if self.dry_run else "loaded"
        return f"{verb}: " + (", ".join(parts) or "nothing") + f"; {len(self.warnings)} warning(s)"


@asynccontextmanager
async def _connection(conn_or_dsn: Any) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(conn_or_dsn, str):
        conn = await connect(conn_or_dsn)
        try:
            yield conn
        finally:
            await conn.close()
    elif hasattr(conn_or_dsn, "acquire") and not hasattr(conn_or_dsn, "transaction"):
        async with conn_or_dsn.acquire() as conn:
            yield conn
    else:
        yield conn_or_dsn


# the columns the cross-row checks need from rows already in the database
_EXISTING_SQL = {
    "domains": "SELECT name, default_interval_s FROM domains ORDER BY 1",
    "townships": "SELECT id FROM townships ORDER BY 1",
    "villages": "SELECT id, township_id FROM villages ORDER BY 1",
    "departments": "SELECT id FROM departments ORDER BY 1",
    "leaders": "SELECT id FROM leaders ORDER BY 1",
    "vendors": "SELECT id, mqtt_username, adapter FROM vendors ORDER BY 1",
    "maintainers": "SELECT id, name, duty_phone, duty_mobile FROM maintainers ORDER BY 1",
    "sites": "SELECT id, township_id, village_id, covering_leader_id, lon, lat FROM sites ORDER BY 1",
    "site_contacts": "SELECT site_id, phone FROM site_contacts ORDER BY 1, 2",
    "devices": "SELECT id, vendor_id, domain, site_id, parent_id, maintainer_id FROM devices ORDER BY 1",
    "matrix_rules": "SELECT id, domain, department_ids, leader_id FROM matrix_rules ORDER BY 1",
    "device_components": "SELECT device_id, sys_type, sys_addr, comp_type, loop, point FROM device_components"
    " ORDER BY 1, 2, 3, 4, 5, 6",
}


async def _existing(conn: asyncpg.Connection) -> Existing:
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    for spec in TABLES:
        rows = await conn.fetch(_EXISTING_SQL[spec.name])
        table: dict[Any, dict[str, Any]] = {}
        for r in rows:
            values = dict(r)
            key = values[spec.key[0]] if len(spec.key) == 1 else tuple(values[k] for k in spec.key)
            table[key] = values
        out[spec.name] = table
    return out


def _digest(paths: Sequence[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        try:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            pass
    return out


async def import_registry(
    conn_or_dsn: Any,
    paths: str | Path | Sequence[str | Path],
    *,
    replace: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    actor: str = "hazmon registry import",
) -> ImportReport:
    """Validate ``paths`` (YAML files, CSV files, directories) and load them in one transaction.

    ``conn_or_dsn``: an asyncpg connection (not inside a transaction of the caller's, or the
    import becomes part of it), a pool, or a DSN. ``replace``: delete the rows of every table
    the files give that they do not name. ``strict``: warnings are errors. ``dry_run``: do
    everything, then roll back. Raises :class:`RegistryError` (``.errors`` and ``.warnings``)
    and loads nothing when any row is bad.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    ds = await asyncio.to_thread(read_sources, list(paths))
    report = ImportReport(sources=[str(p) for p in paths], replace=replace, dry_run=dry_run)
    if any(e.field in ("(file)", "(dir)") for e in ds.errors):
        raise RegistryError(ds.errors)  # unreadable input: say so before touching the database
    async with _connection(conn_or_dsn) as conn:
        try:
            tx = conn.transaction()
            await tx.start()
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"cannot start the import transaction: {exc}") from None
        try:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            try:
                existing = await _existing(conn)
            except asyncpg.UndefinedTableError as exc:
                raise MigrationError(
                    f"registry tables missing ({exc}); run `hazmon db migrate` first"
                ) from None
            stored = areas_from_rows(await conn.fetch(_BOUNDARIES_SQL))
            errors, warnings, plan = check(ds, existing, replace=replace, boundaries=stored)
            report.warnings = warnings
            if strict:
                errors = errors + warnings
            if errors:
                err = RegistryError(errors)
                err.warnings = warnings  # type: ignore[attr-defined]
                raise err
            for spec in TABLES:
                report.counts[spec.name] = TableCounts(given=len(plan.rows[spec.name]))
            await _write(conn, plan.rows, ds.provided, plan.replace_tables, plan, report)
            if plan.boundaries is not None:
                await _write_boundaries(conn, plan.boundaries, report)
            await conn.execute(
                "INSERT INTO registry_audit (actor, action, detail) VALUES ($1, $2, $3::jsonb)",
                actor,
                "import_replace" if replace else "import",
                json.dumps(
                    {
                        "sources": report.sources,
                        "sha256": _digest(ds.files),
                        "counts": {t: asdict(c) for t, c in report.counts.items()},
                        "warnings": len(warnings),
                    },
                    ensure_ascii=False,
                ),
            )
        except asyncpg.PostgresError as exc:
            # every reference was checked above; this is a last line of defence
            await tx.rollback()
            raise RegistryError(
                [RowError("(database)", 0, "(import)", f"{type(exc).__name__}: {exc}")]
            ) from None
        except BaseException:
            await tx.rollback()
            raise
        if dry_run:
            await tx.rollback()
        else:
            await tx.commit()
    log.info(
        "registry import %s",
        kv(sources=",".join(report.sources), replace=replace, dry_run=dry_run, result=report.summary()),
    )
    return report


_BOUNDARIES_SQL = "SELECT level, area_id, geometry FROM area_boundaries ORDER BY level, area_id"


async def _write_boundaries(conn: asyncpg.Connection, areas: list[Area], report: ImportReport) -> None:
    """辖区边界 (migration 038): the file's areas replace the stored ones as a whole."""
    old = {(r["level"], r["area_id"]): r["geometry"] for r in await conn.fetch(_BOUNDARIES_SQL)}
    counts = report.counts["area_boundaries"] = TableCounts(given=len(areas))
    new = {(a.level, a.id): a for a in areas}
    counts.deleted = len(set(old) - set(new))
    for key in set(old) - set(new):
        await conn.execute("DELETE FROM area_boundaries WHERE level = $1 AND area_id = $2", *key)
    for (level, area_id), a in new.items():
        geometry = json.dumps(a.geometry, separators=(",", ":"))
        if (before := old.get((level, area_id))) is not None:
            if (json.loads(before) if isinstance(before, str) else before) == a.geometry:
                counts.unchanged += 1
                continue
            counts.updated += 1
        else:
            counts.inserted += 1
        x0, y0, x1, y1 = a.bbox
        await conn.execute(
            """INSERT INTO area_boundaries (level, area_id, township_id, village_id, geometry,
                   min_lon, min_lat, max_lon, max_lat)
               VALUES ($1, $2, CASE WHEN $1 = 'township' THEN $2
                                    ELSE (SELECT township_id FROM villages WHERE id = $2) END,
                       CASE WHEN $1 = 'village' THEN $2 END, $3::jsonb, $4, $5, $6, $7)
               ON CONFLICT (level, area_id) DO UPDATE SET township_id = EXCLUDED.township_id,
                   village_id = EXCLUDED.village_id, geometry = EXCLUDED.geometry, min_lon = EXCLUDED.min_lon,
                   min_lat = EXCLUDED.min_lat, max_lon = EXCLUDED.max_lon, max_lat = EXCLUDED.max_lat""",
            level, area_id, geometry, x0, y0, x1, y1,
        )


def _records(spec: TableSpec, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row.get(c) for c in spec.columns) for row in rows]


async def _write(
    conn: asyncpg.Connection,
    rows: dict[str, list[dict[str, Any]]],
    provided: set[str],
    replace_tables: set[str],
    plan: Any,
    report: ImportReport,
) -> None:
    staged: list[TableSpec] = []
    for spec in TABLES:
        if spec.name not in provided:
            continue
        staged.append(spec)
        tmp = f"_imp_{spec.name}"
        cols = ", ".join(spec.columns)
        await conn.execute(f"CREATE TEMP TABLE {tmp} (LIKE {spec.name} INCLUDING DEFAULTS) ON COMMIT DROP")
        if rows[spec.name]:
            await conn.copy_records_to_table(
                tmp, records=_records(spec, rows[spec.name]), columns=list(spec.columns)
            )
        keys = ", ".join(spec.key)
        others = [c for c in spec.columns if c not in spec.key]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
        old = ", ".join(f"{spec.name}.{c}" for c in others)
        new = ", ".join(f"EXCLUDED.{c}" for c in others)
        differs = f"({old}) IS DISTINCT FROM ({new})"
        result = await conn.fetch(
            f"INSERT INTO {spec.name} ({cols}) SELECT {cols} FROM {tmp} "
            f"ON CONFLICT ({keys}) DO UPDATE SET {sets} WHERE {differs} RETURNING (xmax = 0) AS inserted"
        )
        c = report.counts[spec.name]
        c.inserted = sum(1 for r in result if r["inserted"])
        c.updated = len(result) - c.inserted
        c.unchanged = c.given - len(result)
    for spec in reversed(staged):
        tmp = f"_imp_{spec.name}"
        match = " AND ".join(f"i.{k} = t.{k}" for k in spec.key)
        if spec.name in LISTS and spec.name not in plan.replace_all:  # the lists given, as a whole
            parent = spec.key[0]
            status = await conn.execute(
                f"DELETE FROM {spec.name} t WHERE t.{parent} = ANY($1::text[]) "
                f"AND NOT EXISTS (SELECT 1 FROM {tmp} i WHERE {match})",
                sorted(plan.list_parents[spec.name]),
            )
        elif spec.name in replace_tables:
            status = await conn.execute(
                f"DELETE FROM {spec.name} t WHERE NOT EXISTS (SELECT 1 FROM {tmp} i WHERE {match})"
            )
        else:
            continue
        report.counts[spec.name].deleted = int(status.split()[-1])


async def export_registry(conn_or_dsn: Any, out_dir: str | Path) -> dict[str, int]:
    """Write every registry table as ``<table>.csv`` in ``out_dir`` (the import format; an
    export imports back unchanged). Returns the row count per file."""
    out = Path(out_dir)
    tables: dict[str, list[dict[str, Any]]] = {}
    async with _connection(conn_or_dsn) as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for spec in TABLES:
                records = await conn.fetch(f"SELECT {', '.join(spec.columns)} FROM {spec.name}")
                tables[spec.name] = [dict(r) for r in records]
            areas = areas_from_rows(await conn.fetch(_BOUNDARIES_SQL))

    def columns(spec: TableSpec) -> TableSpec:
        # a district without canaries (issue 20) exports the devices.csv it imported: no is_canary column
        if spec.name == "devices" and not any(r.get("is_canary") for r in tables[spec.name]):
            return dataclasses.replace(spec, columns=tuple(c for c in spec.columns if c != "is_canary"))
        return spec

    def write() -> dict[str, int]:
        out.mkdir(parents=True, exist_ok=True)
        if areas:  # 辖区边界, in the format the import reads
            names = {("township", r["id"]): r["name"] for r in tables["townships"]}
            names |= {("village", r["id"]): r["name"] for r in tables["villages"]}
            text = dump_geojson(feature_collection(areas, names))
            (out / "boundaries.geojson").write_text(text, encoding="utf-8")
        # a district without component lists exports no components.csv
        return ({"boundaries": len(areas)} if areas else {}) | {
            spec.stem: write_csv_table(out / f"{spec.stem}.csv", columns(spec), tables[spec.name])
            for spec in TABLES
            if tables[spec.name] or spec.name != "device_components"
        }

    return await asyncio.to_thread(write)
