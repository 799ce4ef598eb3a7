"""三色区域预警 over the test district (alerting_helpers): alarms through alerting's intake with their
研判, hazards through the ledger, an accident through alerting/accidents.py; the warnings computed
by hand below; new → raised → lowered → lifted in the history with its audit; messages only for
new and raised warnings (a repeat evaluation tells nobody), read at the SMS gateway simulator as
the duty rooms, the departments, the business and the grid member receive them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from alerting_helpers import ROUTES, T0, ServiceFactory, ev, messages

from alerting import area_warning
from alerting import lifecycle as lc
from alerting.accidents import NewAccident, add_accident
from alerting.area_warning import run_pass
from alerting.area_warning_rules import DEFAULT_RULES_FILE as ROOT_RULES
from alerting.area_warning_rules import parse_rules
from alerting.errors import InvalidAction
from alerting.ledger import find_hazard, register_hazard, supervise_hazard
from alerting.service import AlertingService, TickReport
from alerting.store.area_warning import warnings_with_history
from hazmon.contracts import Verdict
from sim.gateway import SmsSimulator

D = timedelta(days=1)
RULES = parse_rules(
    {
        "every": "1m",
        "measures": {
            "real": {
                "name": "近30天真实警情",
                "unit": "起",
                "from": "alarms",
                "days": 30,
                "verdicts": ["real"],
            },
            "overdue": {"name": "逾期未整改隐患", "unit": "项", "from": "hazards", "overdue": True},
            "major": {"name": "未整改重大隐患", "unit": "项", "from": "hazards", "grade": "major"},
            "accidents": {"name": "近一年生产安全事故", "unit": "起", "from": "accidents", "days": 365},
            "deaths": {
                "name": "近一年事故死亡",
                "unit": "人",
                "from": "accidents",
                "days": 365,
                "count": "deaths",
            },
            "red_sites": {"name": "红色预警点位", "unit": "个", "from": "site_warnings", "level": "red"},
            "warned": {"name": "预警点位", "unit": "个", "from": "site_warnings"},
            "score": {"name": "隐患风险分", "unit": "分", "from": "sum", "terms": {"overdue": 2, "major": 5}},
        },
        "levels": {
            "site": {
                "red": [{"deaths": 1}, {"real": 3}],
                "orange": [{"major": 1}, {"real": 2}],
                "yellow": [{"overdue": 1}, {"real": 1}],
            },
            "township": {
                "red": [{"red_sites": 2}],
                "orange": [{"red_sites": 1}, {"score": 10}],
                "yellow": [{"warned": 1}],
            },
            "industry": {"red": [{"accidents": 2}], "orange": [{"accidents": 1}], "yellow": [{"warned": 2}]},
        },
    },
    file="test",
)


async def _alarm(svc: AlertingService, device: str, site: str, at: Any, verdict: Verdict) -> None:
    e = ev("gas.high" if device.startswith(("S1", "G2")) else "fire.alarm", device, site, at=at)
    await svc.handle_events([e])
    async with svc.pool.acquire() as conn:
        assert (
            await lc.verify(
                conn, e.id, actor="centre1", now=at + timedelta(minutes=5), verdict=verdict, reason="研判"
            )
        ).applied


async def _district(svc: AlertingService) -> None:
    """S1 老王饭店: 2 real gas alarms and a false one; S2 幸福商场: a 重大隐患 and an overdue one;
    S3 夕阳红养老院: an accident with 1 death."""
    await _alarm(svc, "S1-GAS1", "S1", T0 - 3 * D, Verdict.REAL)
    await _alarm(svc, "S1-GAS1", "S1", T0 - 2 * D, Verdict.REAL)
    await _alarm(svc, "S1-GAS1", "S1", T0 - 1 * D, Verdict.FALSE)  # 误报: not counted
    async with svc.pool.acquire() as conn:
        await find_hazard(
            conn,
            actor="insp",
            now=T0 - 10 * D,
            site_id="S2",
            domain="fire",
            grade="major",
            title="疏散通道堵塞",
            hazard_id="H-major",
        )
        await find_hazard(
            conn,
            actor="insp",
            now=T0 - 10 * D,
            site_id="S2",
            domain="gas",
            title="软管老化",
            hazard_id="H-late",
        )
        await register_hazard(conn, "H-late", actor="insp", now=T0 - 10 * D, reason="登记")
        assert (
            await supervise_hazard(
                conn,
                "H-late",
                actor="insp",
                now=T0 - 10 * D,
                deadline=T0 - 1 * D,
                supervisor="东城街道",
                reason="督办",
                owner="刘经理",
                measures="更换软管",
                funds="企业自筹",
                plan="关阀疏散",
            )
        ).applied
        await add_accident(
            conn,
            NewAccident(
                occurred_at=T0 - 20 * D,
                township_id="T2",
                site_id="S3",
                domain="fire",
                level="general",
                deaths=1,
                injuries=2,
                title="厨房火灾",
            ),
            actor="centre1",
            now=T0,
            accident_id="acc-1",
        )


def _levels(rows: list[dict]) -> dict[tuple[str, str], str]:
    return {(r["scope"], r["key"]): r["level"] for r in rows if r["lifted_at"] is None}


async def _sent(svc: AlertingService, sim: SmsSimulator, now: Any) -> dict[str, list[str]]:
    await svc.send_due(now, TickReport())
    out: dict[str, list[str]] = {}
    for m in await messages(sim):
        out.setdefault(m["phone"], []).append(f"【{m['sign_name']}】{m['body']}")  # as the phone shows it
    return out


@pytest.mark.asyncio
async def test_warnings_by_area_raised_lowered_lifted_and_who_is_told(
    pool: asyncpg.Pool, make_service: ServiceFactory, sim: SmsSimulator
) -> None:
    svc = await make_service()
    await _district(svc)
    ctx = svc._context()

    res = await run_pass(pool, ctx, RULES, T0)
    async with pool.acquire() as conn:
        rows = await warnings_with_history(conn)
    # by hand: S1 real 2 → 橙; S2 major 1 → 橙 (its overdue one only 黄); S3 deaths 1 → 红;
    # 东城街道 (S1, S2): no red site, score 2×1 + 5×1 = 7 < 10, 2 warned sites → 黄;
    # 西山镇 (S3): 1 red site → 橙; 消防 line: 1 accident → 橙; 燃气 line: S1 and S2 (gas devices) → 黄
    assert _levels(rows) == {
        ("site", "S1"): "orange",
        ("site", "S2"): "orange",
        ("site", "S3"): "red",
        ("township", "T1"): "yellow",
        ("township", "T2"): "orange",
        ("industry", "fire"): "orange",
        ("industry", "gas"): "yellow",
    }
    assert (res.new, res.raised, res.lowered, res.lifted) == (7, 0, 0, 0)
    by = {(r["scope"], r["key"]): r for r in rows}
    assert by[("site", "S1")]["reasons"] == ["近30天真实警情2起，达到橙色预警标准（2起）"]
    assert by[("site", "S3")]["reasons"] == ["近一年事故死亡1人，达到红色预警标准（1人）"]
    assert by[("township", "T2")]["name"] == "西山镇" and by[("industry", "fire")]["name"] == "消防"
    assert by[("site", "S2")]["measures"] == {"major": 1.0, "overdue": 1.0, "real": 0.0, "deaths": 0.0}

    texts = await _sent(svc, sim, T0)
    # 片 → the township's duty room; 线 → the departments of the domain (消防: 应急 and 消防救援, not
    # 民政, whose rule is for 养老 only); 点 → the business and its grid member
    assert texts["13800000102"] == [
        "【区应急指挥中心】区域安全风险橙色预警：西山镇片区发布橙色预警，原因：红色预警点位1个。"
        "请3日内组织辖区重点排查，督促逾期隐患限期整改，并在平台反馈。中心值班电话0571-88001110。"
    ]
    fire_text = (
        "【区应急指挥中心】行业领域安全风险橙色预警：全区消防行业发布橙色预警，原因：近一年生产安全事故1起。"
        "请行业主管部门3日内组织本行业重点检查，督促隐患限期整改。中心值班电话0571-88001110。"
    )
    assert texts["13800000303"] == [fire_text] and texts["13800000304"] == [fire_text]
    assert "13800000305" not in texts
    s3 = (
        "【区应急指挥中心】重点点位安全风险红色预警：夕阳红养老院（点位）发布红色预警，原因：近一年事故死亡1人。"
        "请企业主要负责人立即组织排查整改，必要时停业整改；网格员督促落实并在平台反馈。中心值班电话0571-88001110。"
    )
    assert s3 in texts["13800003001"] and s3 in texts["13800000202"]  # 孙院长, 李网格
    assert "东城街道片区发布黄色预警" in texts["13800000101"][0]
    assert "全区燃气行业发布黄色预警，原因：预警点位2个" in texts["13800000301"][0]
    assert "老王饭店（点位）发布橙色预警，原因：近30天真实警情2起" in texts["13800001001"][0]
    first = sum(len(v) for v in texts.values())

    # the same figures again: nothing new, nobody told twice
    res = await run_pass(pool, ctx, RULES, T0 + timedelta(minutes=1))
    assert (res.new, res.raised, res.kept, res.queued) == (0, 0, 7, 0)
    assert sum(len(v) for v in (await _sent(svc, sim, T0 + timedelta(minutes=1))).values()) == first

    # a third real alarm at S1: S1 橙 → 红, so 东城街道 has a red site: 黄 → 橙
    await _alarm(svc, "S1-GAS1", "S1", T0 + timedelta(minutes=2), Verdict.REAL)
    res = await run_pass(pool, ctx, RULES, T0 + timedelta(minutes=10))
    assert (res.new, res.raised, res.lowered, res.lifted) == (0, 2, 0, 0)
    texts = await _sent(svc, sim, T0 + timedelta(minutes=10))
    assert texts["13800001001"][-1].startswith(
        "【区应急指挥中心】重点点位安全风险红色预警：老王饭店（点位）由橙色预警升为红色预警，原因：近30天真实警情3起。"
    )
    assert texts["13800000101"][-1].startswith(
        "【区应急指挥中心】区域安全风险橙色预警：东城街道片区由黄色预警升为橙色预警，原因：红色预警点位1个。"
    )
    assert sum(len(v) for v in texts.values()) == first + 3  # 老王, 张网格 (S1's grid member), 东城值班

    # 31 days on: S1's alarms leave the window (lifted), 东城街道 has one warned site (橙 → 黄),
    # the 燃气 line one warned site (lifted); nobody is told of a lowering or a lift
    later = T0 + 31 * D
    res = await run_pass(pool, ctx, RULES, later)
    assert (res.new, res.raised, res.lowered, res.lifted, res.queued) == (0, 0, 1, 2, 0)
    async with pool.acquire() as conn:
        every = await warnings_with_history(conn, active_only=False)
    assert _levels(every) == {
        ("site", "S2"): "orange",
        ("site", "S3"): "red",
        ("township", "T1"): "yellow",
        ("township", "T2"): "orange",
        ("industry", "fire"): "orange",
    }
    s1 = next(r for r in every if r["key"] == "S1")
    assert [(h["action"], h["from_level"], h["to_level"]) for h in s1["history"]] == [
        ("new", None, "orange"),
        ("raise", "orange", "red"),
        ("lift", "red", None),
    ]
    assert s1["lifted_at"] == later
    t1 = next(r for r in every if r["key"] == "T1")
    assert [h["action"] for h in t1["history"]] == ["new", "raise", "lower"]
    audit = t1["history"][1]
    assert audit["actor"] == "system:area_warning" and audit["at"] == T0 + timedelta(minutes=10)
    assert audit["detail"]["told"] == ["东城值班（东城街道）"] and len(audit["detail"]["notifications"]) == 2
    assert t1["history"][2]["detail"] == {}  # a lowering tells nobody
    assert sum(len(v) for v in (await _sent(svc, sim, later)).values()) == first + 3


@pytest.mark.asyncio
async def test_an_accident_is_checked_before_it_is_recorded(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(InvalidAction) as exc:
            await add_accident(
                conn,
                NewAccident(
                    occurred_at=T0 - D,
                    township_id="T1",
                    site_id="S3",
                    domain="gas",
                    level="general",
                    deaths=3,
                    title="燃气爆炸",
                ),
                actor="c",
                now=T0,
            )
        assert str(exc.value) == "死亡3人至少为较大事故，与所填等级不符；场所 'S3' 不在所填镇街内"
        with pytest.raises(InvalidAction, match="事故发生时间不能晚于现在"):
            await add_accident(
                conn,
                NewAccident(occurred_at=T0 + D, township_id="T1", domain="gas", level="general", title="x"),
                actor="c",
                now=T0,
            )
        assert await conn.fetchval("SELECT count(*) FROM accidents") == 0
        aid = await add_accident(
            conn,
            NewAccident(
                occurred_at=T0 - D, township_id="T1", domain="gas", level="larger", deaths=3, title="燃气爆炸"
            ),
            actor="c1",
            now=T0,
        )
        row = await conn.fetchrow(
            "SELECT action, actor, detail FROM accident_audit WHERE accident_id = $1", aid
        )
        assert (row["action"], row["actor"]) == ("add", "c1")


@pytest.mark.asyncio
async def test_the_alerting_timers_run_the_pass_every_every(
    pool: asyncpg.Pool, make_service: ServiceFactory, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's timers with the shipped rules (every 10m), as ``hazmon alerting`` enables them
    (a service made for other timers' tests does not run it): nothing at the first tick after start,
    the pass once 10 minutes have gone by, then not again until the next 10 minutes."""
    svc = await make_service()
    await _district(svc)
    monkeypatch.setattr(area_warning, "TIMER_RULES", None)
    assert area_warning.enable_timers(ROUTES) == ROOT_RULES  # beside routes.yaml: the shipped file
    clock.set(T0)
    await svc.tick()  # first tick after start: nothing yet

    async def count() -> int:
        async with pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM area_warning_history"))

    assert await count() == 0
    clock.set(T0 + timedelta(minutes=10, seconds=1))
    await svc.tick()
    # shipped rules: S1 real 2 → 黄, S2 a 重大隐患 and an overdue one → 红, S3 a death → 红; 东城街道
    # one red site → 橙
    async with pool.acquire() as conn:
        rows = await warnings_with_history(conn)
    levels = _levels(rows)
    assert levels[("site", "S1")] == "yellow" and levels[("site", "S2")] == "red"
    assert levels[("site", "S3")] == "red" and levels[("township", "T1")] == "orange"
    assert levels[("township", "T2")] == "red"  # a death in 西山镇
    n = await count()
    assert n == len(rows)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notifications WHERE template = 'area_warning'") > 0
    clock.set(T0 + timedelta(minutes=15))
    await svc.tick()
    assert await count() == n
