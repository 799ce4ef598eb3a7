"""GET /api/kpis and /api/bulletin on the scripted month (tests/alerting/kpi_month.py): who sees
which rows, the dimensions on request, a custom span, the CSV's Chinese headers, and a period
not begun or without data refused in Chinese with nothing changed."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "alerting"))
from kpi_month import NOW, START, load_district, month_service, script_month  # noqa: E402

from alerting.clock import ManualClock  # noqa: E402
from console.app import create_app  # noqa: E402
from console.users import create_demo_accounts  # noqa: E402
from console.words import has_latin  # noqa: E402
from hazmon.settings import PostgresSettings, Settings  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="session")
PASSWORD = "kpi-api-pw"


@pytest.fixture
async def client(pg_dsn: str, tmp_path: Path):
    await load_district(pg_dsn, tmp_path)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    clock = ManualClock(START)
    svc = await month_service(pool, clock)
    try:
        await script_month(pool, svc, clock)
        async with pool.acquire() as c:
            await create_demo_accounts(c, password=PASSWORD)
    finally:
        await svc.stop()
        await pool.close()
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)), clock=lambda: NOW)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
            tokens = {}
            for user in ("demo-centre", "demo-township", "demo-dept"):
                r = await c.post("/api/auth/login", json={"username": user, "password": PASSWORD})
                assert r.status_code == 200, r.text
                tokens[user] = {"Authorization": f"Bearer {r.json()['token']}"}
            yield c, tokens


async def test_each_role_sees_its_own_rows(client) -> None:
    c, auth = client
    centre = (await c.get("/api/kpis", params={"period": "2026-11"}, headers=auth["demo-centre"])).json()
    assert {r["dimension"] for r in centre["rows"]} == {"total", "township", "department", "domain", "vendor"}
    assert centre["labels"]["false_alarm_rate"] == "误报率"
    town = (await c.get("/api/kpis", params={"period": "2026-11"}, headers=auth["demo-township"])).json()
    assert [(r["dimension"], r["key"]) for r in town["rows"]] == [("township", "T1")]
    assert town["rows"][0]["rank"] == 1 and town["vendors"] == []
    dept = (await c.get("/api/kpis", params={"period": "2026-11"}, headers=auth["demo-dept"])).json()
    assert {(r["dimension"], r["key"]) for r in dept["rows"]} == {("department", "zj"), ("domain", "gas")}
    sites = (await c.get("/api/kpis", params={"period": "2026-11", "dimension": "site"},
                         headers=auth["demo-centre"])).json()
    names = {r["key"]: r["name"] for r in sites["rows"]}
    assert names["C1"] == "刘记小吃（南湖店）" and len(names) == 6
    models = (await c.get("/api/kpis", params={"period": "2026-11", "dimension": "model"},
                          headers=auth["demo-centre"])).json()
    assert {r["name"] for r in models["rows"]} >= {"安可燃气安全科技有限公司 AG-200",
                                                   "联梯物联网科技有限公司 LL-3"}
    # a township's bulletin: its own line, no district total
    text = (await c.get("/api/bulletin", params={"period": "2026-11"}, headers=auth["demo-township"])).text
    assert text.splitlines() == ["安全生产监测预警通报（2026年11月）",
                                 "东城街道：报警 4 起，办结 4 起，误报 1 起，隐患 2 处，整改 2 处"]


async def test_a_custom_span_and_the_csv(client) -> None:
    c, auth = client
    span = {"since": "2026-11-01T00:00:00+08:00", "until": "2026-11-16T00:00:00+08:00", "dimension": "total"}
    r = await c.get("/api/kpis", params=span, headers=auth["demo-centre"])
    assert r.status_code == 200, r.text
    body = r.json()
    # 1–15 November: alarms #1–#4 (4), #1, #2, #3, #4 closed; 环比 the fifteen days before
    assert body["label"] == "2026-11-01 至 2026-11-15"
    assert body["previous"]["label"] == "2026-10-17 至 2026-10-31"
    assert (body["rows"][0]["alerts"], body["rows"][0]["alerts_closed"]) == (4, 4)
    r = await c.get("/api/bulletin", params={"period": "2026-11", "format": "csv"},
                    headers=auth["demo-centre"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["时段开始", "时段结束", "维度", "编码", "名称"] and "误报率(%)" in rows[0]
    assert not [h for h in rows[0] if has_latin(h)], rows[0]  # every header in Chinese


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"period": "2027-01"}, 422, "所选时段尚未开始"),
    ({"period": "2024-03"}, 422, "所选时段内没有任何监测数据"),
    ({"period": "2026-13"}, 422, "月份须为01至12"),
    ({"period": "fortnight"}, 422, "无法识别的统计周期"),
    ({"period": "2026-11", "since": "2026-11-01T00:00:00Z"}, 400, "请只给出统计周期或起止时间之一"),
])
async def test_bad_periods_are_refused_in_chinese(client, params, status, words) -> None:
    c, auth = client
    for path in ("/api/kpis", "/api/bulletin"):
        r = await c.get(path, params=params, headers=auth["demo-centre"])
        assert r.status_code == status and words in r.json()["detail"], (path, r.text)
