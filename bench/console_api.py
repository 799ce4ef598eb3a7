"""Console API cost: requests/s of the board, alert list and a scoped site list through the
whole app (auth, scope, SQL, JSON) in-process, against the same SQL run raw on asyncpg.

    .venv/bin/python bench/console_api.py [--alerts 2000] [--requests 300]

Needs PostgreSQL at HAZMON_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres);
creates and drops a scratch database. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from alerting.store import Placement, record_events
from console.app import create_app
from console.auth import new_session
from console.board import BOARD_COLUMNS, BOARD_FROM
from console.users import NewUser, create_user
from hazmon.contracts import Event, EventState, Severity, event_id
from hazmon.db import migrate
from hazmon.registry import import_registry
from hazmon.settings import PostgresSettings, Settings
from hazmon.stack.postgres import with_database

ROOT = Path(__file__).resolve().parents[1]


async def main(n_alerts: int, n_requests: int) -> None:
    server = os.environ.get("HAZMON_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"bench_console_{uuid.uuid4().hex[:8]}"
    dsn = with_database(server, name)
    await migrate(dsn, timescale=False)
    try:
        await import_registry(dsn, ROOT / "data" / "sample")
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
        now = datetime.now(UTC)
        async with pool.acquire() as conn:
            devices = await conn.fetch("SELECT d.id, d.domain, d.site_id, s.township_id FROM devices d JOIN sites s ON s.id = d.site_id")
            sev = list(Severity)
            for i in range(n_alerts):
                d = devices[i % len(devices)]
                t = now - timedelta(seconds=i * 7)
                ev = Event(id=event_id(d["id"], f"{d['domain']}.bench", t), kind=f"{d['domain']}.bench", domain=d["domain"],
                           severity=sev[i % 4], state=EventState.FIRING, device_id=d["id"], site_id=d["site_id"],
                           starts_at=t, detected_at=t, summary="bench")
                await record_events(conn, [Placement(ev, township_id=d["township_id"])], now=t)
            township = devices[0]["township_id"]
            await create_user(conn, NewUser("bench-centre", "bench password 1", "centre"), actor="bench")
            await create_user(conn, NewUser("bench-town", "bench password 1", "township", township_id=township), actor="bench")
            tok_c = (await new_session(conn, "bench-centre", ttl_s=3600, now=now))[0]
            tok_t = (await new_session(conn, "bench-town", ttl_s=3600, now=now))[0]
        app = create_app(Settings(postgres=PostgresSettings(dsn=dsn)), pool=pool)
        raw_board = (f"SELECT {BOARD_COLUMNS} FROM {BOARD_FROM} WHERE a.phase <> 'closed' ORDER BY "
                     "CASE a.severity WHEN 'red' THEN 0 WHEN 'orange' THEN 1 WHEN 'yellow' THEN 2 ELSE 3 END, a.starts_at DESC LIMIT 200")
        cases = [
            ("GET /api/board (centre)", "/api/board", tok_c, raw_board, ()),
            ("GET /api/alerts page 50 (centre)", "/api/alerts", tok_c,
             f"SELECT {BOARD_COLUMNS} FROM {BOARD_FROM} ORDER BY a.starts_at DESC, a.id LIMIT 50", ()),
            ("GET /api/sites page 50 (township)", "/api/sites", tok_t,
             "SELECT s.* FROM sites s WHERE s.township_id = $1 ORDER BY s.id LIMIT 50", (township,)),
        ]
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as c:
                print(f"alerts={n_alerts} devices={len(devices)} requests={n_requests} per case")
                for label, path, tok, sql, args in cases:
                    h = {"Authorization": f"Bearer {tok}"}
                    await c.get(path, headers=h)
                    t0 = time.perf_counter()
                    for _ in range(n_requests):
                        r = await c.get(path, headers=h)
                        assert r.status_code == 200
                    api_s = time.perf_counter() - t0
                    async with pool.acquire() as conn:
                        t0 = time.perf_counter()
                        for _ in range(n_requests):
                            await conn.fetch(sql, *args)
                        raw_s = time.perf_counter() - t0
                    print(f"{label:<36} api {n_requests / api_s:7.0f} req/s ({api_s / n_requests * 1000:6.2f} ms)"
                          f"  raw SQL {n_requests / raw_s:7.0f} q/s ({raw_s / n_requests * 1000:6.2f} ms)"
                          f"  ratio api/raw {api_s / raw_s:5.1f}x")
        await pool.close()
    finally:
        conn = await asyncpg.connect(server)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=300)
    a = ap.parse_args()
    asyncio.run(main(a.alerts, a.requests))
