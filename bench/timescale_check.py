"""The TimescaleDB check by hand (docs/timescaledb.md): the migrations on a server, then the
console's reading queries and ``readings_1m`` over the same data, with sizes and compression.

    .venv/bin/python bench/timescale_check.py --dsn postgresql://postgres@127.0.0.1:55432   # TimescaleDB
    .venv/bin/python bench/timescale_check.py --dsn postgresql://postgres@127.0.0.1:55433   # plain

Steps (each printed), in scratch databases that are dropped at the end:
1. ``migrate`` twice (the second applies nothing); every timescale step forgotten and run again
   (an interrupted step must re-run); a plain deployment with three days of readings converted
   to TimescaleDB (``readings_1m`` keeps its history);
2. ``--devices`` devices × ``--hours`` hours of readings, one a minute; the rollup refreshed as
   its policy would have; each console query run 7 times (median, min) and its plan's top nodes
   (EXPLAIN ANALYZE); on TimescaleDB the same again after compressing every chunk, with the sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import timedelta

import asyncpg

from hazmon.db import migrate

QUERIES = {
    "readings_1m, one hour of all devices": (
        "SELECT device_id, metric, bucket, min_value, max_value, avg_value, n FROM readings_1m"
        " WHERE bucket >= $1 AND bucket < $2", "hour"),
    "a device's readings over a day (chart)": (
        "SELECT ts, value FROM readings WHERE device_id = 'dev-00042' AND metric = 'gas_lel'"
        " AND ts >= $1 AND ts < $2 ORDER BY ts", "day"),
    "readings around an alarm (alert detail)": (
        "SELECT metric, ts, value, unit FROM readings WHERE device_id = 'dev-00042'"
        " AND ts >= $1 AND ts < $2 ORDER BY ts DESC LIMIT 2000", "alarm"),
    "a device's latest 500 readings (device page)": (
        "SELECT metric, ts, value, unit, flags FROM readings WHERE device_id = 'dev-00042'"
        " ORDER BY ts DESC LIMIT 500", None),
}


async def _fresh(server: str, db: str) -> str:
    a = await asyncpg.connect(server + "/postgres")
    await a.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    await a.close()
    return f"{server}/{db}"


async def check_migrations(server: str) -> None:
    dsn = await _fresh(server, "tscheck_twice")
    for i in (1, 2):
        r = await migrate(dsn)
        print(f"migrate #{i}: timescale={r.timescale} ({r.timescale_reason}); applied {len(r.applied)}, "
              f"already {len(r.already)}")
    if not r.timescale:
        return
    c = await asyncpg.connect(dsn)
    await c.execute("DELETE FROM schema_migrations WHERE variant = 'timescale'")
    r = await migrate(dsn)
    print(f"every timescale step again: {', '.join(r.applied)}")
    cagg = await c.fetchrow("SELECT materialized_only FROM timescaledb_information.continuous_aggregates"
                            " WHERE view_name = 'readings_1m'")
    jobs = await c.fetch("SELECT proc_name, config->>'start_offset' AS s FROM timescaledb_information.jobs"
                         " WHERE proc_name = 'policy_refresh_continuous_aggregate'")
    print(f"readings_1m materialized_only={cagg['materialized_only']}; refresh policies: "
          f"{[(j['proc_name'], j['s']) for j in jobs]}")
    await c.close()

    dsn = await _fresh(server, "tscheck_convert")
    await migrate(dsn, timescale=False)
    c = await asyncpg.connect(dsn)
    await c.execute("""INSERT INTO readings (device_id, metric, ts, value, received_at)
        SELECT 'd' || (i % 20), 'gas_lel', now() - make_interval(secs => i * 30), i % 7, now()
        FROM generate_series(1, 3 * 2880) i""")
    plain = await c.fetchval("SELECT count(*) FROM readings_1m")
    r = await migrate(dsn)
    after = await c.fetchval("SELECT count(*) FROM readings_1m")
    only = await c.fetchval("SELECT count(*) FROM readings_1m WHERE bucket < now() - interval '1 day'")
    print(f"plain → TimescaleDB with 3 days of readings: readings_1m {plain} rows before, {after} after "
          f"({only} older than the first policy's day)")
    await c.close()


async def run_queries(c: asyncpg.Connection, label: str) -> None:
    now = await c.fetchval("SELECT date_trunc('minute', now())")
    windows = {"hour": (now - timedelta(hours=1), now), "day": (now - timedelta(days=1), now),
               "alarm": (now - timedelta(minutes=95), now - timedelta(minutes=60))}
    for name, (sql, win) in QUERIES.items():
        args = windows[win] if win else ()
        times, rows = [], 0
        for _ in range(7):
            t = time.perf_counter()
            rows = len(await c.fetch(sql, *args))
            times.append((time.perf_counter() - t) * 1000)
        plan = [r[0] for r in await c.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", *args)]
        executed = next((ln.strip() for ln in plan if "Execution Time" in ln), "")
        print(f"[{label}] {name}: {rows} rows, median {statistics.median(times):.1f} ms "
              f"(min {min(times):.1f}); {executed}")
        for ln in [plan[0], *[ln for ln in plan[1:] if "->" in ln]][:5]:
            print(f"      {ln.rstrip()[:140]}")


async def check_queries(server: str, devices: int, hours: int) -> None:
    dsn = await _fresh(server, "tscheck_plans")
    r = await migrate(dsn)
    c = await asyncpg.connect(dsn, command_timeout=3600)
    t = time.perf_counter()
    await c.execute(f"""INSERT INTO readings (device_id, metric, ts, value, unit, received_at)
        SELECT 'dev-' || lpad(d::text, 5, '0'), 'gas_lel', t, (d % 17) * 0.1 + random(), '%LEL', t
        FROM generate_series(0, {devices - 1}) d,
             generate_series(date_trunc('minute', now()) - interval '{hours} hours',
                             date_trunc('minute', now()) - interval '1 minute', interval '1 minute') t""")
    n = await c.fetchval("SELECT count(*) FROM readings")
    print(f"timescale={r.timescale}: {n:,} readings ({devices:,} devices × {hours} h, one a minute) "
          f"inserted in {time.perf_counter() - t:.1f} s")
    if r.timescale:  # what the policy has done by now
        await c.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, now() - interval '1 minute')")
    await c.execute("ANALYZE")
    size = "hypertable_size('readings')" if r.timescale else "pg_total_relation_size('readings')"
    print(f"readings: {await c.fetchval(f'SELECT pg_size_pretty({size})')} with its indexes")
    await run_queries(c, "timescaledb" if r.timescale else "plain")
    if r.timescale:
        t = time.perf_counter()
        chunks = await c.fetchval("SELECT count(compress_chunk(ch)) FROM show_chunks('readings') ch")
        await c.execute("ANALYZE")
        st = await c.fetchrow("SELECT pg_size_pretty(sum(before_compression_total_bytes)) AS b,"
                              " pg_size_pretty(sum(after_compression_total_bytes)) AS a,"
                              " round(sum(before_compression_total_bytes)::numeric"
                              "       / sum(after_compression_total_bytes), 1) AS r"
                              " FROM chunk_compression_stats('readings')")
        print(f"compressed {chunks} chunk(s) in {time.perf_counter() - t:.1f} s: "
              f"{st['b']} → {st['a']} ({st['r']}×)")
        await run_queries(c, "timescaledb, compressed")
    await c.close()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True,
                    help="server DSN without a database (postgresql://user@host:port)")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=6)
    args = ap.parse_args()
    server = args.dsn.rstrip("/")
    try:
        await check_migrations(server)
        await check_queries(server, args.devices, args.hours)
    finally:
        a = await asyncpg.connect(server + "/postgres")
        for db in ("tscheck_twice", "tscheck_convert", "tscheck_plans"):
            await a.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await a.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
