"""The console over the registry's sample district (loaded with the registry importer), the
demo accounts `hazmon demo` prints, and the `hazmon users` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from console.app import create_app
from console.users import create_demo_accounts
from hazmon.registry import import_registry, load_registry
from hazmon.settings import PostgresSettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[2]


async def test_demo_accounts_on_the_sample_district(pg_dsn):
    await import_registry(pg_dsn, ROOT / "data" / "sample")
    conn = await asyncpg.connect(pg_dsn)
    try:
        registry = await load_registry(conn)
        accounts = await create_demo_accounts(conn)
        again = await create_demo_accounts(conn)  # `hazmon demo` twice: replaced, new passwords
    finally:
        await conn.close()
    assert sorted(r for _, _, r in accounts) == sorted(["centre", "admin", "department", "township", "business", "vendor",
                                                       "grid_member", "maintainer"])
    assert {u for u, _, _ in again} == {u for u, _, _ in accounts}
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as c:
            seen = {}
            for username, password, role in again:
                r = await c.post("/api/auth/login", json={"username": username, "password": password})
                assert r.status_code == 200, (username, r.text)
                h = {"Authorization": f"Bearer {r.json()['token']}"}
                path = "/api/devices" if role == "vendor" else "/api/sites"
                r = await c.get(path, headers=h, params={"page_size": 1})
                assert r.status_code == 200, r.text
                seen[role] = r.json()["total"]
    assert seen["centre"] == seen["admin"] == len(registry.sites) >= 200
    assert 0 < seen["township"] < seen["centre"]
    assert 0 < seen["department"] < seen["centre"]
    assert seen["business"] == 1
    assert 0 < seen["vendor"] < len(registry.devices)
    assert 0 < seen["grid_member"] < seen["centre"]  # its village's sites (the sample's biggest village)
    assert 0 < seen["maintainer"] < seen["centre"]  # the sites of the lifts it maintains


def _hazmon(args, dsn, **env):
    return subprocess.run([sys.executable, "-m", "hazmon.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HAZMON_POSTGRES__DSN": dsn, **env}, cwd=ROOT)


async def test_users_cli(pg_dsn):
    await import_registry(pg_dsn, ROOT / "data" / "sample")
    r = _hazmon(["users", "add", "duty-t01", "--role", "township", "--township", "T01", "--name", "镇值班"], pg_dsn,
                HAZMON_NEW_PASSWORD="a long enough password")
    assert r.returncode == 0, r.stderr
    r = _hazmon(["users", "add", "duty-x", "--role", "township", "--township", "NOPE"], pg_dsn,
                HAZMON_NEW_PASSWORD="a long enough password")
    assert r.returncode == 2 and "township_id: unknown township id(s): NOPE" in r.stderr
    r = _hazmon(["users", "list"], pg_dsn)
    assert "duty-t01" in r.stdout and "T01" in r.stdout and "duty-x" not in r.stdout
