"""Benchmark: registry import and snapshot load at district scale (≥ 10,000 devices).

Prints, for a generated district of N devices: validation time (read + every check), the full
import (one transaction), a re-import (all rows unchanged), and ``load_registry``; each next to
a raw baseline measured in the same run (COPY of the same rows into an unconstrained temp table;
a bare ``SELECT`` of every registry table), so the figures say what the checks and the
dataclasses cost on this machine.

    .venv/bin/python bench/registry_load.py [--devices 10000] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

It creates and drops its own scratch database on the server named by ``--dsn``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from hazmon.db import migrate
from hazmon.registry import TABLES, check, import_registry, load_registry, read_sources
from sim.sample import generate, write_sample


def _with_db(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument(
        "--dsn",
        default=os.environ.get("HAZMON_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--repeat", type=int, default=3, help="take the best of this many runs")
    args = parser.parse_args()

    t0 = time.perf_counter()
    district = generate(min_devices=args.devices, min_sites=args.devices // 6)
    t_gen = time.perf_counter() - t0
    n_dev = district.count("devices")
    print(
        f"district: {district.count('sites')} sites, {n_dev} devices, {district.count('site_contacts')} contacts "
        f"(generated in {t_gen:.2f}s)"
    )

    name = f"hazmon_bench_registry_{os.getpid()}"
    admin = await asyncpg.connect(args.dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_db(args.dsn, name)
    try:
        await migrate(dsn, timescale=False)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "district"
            write_sample(out, district)

            best_check = min(_timed(lambda: check(read_sources([out]), {})) for _ in range(args.repeat))

            conn = await asyncpg.connect(dsn)
            try:
                # raw baseline: COPY the same rows into unconstrained temp tables, one transaction
                raw_copy = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    async with conn.transaction():
                        for spec in TABLES:
                            tmp_name = f"_raw_{spec.name}"
                            await conn.execute(
                                f"CREATE TEMP TABLE {tmp_name} (LIKE {spec.name}) ON COMMIT DROP"
                            )
                            rows = [tuple(r.get(c) for c in spec.columns) for r in district.tables[spec.name]]
                            await conn.copy_records_to_table(
                                tmp_name, records=rows, columns=list(spec.columns)
                            )
                    raw_copy.append(time.perf_counter() - t0)

                t0 = time.perf_counter()
                first = await import_registry(conn, out)
                t_import = time.perf_counter() - t0
                assert first.counts["devices"].inserted == n_dev
                reimport = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    again = await import_registry(conn, out)
                    reimport.append(time.perf_counter() - t0)
                    assert again.counts["devices"].unchanged == n_dev

                raw_select = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    for spec in TABLES:
                        await conn.fetch(f"SELECT * FROM {spec.name}")
                    raw_select.append(time.perf_counter() - t0)
                loads = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    snap = await load_registry(conn)
                    loads.append(time.perf_counter() - t0)
                assert len(snap.devices) == n_dev
            finally:
                await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    copy_s, sel_s, load_s = min(raw_copy), min(raw_select), min(loads)
    print(f"validate (read CSV + all checks):  {best_check:.3f}s  {n_dev / best_check:,.0f} devices/s")
    print(
        f"import, empty database:            {t_import:.3f}s  {t_import / copy_s:.1f}x raw COPY ({copy_s:.3f}s)"
    )
    print(f"re-import, nothing changed:        {min(reimport):.3f}s  {min(reimport) / copy_s:.1f}x raw COPY")
    print(
        f"load_registry snapshot:            {load_s:.3f}s  {load_s / sel_s:.1f}x raw SELECT of all tables ({sel_s:.3f}s)"
    )


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    errors, _warnings, _plan = fn()
    assert not errors, errors[:3]
    return time.perf_counter() - t0


if __name__ == "__main__":
    asyncio.run(main())
