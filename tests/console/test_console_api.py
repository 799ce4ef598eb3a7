"""Smoke-level API behaviour against real PostgreSQL: sign-in, scoping, filters, 4xx messages."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_healthz_and_security_headers(api):
    r = await api.client.get("/api/healthz")
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"


async def test_sites_scoped_per_role(api):
    seen = {}
    for user in ("centre1", "dept-zj", "town-t1", "town-t2", "biz-s1"):
        r = await api.client.get("/api/sites", headers=api.auth(user))
        assert r.status_code == 200, r.text
        seen[user] = sorted(i["id"] for i in r.json()["items"])
    assert seen["centre1"] == ["S1", "S2", "S3", "S4"]
    assert seen["dept-zj"] == ["S1", "S4"]  # gas sites only (住建 ← 燃气 in the matrix)
    assert seen["town-t1"] == ["S1", "S2"]
    assert seen["town-t2"] == ["S3", "S4"]
    assert seen["biz-s1"] == ["S1"]
