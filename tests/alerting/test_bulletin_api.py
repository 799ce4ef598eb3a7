"""The 通报 page's API on the scripted month (tests/alerting/kpi_month.py): the outline and the
three files for a period, each role to its own rows (a township's bulletin speaks of its township
only), the vendor reads nothing, a future or empty period refused in Chinese with no file."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote

import asyncpg
import httpx
import pytest
from kpi_month import NOW, START, load_district, month_service, script_month

from alerting.clock import ManualClock
from console.app import create_app
from console.users import create_demo_accounts
from hazmon.settings import PostgresSettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")
PW = "bulletin-api-pw"


@pytest.fixture
async def month(pg_dsn: str, tmp_path: Path):
    await load_district(pg_dsn, tmp_path)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    clock = ManualClock(START)
    svc = await month_service(pool, clock)
    try:
        expected = await script_month(pool, svc, clock)
        async with pool.acquire() as c:
            await create_demo_accounts(c, password=PW)
            township = await c.fetchval("SELECT township_id FROM console_users WHERE username = 'demo-township'")
        yield expected, township
    finally:
        await svc.stop()
        await pool.close()


async def _get(pg_dsn: str, user: str, path: str, **params: str) -> httpx.Response:
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)), clock=lambda: NOW)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
            r = await c.post("/api/auth/login", json={"username": user, "password": PW})
            assert r.status_code == 200, r.text
            return await c.get(path, params=params, headers={"Authorization": f"Bearer {r.json()['token']}"})


async def test_outline_and_files_for_the_centre(month, pg_dsn: str) -> None:
    x, _ = month
    r = await _get(pg_dsn, "demo-centre", "/api/bulletin/outline", period="2026-11")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["title"] == "2026年11月安全生产监测预警工作情况通报"
    assert f"设备在线率{x.online_rate * 100:.1f}%（同比上升12.1个百分点）" in doc["opening"]
    heads = [s["heading"] for s in doc["sections"]]
    assert heads[0] == "一、总体情况" and heads[-2].endswith("存在问题") and heads[-1].endswith("下一步工作")
    r = await _get(pg_dsn, "demo-centre", "/api/bulletin/files/xlsx", period="2026-11")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    disp = r.headers["content-disposition"]
    assert "filename=bulletin_2026-11.xlsx" in disp and unquote(disp).endswith("工作情况通报.xlsx")
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(r.content))
    assert wb["概况"]["A4"].value == doc["opening"]
    r = await _get(pg_dsn, "demo-centre", "/api/bulletin/files/docx", period="2026-11")
    from docx import Document

    assert doc["title"] in "\n".join(p.text for p in Document(io.BytesIO(r.content)).paragraphs)
    r = await _get(pg_dsn, "demo-centre", "/api/bulletin/files/pdf", period="2026-11")
    assert r.status_code == 200 and r.content[:5] == b"%PDF-"


async def test_each_role_reads_its_own_bulletin(month, pg_dsn: str) -> None:
    _, township = month
    r = await _get(pg_dsn, "demo-township", "/api/bulletin/outline", period="2026-11")
    assert r.status_code == 200, r.text
    doc = r.json()
    names = {"T1": "东城街道", "T2": "西山镇", "T3": "南湖街道"}
    own = names[township]
    assert doc["opening"].startswith(f"2026年11月，{own}共接入监测设备"), doc["opening"]
    text = str(doc)
    assert "全区" not in doc["opening"] and all(n not in text for k, n in names.items() if k != township)
    assert "设备厂商情况" not in [s["heading"][2:] for s in doc["sections"]]
    r = await _get(pg_dsn, "demo-vendor", "/api/bulletin/files/pdf", period="2026-11")
    assert r.status_code == 403


async def test_a_bad_period_makes_no_file(month, pg_dsn: str) -> None:
    for period, words in (("2027-01", "所选时段尚未开始"), ("2024-03", "所选时段内没有任何监测数据")):
        for path in ("/api/bulletin/outline", "/api/bulletin/files/docx"):
            r = await _get(pg_dsn, "demo-centre", path, period=period)
            assert r.status_code == 422 and r.json()["detail"].startswith(words), r.text
    r = await _get(pg_dsn, "demo-centre", "/api/bulletin/files/doc", period="2026-11")
    assert r.status_code == 422
