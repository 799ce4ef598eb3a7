"""Quiet hours (夜间免扰) and the morning digest, and the outcome SMS (办结), on real services:
PostgreSQL, the alerting service and the SMS gateway simulator over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest
import yaml
from alerting_helpers import ServiceFactory, ev, messages, raw_routes, resolved

from alerting import followup
from alerting import lifecycle as lc
from alerting.clock import ManualClock
from alerting.config import parse_config
from alerting.quiet import QuietHours, window_end
from hazmon.contracts import Severity, Verdict
from hazmon.errors import ConfigError

NIGHT = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # 23:00 Beijing time
MORNING = datetime(2026, 11, 3, 23, 0, tzinfo=UTC)  # 07:00 Beijing time: the window's end
BOSS, GRID, DUTY = "13800001001", "13800000201", "13900000000"  # 老王饭店, 张网格, the centre


def quiet_config(**quiet: Any) -> Any:
    raw = raw_routes()
    raw["route"]["quiet_hours"] = quiet or {"from": "22:00", "to": "07:00"}
    return parse_config(raw, file="test-routes.yaml")


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


# --- the window and the routes file ----------------------------------------------------------------

def test_the_window_spans_midnight_in_beijing_time() -> None:
    qh = QuietHours(time(22), time(7))
    assert window_end(qh, NIGHT) == MORNING
    assert window_end(qh, MORNING - timedelta(seconds=1)) == MORNING
    assert window_end(qh, MORNING) is None  # 07:00 is day again
    assert window_end(qh, datetime(2026, 11, 3, 13, 59, tzinfo=UTC)) is None  # 21:59
    day = QuietHours(time(12), time(14))  # a window inside one day (午休)
    assert window_end(day, datetime(2026, 11, 3, 5, 0, tzinfo=UTC)) == datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
    assert window_end(day, NIGHT) is None


def test_routes_file_quiet_hours_are_inherited_and_turned_off_below() -> None:
    raw = raw_routes()
    # YAML 1.1 reads an unquoted 22:00 as the number 1320: taken as the time it says
    raw["route"]["quiet_hours"] = yaml.safe_load("{from: 22:00, to: 07:00, keep: [red]}")
    for r in raw["route"]["routes"]:
        if r["name"] == "faults":
            r["quiet_hours"] = False
    cfg = parse_config(raw, file="t.yaml")
    routes = {r.id: r for r in cfg.route.walk()}
    assert routes["offline"].quiet_hours == QuietHours(time(22), time(7), frozenset({"red"}))
    assert routes["faults"].quiet_hours is None


@pytest.mark.parametrize("bad", [{"from": "25:00", "to": "07:00"}, {"from": "22:00", "to": "22:00"},
                                 {"from": "22:00"}, {"from": "22:00", "to": "07:00", "keep": ["purple"]}])
def test_a_bad_window_is_refused_with_its_path(bad: dict[str, Any]) -> None:
    raw = raw_routes()
    raw["route"]["quiet_hours"] = bad
    with pytest.raises(ConfigError, match="quiet_hours"):
        parse_config(raw, file="t.yaml")


# --- in the night, and in the morning ----------------------------------------------------------------

async def test_at_night_only_red_goes_out_and_the_rest_waits_for_one_morning_digest(
        make_service: ServiceFactory, pool: asyncpg.Pool, sim: Any, clock: ManualClock) -> None:
    clock.set(NIGHT)
    svc = await make_service(config=quiet_config())
    fault = ev("gas.sensor_fault", "S1-GAS1", "S1", at=NIGHT, severity=Severity.YELLOW)
    fault2 = ev("gas.valve_fault", "G2", "S2", at=NIGHT, severity=Severity.YELLOW)
    leak = ev("gas.high", "S1-GAS1", "S1", at=NIGHT + timedelta(minutes=5), severity=Severity.RED)
    await svc.handle_events([fault, fault2])
    clock.set(NIGHT + timedelta(minutes=5))
    await svc.handle_events([leak])
    await svc.tick()
    clock.set(NIGHT + timedelta(minutes=6))
    await svc.tick()
    # the red gas alarm reached the business at once; the yellow faults woke nobody
    boss = [m["body"] for m in await messages(sim, BOSS)]
    assert len(boss) == 1 and "燃气" in boss[0] and "红色" in boss[0], boss
    assert await messages(sim, GRID) and all("故障" not in m["body"] for m in await messages(sim, GRID))
    held = await q(pool, "SELECT recipient_phone, channel, last_error FROM notifications WHERE status='held'")
    assert {(r["recipient_phone"], r["channel"]) for r in held} >= {(BOSS, "sms"), (GRID, "sms")}
    assert all("夜间免扰（22:00至07:00），07:00并入晨间汇总发送" == r["last_error"] for r in held), held
    # the console entries of the faults are there at once (they wake nobody)
    console = await q(pool, "SELECT count(*) AS n FROM notifications WHERE channel='console' AND "
                            "alert_id = ANY($1::text[])", [fault.id, fault2.id])
    assert console[0]["n"] == 2
    # one fault recovers in the night
    clock.set(NIGHT + timedelta(hours=2))
    await svc.handle_events([resolved(fault, NIGHT + timedelta(hours=2))])
    await svc.tick()  # the red alarm's reminders and 四单 go on; nothing of the faults
    assert not [m for m in await messages(sim, BOSS) if "故障" in m["body"] or "夜间免扰" in m["body"]]

    clock.set(MORNING + timedelta(seconds=1))
    await svc.tick()
    await svc.tick()  # a second pass sends no second digest
    digests = [m["body"] for m in await messages(sim, BOSS) if "夜间免扰" in m["body"]]
    assert len(digests) == 1, digests
    digest = digests[0]
    assert digest.startswith("夜间免扰（22:00至07:00）期间暂缓发送的报警：老王饭店：") and "已恢复" in digest, digest
    grid = [m["body"] for m in await messages(sim, GRID) if "夜间免扰" in m["body"]]
    # the grid member heard of both sites' faults in one SMS: one recovered, one not
    assert len(grid) == 1 and "老王饭店" in grid[0] and "幸福商场" in grid[0], grid
    assert "已恢复" in grid[0] and "未解除" in grid[0], grid
    # every SMS of the night went into the digest (the 风险警示单 due at 07:00 goes out as day)
    left = await q(pool, "SELECT status, last_error FROM notifications WHERE alert_id = ANY($1::text[]) "
                         "AND channel='sms' AND created_at < $2", [fault.id, fault2.id], MORNING)
    assert left and all(r["status"] == "suppressed" and r["last_error"].startswith("夜间免扰，已并入晨间汇总（n-")
                        for r in left), left
    attempts = await q(pool, "SELECT outcome FROM notification_attempts a JOIN notifications n "
                             "ON n.id = a.notification_id WHERE n.alert_id=$1", fault.id)
    assert "digested" in {a["outcome"] for a in attempts}


async def test_a_window_that_keeps_yellow_sends_it_at_night(
        make_service: ServiceFactory, pool: asyncpg.Pool, sim: Any, clock: ManualClock) -> None:
    clock.set(NIGHT)
    svc = await make_service(config=quiet_config(**{"from": "22:00", "to": "07:00",
                                                    "keep": ["red", "orange", "yellow"]}))
    await svc.handle_events([ev("gas.sensor_fault", "S1-GAS1", "S1", at=NIGHT, severity=Severity.YELLOW)])
    clock.set(NIGHT + timedelta(minutes=2))
    await svc.tick()
    assert any("故障" in m["body"] for m in await messages(sim, BOSS))
    assert not await q(pool, "SELECT 1 FROM notifications WHERE status='held'")


# --- the outcome SMS -------------------------------------------------------------------------------

@pytest.mark.parametrize(("verdict", "words"), [(Verdict.FALSE, "经核实为误报，已办结"),
                                                (Verdict.TEST, "经核实为测试，已办结")])
async def test_the_business_is_told_the_verdict_and_the_close_in_one_sms(
        verdict: Verdict, words: str, make_service: ServiceFactory, pool: asyncpg.Pool, sim: Any,
        clock: ManualClock) -> None:
    svc = await make_service()
    leak = ev("gas.high", "S1-GAS1", "S1", severity=Severity.RED)
    await svc.handle_events([leak])
    clock.advance(timedelta(seconds=15))
    await svc.tick()
    before = len(await messages(sim, BOSS))
    async with pool.acquire() as c:
        await lc.verify(c, leak.id, actor="op-wang", now=clock.now(), verdict=verdict, reason="现场核实")
        await svc.tick()
        assert len(await messages(sim, BOSS)) == before  # a verdict alone tells nobody yet
        done = await lc.close(c, leak.id, actor="op-wang", now=clock.now(), reason="现场核实无泄漏")
        assert done.applied
    clock.advance(timedelta(seconds=1))
    await svc.tick()
    await svc.tick()
    boss = [m["body"] for m in await messages(sim, BOSS)][before:]
    assert len(boss) == 1 and words in boss[0] and boss[0].startswith("老王饭店的"), boss
    assert "0571" in boss[0] or "值班电话" in boss[0]
    # the supervisors are not told: they closed it or saw it closed
    assert not [m for m in await messages(sim, GRID) if "已办结" in m["body"]]
    assert not [m for m in await messages(sim, DUTY) if "已办结" in m["body"]]


# --- repeats vary their wording ---------------------------------------------------------------------

async def test_each_reminder_reads_differently_so_same_text_limits_do_not_block_it(
        make_service: ServiceFactory, sim: Any, clock: ManualClock) -> None:
    # 腾讯云 refuses the same text to a number twice within 30 s; a reminder says when it was written
    svc = await make_service()
    await svc.handle_events([ev("gas.high", "S1-GAS1", "S1", severity=Severity.RED)])
    clock.advance(timedelta(seconds=15))
    await svc.tick()
    for _ in range(2):
        clock.advance(timedelta(hours=1, seconds=1))
        await svc.tick()
    again = [m["body"] for m in await messages(sim, BOSS) if m["body"].startswith("再次提醒")]
    assert len(again) == 2 and again[0] != again[1], again
    assert all("（截至11月3日" in b and "仍未解除" in b for b in again), again


# --- the follow-up passes only when due ------------------------------------------------------------

async def test_a_tick_with_nothing_due_runs_neither_follow_up_pass(
        make_service: ServiceFactory, pool: asyncpg.Pool, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The timers loop ticks every second: the digest and outcome passes (each a transaction)
    run only when their one due check (alerting/store/followup.py ``due``) says so. A spy counts
    the real passes (they still run)."""
    runs: list[str] = []

    def spy(name: str) -> Any:
        real = getattr(followup, name)

        async def counted(*args: Any, **kw: Any) -> int:
            runs.append(name)
            return int(await real(*args, **kw))
        return counted
    for name in ("send_digests", "send_outcomes"):
        monkeypatch.setattr(followup, name, spy(name))
    clock.set(NIGHT)
    svc = await make_service(config=quiet_config())
    fault = ev("gas.sensor_fault", "S1-GAS1", "S1", at=NIGHT, severity=Severity.YELLOW)
    await svc.handle_events([fault])
    for _ in range(3):  # held till 07:00, nothing closed: no pass
        clock.advance(timedelta(minutes=1))
        await svc.tick()
    assert runs == [] and await q(pool, "SELECT 1 FROM notifications WHERE status='held'")
    async with pool.acquire() as c:
        await lc.verify(c, fault.id, actor="op-wang", now=clock.now(), verdict=Verdict.FALSE, reason="误报")
        assert (await lc.close(c, fault.id, actor="op-wang", now=clock.now(), reason="误报")).applied
    for _ in range(3):  # the close is told once; then nothing is due again
        clock.advance(timedelta(seconds=1))
        await svc.tick()
    assert runs == ["send_outcomes"], runs
    assert await q(pool, "SELECT 1 FROM notifications WHERE alert_id=$1 AND template='outcome'", fault.id)
    clock.set(MORNING + timedelta(seconds=1))
    await svc.tick()
    await svc.tick()
    assert runs == ["send_outcomes", "send_digests"], runs
    assert not await q(pool, "SELECT 1 FROM notifications WHERE status='held'")
