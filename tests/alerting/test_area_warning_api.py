"""GET /api/area-warnings (issue 15, contract 3) and POST /api/accidents over the scenario of
test_area_warning: the shape the map and the page read, who sees which warning, the history in
words, and an accident form that refuses in Chinese and is counted by the next pass."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx
import pytest
from alerting_helpers import T0, ServiceFactory
from test_area_warning import RULES, _district

from alerting.area_warning import run_pass
from console.app import create_app
from console.auth import new_session
from console.scope import Role
from console.users import NewUser, create_user
from hazmon.settings import PostgresSettings, Settings

USERS = {
    "centre1": NewUser("centre1", "pw-centre-0001", Role.CENTRE),
    "town2": NewUser("town2", "pw-town-00002", Role.TOWNSHIP, township_id="T2"),
    "dept-zj": NewUser("dept-zj", "pw-dept-00003", Role.DEPARTMENT, department_id="zj"),
    "biz1": NewUser("biz1", "pw-biz-000004", Role.BUSINESS, site_ids=("S1",)),
    "vendor1": NewUser("vendor1", "pw-vendor-005", Role.VENDOR, vendor_id="v1"),
}


@pytest.mark.asyncio
async def test_the_api_lists_warnings_by_scope_and_takes_accidents(
    pool: asyncpg.Pool, pg_dsn: str, make_service: ServiceFactory
) -> None:
    svc = await make_service()
    await _district(svc)
    await run_pass(pool, svc._context(), RULES, T0)
    tokens = {}
    async with pool.acquire() as conn:
        for u in USERS.values():
            await create_user(conn, u, actor="test")
            tokens[u.username] = (await new_session(conn, u.username, ttl_s=3600, now=T0))[0]
    now = [T0 + timedelta(minutes=5)]
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)), pool=pool, clock=lambda: now[0])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client,
    ):

        async def get(user: str, path: str = "/api/area-warnings") -> httpx.Response:
            return await client.get(path, headers={"Authorization": f"Bearer {tokens[user]}"})

        r = await get("centre1")
        assert r.status_code == 200
        items = r.json()["items"]
        assert len(items) == 7
        assert (items[0]["scope_zh"], items[0]["name"], items[0]["level_zh"]) == (
            "点",
            "夕阳红养老院",
            "红色",
        )
        assert [i["level"] for i in items] == ["red"] + ["orange"] * 4 + ["yellow"] * 2  # the gravest first
        town = next(i for i in items if i["key"] == "T2")
        assert {k: town[k] for k in ("scope", "scope_zh", "key", "name", "level", "level_zh", "reasons")} == {
            "scope": "township",
            "scope_zh": "片",
            "key": "T2",
            "name": "西山镇",
            "level": "orange",
            "level_zh": "橙色",
            "reasons": ["红色预警点位1个，达到橙色预警标准（1个）"],
        }
        assert town["since"].startswith("2026-11-03T01:00") and isinstance(town["id"], int)
        assert town["history"] == [
            {
                "action": "new",
                "action_zh": "发布",
                "at": town["since"],
                "from_level_zh": "",
                "to_level_zh": "橙色",
                "reasons": town["reasons"],
                "actor_zh": "系统自动研判",
                "told": ["西山值班（西山镇）"],
            }
        ]
        # a township: its 片 and the 点 in it; a department (住建: gas): the 燃气 line and the 点 with gas;
        # a business: its own 点; a vendor: not admitted
        assert {(i["scope"], i["key"]) for i in (await get("town2")).json()["items"]} == {
            ("township", "T2"),
            ("site", "S3"),
        }
        assert {(i["scope"], i["key"]) for i in (await get("dept-zj")).json()["items"]} == {
            ("industry", "gas"),
            ("site", "S1"),
            ("site", "S2"),
        }
        assert {(i["scope"], i["key"]) for i in (await get("biz1")).json()["items"]} == {("site", "S1")}
        assert (await get("vendor1")).status_code == 403

        auth = {"Authorization": f"Bearer {tokens['centre1']}"}
        bad = await client.post(
            "/api/accidents",
            headers=auth,
            json={
                "occurred_at": (T0 - timedelta(days=1)).isoformat(),
                "township_id": "T1",
                "domain": "gas",
                "level": "general",
                "deaths": 4,
                "title": "燃气爆炸",
            },
        )
        assert bad.status_code == 422 and bad.json()["detail"] == "死亡4人至少为较大事故，与所填等级不符"
        ok = await client.post(
            "/api/accidents",
            headers=auth,
            json={
                "occurred_at": (T0 - timedelta(days=1)).isoformat(),
                "township_id": "T1",
                "site_id": "S1",
                "domain": "gas",
                "level": "larger",
                "deaths": 4,
                "title": "燃气爆炸",
            },
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["level_zh"] == "较大事故"
        forbidden = await client.post(
            "/api/accidents",
            headers={"Authorization": f"Bearer {tokens['town2']}"},
            json={
                "occurred_at": T0.isoformat(),
                "township_id": "T2",
                "domain": "gas",
                "level": "general",
                "title": "x",
            },
        )
        assert forbidden.status_code == 403
    # counted at the next pass: S1 has 4 deaths → 红 (was 橙); the 燃气 line has an accident → 橙
    res = await run_pass(pool, svc._context(), RULES, T0 + timedelta(minutes=10))
    assert ("raise", "site", "老王饭店", "red") in res.changes and (
        "raise",
        "industry",
        "燃气",
        "orange",
    ) in res.changes
