"""企业风险分级 over the test district (alerting_helpers) with data/risk_rules.yaml as shipped: alarms
through alerting's intake with their 研判, hazards through the ledger, the scores and grades computed
by hand below; history and its audit on a change only; an alert at a 红 site carries
``risk_grade=red`` and a route matching it picks the alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from alerting_helpers import T0, ServiceFactory, config_with, ev, raw_routes

from alerting import lifecycle as lc
from alerting import risk
from alerting.intake import place
from alerting.ledger import find_hazard, register_hazard, supervise_hazard
from alerting.risk import grade_all
from alerting.risk_rules import load_rules
from alerting.service import AlertingService
from alerting.store import risk as store
from hazmon.contracts import Verdict
from hazmon.registry import load_registry

D = timedelta(days=1)


async def _alarm(svc: AlertingService, device: str, site: str, at: Any, verdict: Verdict | None) -> None:
    e = ev("gas.high" if "GAS" in device or device == "G2" else "fire.alarm", device, site, at=at)
    await svc.handle_events([e])
    if verdict is not None:
        async with svc.pool.acquire() as conn:
            assert (await lc.verify(conn, e.id, actor="centre1", now=at + timedelta(minutes=5),
                                    verdict=verdict, reason="研判")).applied


async def _district(svc: AlertingService) -> None:
    """S1 老王饭店 (人员密集 中): 2 real alarms, a false one, a test one and one 40 days ago;
    S2 幸福商场 (高): an open 重大隐患 and an overdue one; S3 夕阳红养老院 (高, critical);
    S6 安居小区: an open 重大隐患."""
    async with svc.pool.acquire() as conn:
        await conn.execute("UPDATE sites SET density_class = '中' WHERE id = 'S1'")
        await conn.execute("UPDATE sites SET density_class = '高' WHERE id IN ('S2', 'S3')")
    await _alarm(svc, "S1-GAS1", "S1", T0 - 3 * D, Verdict.REAL)
    await _alarm(svc, "S1-GAS1", "S1", T0 - 2 * D, Verdict.REAL)
    await _alarm(svc, "S1-GAS1", "S1", T0 - 1 * D, Verdict.FALSE)
    await _alarm(svc, "S1-GAS1", "S1", T0 - 4 * D, Verdict.TEST)  # 测试: no alarm of the site's risk
    await _alarm(svc, "S1-GAS1", "S1", T0 - 40 * D, Verdict.REAL)  # outside the 30 days
    async with svc.pool.acquire() as conn:
        await find_hazard(conn, actor="insp", now=T0 - 10 * D, site_id="S2", domain="fire", grade="major",
                          title="疏散通道堵塞", hazard_id="H-major")
        await find_hazard(conn, actor="insp", now=T0 - 10 * D, site_id="S2", domain="gas", title="软管老化",
                          hazard_id="H-late")
        await register_hazard(conn, "H-late", actor="insp", now=T0 - 10 * D, reason="登记")
        assert (await supervise_hazard(conn, "H-late", actor="insp", now=T0 - 10 * D, deadline=T0 - 1 * D,
                                       supervisor="东城街道", reason="督办", owner="刘经理", measures="更换软管",
                                       funds="企业自筹", plan="关阀疏散")).applied
        await find_hazard(conn, actor="insp", now=T0 - 5 * D, site_id="S6", domain="elevator", grade="major",
                          title="电梯制动器失效", hazard_id="H-lift")


# by hand, data/risk_rules.yaml: 红 ≥ 80, 橙 ≥ 55, 黄 ≥ 35
EXPECTED = {
    # 餐饮 20 + 用气 10 + 密集中 8 + 报警 3 起 (≥ 3) × 2 = 6 + 真实 2 × 15 = 30 → 74
    "S1": ("orange", 74, ["餐饮 +20", "使用燃气 +10", "人员密集程度中 +8", "近30天报警 3 起 +6",
                          "近30天真实报警 2 起 +30"]),
    # 商场 20 + 用气 10 + 密集高 15 + 未销号 2 × 5 + 重大 1 × 20 + 逾期 1 × 10 → 85
    "S2": ("red", 85, ["商场 +20", "使用燃气 +10", "人员密集程度高 +15", "未销号隐患 2 项 +10",
                       "未销号重大隐患 1 项 +20（至少橙）", "逾期未整改隐患 1 项 +10"]),
    # 养老 25 + 重点场所 15 + 密集高 15 (no gas: its device is a fire panel) → 55, 橙 at its threshold
    "S3": ("orange", 55, ["养老 +25", "重点场所 +15", "人员密集程度高 +15"]),
    # 零售 is not listed; gas required → 10
    "S4": ("blue", 10, ["使用燃气 +10"]),
    # not required but a gas device → 用气
    "S5": ("blue", 10, ["使用燃气 +10"]),
    # 住宅物业 10 + 未销号 1 × 5 + 重大 20 → 35 = 黄 by score, 橙 by the floor of a 重大隐患
    "S6": ("orange", 35, ["住宅物业 +10", "未销号隐患 1 项 +5", "未销号重大隐患 1 项 +20（至少橙）"]),
}


@pytest.mark.asyncio
async def test_grades_from_scripted_data_with_history_and_audit(pool: asyncpg.Pool,
                                                                make_service: ServiceFactory) -> None:
    svc = await make_service()
    await _district(svc)
    rules, digest = load_rules()
    async with pool.acquire() as conn:
        rep = await grade_all(conn, rules, digest, now=T0, actor="test")
        grades = await store.current_grades(conn)
        hist = await store.history(conn, "S1")
    assert {k: (g.grade, g.score, g.reasons) for k, g in grades.items()} == {
        k: (g, s, r) for k, (g, s, r) in EXPECTED.items()}
    assert rep.by_grade == {"red": 1, "orange": 3, "yellow": 0, "blue": 2}
    assert rep.changed == 6 and ("S2", "幸福商场", None, "red") in rep.changes
    assert [(h["from_grade"], h["to_grade"], h["score"], h["actor"], h["at"]) for h in hist] == [
        (None, "orange", 74, "test", T0)]
    assert risk.LABELS["S2"] == "red" and risk.LABELS["S4"] == "blue"

    # the same figures an hour later: no history row, the grade's `since` kept
    async with pool.acquire() as conn:
        rep = await grade_all(conn, rules, digest, now=T0 + timedelta(hours=1), actor="test")
        assert rep.changed == 0
        assert await conn.fetchval("SELECT count(*) FROM risk_grade_history") == 6
        assert (await store.current_grades(conn))["S1"].since == T0

    # a third real alarm at S1: 报警 4 × 2 = 8, 真实 3 × 15 = 45 → 91 → 红, recorded with who and when
    await _alarm(svc, "S1-GAS1", "S1", T0 + timedelta(hours=2), Verdict.REAL)
    at = T0 + timedelta(hours=3)
    async with pool.acquire() as conn:
        rep = await grade_all(conn, rules, digest, now=at, actor="cli:hazmon risk grade")
        hist = await store.history(conn, "S1")
        now_s1 = (await store.current_grades(conn))["S1"]
    assert rep.changes == (("S1", "老王饭店", "orange", "red"),)
    assert (now_s1.grade, now_s1.score, now_s1.since) == ("red", 91, at)
    assert now_s1.reasons[-2:] == ["近30天报警 4 起 +8", "近30天真实报警 3 起 +45"]
    assert [(h["from_grade"], h["to_grade"], h["actor"]) for h in hist] == [
        (None, "orange", "test"), ("orange", "red", "cli:hazmon risk grade")]


@pytest.mark.asyncio
async def test_a_route_matching_risk_grade_red_picks_the_alert(pool: asyncpg.Pool,
                                                               make_service: ServiceFactory) -> None:
    raw = raw_routes()
    raw["route"]["routes"].insert(0, {
        "name": "red-risk-site", "matchers": ['risk_grade="red"'], "receiver": "life_safety",
        "group_wait": "0s", "repeat_interval": "15m"})
    config = config_with(route=raw["route"])
    svc = await make_service(config=config)
    await _district(svc)
    rules, digest = load_rules()
    async with pool.acquire() as conn:
        await grade_all(conn, rules, digest, now=T0, actor="test")
        registry = await load_registry(conn)
    # S2 is 红, S1 橙: the same kind of alarm goes to the red route at S2 only
    at_s2, route_s2, _ = place(ev("gas.high", "G2-GAS1", "S2", at=T0 + D), registry, config, ())
    at_s1, route_s1, _ = place(ev("gas.high", "S1-GAS1", "S1", at=T0 + D), registry, config, ())
    assert at_s2.labels["risk_grade"] == "red" and route_s2.id.endswith("red-risk-site")
    assert at_s1.labels["risk_grade"] == "orange" and route_s1.id != route_s2.id
    # and through the service: the stored alert names the route and carries the label
    e = ev("gas.high", "G2-GAS2", "S2", at=T0 + D)
    await svc.handle_events([e])
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT route_id, labels->>'risk_grade' AS g FROM alerts WHERE id = $1", e.id)
    assert row["g"] == "red" and row["route_id"] == route_s2.id


@pytest.mark.asyncio
async def test_api_risk_sites_is_scoped_and_in_chinese(pg_dsn: str, pool: asyncpg.Pool,
                                                     make_service: ServiceFactory) -> None:
    import httpx

    from console.app import create_app
    from console.users import create_demo_accounts
    from console.words import has_latin
    from hazmon.settings import PostgresSettings, Settings

    svc = await make_service()
    await _district(svc)
    rules, digest = load_rules()
    async with pool.acquire() as conn:
        await grade_all(conn, rules, digest, now=T0, actor="system:risk")
        await create_demo_accounts(conn, password="risk-api-pw")
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)), clock=lambda: T0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
            auth = {}
            for user in ("demo-centre", "demo-township", "demo-dept", "demo-business", "demo-vendor"):
                r = await c.post("/api/auth/login", json={"username": user, "password": "risk-api-pw"})
                assert r.status_code == 200, r.text
                auth[user] = {"Authorization": f"Bearer {r.json()['token']}"}

            async def get(user: str, path: str = "/api/risk/sites", **params: str) -> httpx.Response:
                return await c.get(path, params=params, headers=auth[user])

            centre = (await get("demo-centre")).json()
            # 红 first, then by score
            assert [(i["site_id"], i["grade"], i["score"]) for i in centre["items"]] == [
                ("S2", "red", 85), ("S1", "orange", 74), ("S3", "orange", 55), ("S6", "orange", 35),
                ("S4", "blue", 10), ("S5", "blue", 10)]
            s2 = centre["items"][0]
            keys = ("site_name", "township_id", "grade_zh", "grade_name", "township_name")
            assert {k: s2[k] for k in keys} == {
                "site_name": "幸福商场", "township_id": "T1", "grade_zh": "红", "grade_name": "重大风险",
                "township_name": "东城街道"}
            assert s2["reasons"] == EXPECTED["S2"][2]
            assert centre["counts"] == {"red": 1, "orange": 3, "yellow": 0, "blue": 2}
            assert [i["site_id"] for i in (await get("demo-centre", grade="orange")).json()["items"]] == [
                "S1", "S3", "S6"]
            assert [i["site_id"] for i in (await get("demo-centre", industry="餐饮")).json()["items"]] == ["S1"]
            # a township sees its sites; a department the sites with devices of its domains (消防: S2, S3)
            town = (await get("demo-township")).json()
            assert {i["site_id"] for i in town["items"]} == {"S1", "S2", "S6"}
            other = (await get("demo-township", township_id="T2")).json()
            assert other["items"] == []
            dept = (await get("demo-dept")).json()
            assert {i["site_id"] for i in dept["items"]} == {"S2", "S3"}
            assert (await get("demo-business")).status_code == 403
            assert (await get("demo-vendor")).status_code == 403
            # a site's history; another township's site looks unknown
            h = (await get("demo-township", "/api/risk/sites/S2/history")).json()
            assert [(x["from_zh"], x["to_zh"], x["by"]) for x in h["items"]] == [("未评级", "红", "定时评定")]
            r = await get("demo-township", "/api/risk/sites/S3/history")
            assert r.status_code == 404 and not has_latin(r.json()["detail"])


@pytest.mark.asyncio
async def test_the_timers_grade_every_site_and_a_refused_file_changes_nothing(
        pool: asyncpg.Pool, make_service: ServiceFactory, tmp_path: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    from alerting.service import TickReport

    svc = await make_service()
    await _district(svc)
    await svc.flush_and_escalate(T0, TickReport())  # the timers' first tick grades every site
    async with pool.acquire() as conn:
        assert {k: g.grade for k, g in (await store.current_grades(conn)).items()} == {
            k: v[0] for k, v in EXPECTED.items()}
        before = await conn.fetch("SELECT * FROM risk_grades ORDER BY site_id")
    # a tick before risk.EVERY has passed grades nothing (no query)
    assert await risk.periodic(pool, T0 + timedelta(minutes=1)) is None
    # a file that fails validation: logged, the grades as they were
    bad = tmp_path / "risk_rules.yaml"
    bad.write_text("window_days: 30\ngrades: {red: 80, orange: 55, yellow: 35}\n"
                   "factors: {a: {all_of: [a], reason: 甲, points: 1}}\n", encoding="utf-8")
    await _alarm(svc, "S1-GAS1", "S1", T0 + timedelta(minutes=2), Verdict.REAL)
    assert await risk.periodic(pool, T0 + risk.EVERY, rules_file=bad) is None
    assert "factors.a.all_of: factors refer to each other in a cycle: a → a" in caplog.text
    async with pool.acquire() as conn:
        assert await conn.fetch("SELECT * FROM risk_grades ORDER BY site_id") == before
