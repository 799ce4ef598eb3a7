"""Database access shared by every stage: connection helpers and versioned schema migrations.

Migrations are the files ``deploy/sql/NNN_name.sql`` applied in order, each in its own
transaction, recorded in ``schema_migrations`` (with a checksum, so an edited, already-applied
file is reported instead of silently ignored). A file of the same name under
``deploy/sql/timescale/`` runs after its plain twin when TimescaleDB is usable; otherwise it is
skipped with the reason logged. Running ``migrate`` twice is a no-op.

TimescaleDB is used only where the server can load it: listed in ``pg_available_extensions``
*and* in ``shared_preload_libraries``. A server that lists it without preloading it ends the
session on ``CREATE EXTENSION`` (FATAL "must be preloaded"), so that is checked first; should
the server close the connection on it anyway, the migrator reconnects, takes its lock again and
goes on plain (docs/timescaledb.md). A timescale step is a list of statements run one at a time
(some TimescaleDB DDL refuses a transaction) and recorded only once all ran, so each statement
must be re-runnable: an interrupted step runs again from its first statement.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from hazmon.errors import MigrationError
from hazmon.logs import kv

__all__ = ["MIGRATIONS_DIR", "Migration", "MigrationReport", "connect", "ensure_database", "migrate",
           "timescale_decision"]

log = logging.getLogger(__name__)

#: the shipped migrations; another directory is the setting ``postgres.migrations_dir``
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "sql"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x4A5A4D4F4E  # pg_advisory_lock key: one migrator at a time


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    timescale_path: Path | None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass
class MigrationReport:
    applied: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    timescale: bool = False
    timescale_reason: str = ""


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path}: migration file names must look like 001_name.sql")
        ts = directory / "timescale" / path.name
        found.append(Migration(int(m.group(1)), m.group(2), path, ts if ts.is_file() else None))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migration files share a version number")
    return found


async def connect(dsn: str, **kwargs: object) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, **kwargs)  # type: ignore[arg-type]
    except (OSError, asyncpg.PostgresError) as exc:
        raise MigrationError(f"cannot connect to PostgreSQL at {_redact(dsn)}: {exc}") from None


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


async def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` when it does not exist yet."""
    parts = urlsplit(dsn)
    dbname = parts.path.lstrip("/") or "postgres"
    admin_dsn = urlunsplit(parts._replace(path="/postgres"))
    try:
        conn = await asyncpg.connect(dsn)
        await conn.close()
        return
    except asyncpg.InvalidCatalogNameError:
        pass
    except (OSError, asyncpg.PostgresError) as exc:
        raise MigrationError(f"cannot connect to PostgreSQL at {_redact(dsn)}: {exc}") from None
    conn = await connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{dbname}"')
        log.info("database created %s", kv(database=dbname))
    except asyncpg.DuplicateDatabaseError:
        pass
    finally:
        await conn.close()


_CREATE_EXTENSION = "CREATE EXTENSION IF NOT EXISTS timescaledb"
_TIMESCALE_FACTS = """SELECT
    EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS installed,
    current_setting('shared_preload_libraries') AS preload"""


def _preloaded(preload: str) -> bool:
    """``timescaledb`` among ``shared_preload_libraries`` (``'$libdir/timescaledb'``,
    ``"timescaledb"``, ``timescaledb.so`` all count)."""
    for item in preload.split(","):
        name = item.strip().strip('"').rsplit("/", 1)[-1]
        if name.removesuffix(".so") == "timescaledb":
            return True
    return False


def timescale_decision(*, available: bool, installed: bool, preload: str) -> tuple[bool, str]:
    """Whether the TimescaleDB steps can run on this server, and why not."""
    if not available and not installed:
        return False, "timescaledb is not available on this server (not in pg_available_extensions)"
    if not _preloaded(preload):
        return False, (
            "timescaledb is available but not in shared_preload_libraries "
            f"({preload or 'empty'}); CREATE EXTENSION would end the session: add it and restart "
            "PostgreSQL to use it")
    return True, "timescaledb extension present"


async def _locked(dsn: str) -> asyncpg.Connection:
    conn = await connect(dsn)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    return conn


async def _create_extension(conn: asyncpg.Connection, dsn: str,
                            sql: str = _CREATE_EXTENSION) -> tuple[asyncpg.Connection, str]:
    """Run ``CREATE EXTENSION``; the connection to go on with (a new one, locked again, when
    the server closed this one) and why it failed (``""`` when it did not)."""
    try:
        await conn.execute(sql)
        return conn, ""
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        reason = "CREATE EXTENSION timescaledb failed: " + (str(exc).splitlines() or [""])[0]
    if conn.is_closed():
        reason += " (the server closed the connection; reconnected)"
        conn = await _locked(dsn)
    return conn, reason


async def _enable_timescale(conn: asyncpg.Connection, dsn: str) -> tuple[asyncpg.Connection, bool, str]:
    facts = await conn.fetchrow(_TIMESCALE_FACTS)
    ok, reason = timescale_decision(available=facts["available"], installed=facts["installed"],
                                    preload=facts["preload"])
    if not ok:
        return conn, False, reason
    conn, failed = await _create_extension(conn, dsn)
    return (conn, False, failed) if failed else (conn, True, reason)


_TOKEN = re.compile(r"\$(?:[A-Za-z_]\w*)?\$|--[^\n]*|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|;")


def _statements(sql: str) -> list[str]:
    """Split a timescale step into statements, each run on its own (some TimescaleDB DDL
    refuses to run inside a transaction); semicolons inside quotes, comments and dollar-quoted
    bodies (``DO $$ … $$``) do not split."""
    out: list[str] = []
    start = pos = 0
    while m := _TOKEN.search(sql, pos):
        tok = m.group(0)
        pos = m.end()
        if tok.startswith("$"):
            end = sql.find(tok, pos)
            if end < 0:
                raise MigrationError(f"unterminated {tok} quote in a timescale step")
            pos = end + len(tok)
        elif tok == ";":
            out.append(sql[start:m.start()])
            start = pos
    out.append(sql[start:])
    kept = []
    for chunk in out:
        code = [ln for ln in chunk.splitlines() if ln.strip() and not ln.strip().startswith("--")]
        if code:
            kept.append("\n".join(code).strip())
    return kept


async def migrate(dsn: str, *, timescale: bool = True, directory: Path = MIGRATIONS_DIR) -> MigrationReport:
    """Apply pending migrations; safe to run twice and from two processes at once."""
    migrations = discover(directory)
    await ensure_database(dsn)
    conn = await _locked(dsn)
    report = MigrationReport()
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer NOT NULL,
                   variant text NOT NULL DEFAULT 'plain',
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (version, variant))"""
        )
        if timescale:
            conn, report.timescale, report.timescale_reason = await _enable_timescale(conn, dsn)
        else:
            report.timescale_reason = "disabled by HAZMON_POSTGRES__TIMESCALEDB=false"
        if not report.timescale:
            # installed but unusable (not preloaded, CREATE failed) is a warning: someone meant to have it
            absent = "not available" in report.timescale_reason
            level = logging.INFO if not timescale or absent else logging.WARNING
            log.log(level, "timescale steps skipped %s", kv(reason=report.timescale_reason))
        rows = await conn.fetch("SELECT version, variant, checksum FROM schema_migrations")
        done = {(r["version"], r["variant"]): r["checksum"] for r in rows}
        for mig in migrations:
            label = f"{mig.version:03d}_{mig.name}"
            if (mig.version, "plain") in done:
                if done[(mig.version, "plain")] != mig.checksum:
                    raise MigrationError(
                        f"{mig.path}: already applied with different contents (checksum changed)")
                report.already.append(label)
            else:
                try:
                    async with conn.transaction():
                        await conn.execute(mig.path.read_text(encoding="utf-8"))
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, variant, name, checksum)"
                            " VALUES ($1, 'plain', $2, $3)",
                            mig.version, mig.name, mig.checksum,
                        )
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{mig.path}: {exc}") from None
                report.applied.append(label)
                log.info("migration applied %s", kv(migration=label))
            if report.timescale and mig.timescale_path and (mig.version, "timescale") not in done:
                for stmt in _statements(mig.timescale_path.read_text(encoding="utf-8")):
                    try:
                        await conn.execute(stmt)
                    except asyncpg.PostgresError as exc:
                        raise MigrationError(f"{mig.timescale_path}: {exc}") from None
                await conn.execute(
                    "INSERT INTO schema_migrations (version, variant, name, checksum)"
                    " VALUES ($1, 'timescale', $2, $3)",
                    mig.version, mig.name, hashlib.sha256(mig.timescale_path.read_bytes()).hexdigest(),
                )
                report.applied.append(f"{label} (timescale)")
        return report
    finally:
        try:
            if not conn.is_closed():
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        finally:
            await conn.close()
