"""四单 as the seeds mean them, on the real services (PostgreSQL, the SMS gateway simulator over
HTTP): notices in the 区安委办's name to the township and the department, never to the business;
a text per level whose deadline reads as one; the leader's 问责建议单 a record of who failed to
act, not a task to verify a fire; the register (通知单台账) per unit."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import asyncpg
import pytest
from alerting_helpers import ROUTES, ServiceFactory, ev, messages, raw_routes

from alerting.clock import ManualClock
from alerting.config import load_config, parse_config
from alerting.errors import RouteConfigError
from alerting.escalation import EscalationPolicy, EscalationStep
from hazmon.contracts import NoticeLevel, RecipientRole, Severity
from sim.gateway import SmsSimulator

aio = pytest.mark.asyncio(loop_scope="session")

BUSINESS, GRID, TOWNSHIP, ZJ, LEADER, DUTY = ("13800001001", "13800000201", "13800000101", "13800000301",
                                              "13800000401", "13900000000")


def _notices(msgs: list[dict], level: str) -> dict[str, str]:
    return {m["phone"]: m["body"] for m in msgs if m["template"] == "notice" and level in m["body"][:12]}


async def _ladder(svc: object, clock: ManualClock) -> None:
    for step in (timedelta(seconds=10), timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=15),
                 timedelta(hours=2)):  # red: 提醒 5m, 警示 15m, 督办 30m, 问责 2h30m
        clock.advance(step)
        await svc.tick()  # type: ignore[attr-defined]


@aio
async def test_the_four_notices_read_as_the_seeds_mean_them(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await svc.handle_events([ev("gas.high", "S1-GAS1", "S1")])
    await _ladder(svc, clock)
    msgs = await messages(sim)
    # the business got its alarm, and no notice addressed to a government
    assert [m for m in msgs if m["phone"] == BUSINESS and m["template"] == "alarm"]
    assert not [m for m in msgs if m["phone"] == BUSINESS and m["template"] == "notice"]
    reminder, warning = _notices(msgs, "工作提醒单"), _notices(msgs, "风险警示单")
    supervision, record = _notices(msgs, "问题督办单"), _notices(msgs, "问责建议单")
    assert set(reminder) == {GRID, TOWNSHIP} and set(warning) == {TOWNSHIP, ZJ}
    assert set(supervision) == {TOWNSHIP, ZJ} and set(record) == {LEADER, DUTY}
    for texts, ask in ((reminder, "于11月3日09:15前反馈处置情况"), (warning, "于11月3日09:30前反馈核实结果"),
                       (supervision, "限11月3日11:30前处置到位，并书面回复处置措施、责任人和整改结果")):
        for body in texts.values():
            assert body.startswith("区安委办") and ask in body, body
            assert "立即" not in body and not re.search(r"请于.{0,20}前立即", body), body
            assert "老王饭店的可燃气体浓度超高限报警（红色报警）自11月3日09:00起" in body, body
    # the leader's 问责建议单: who failed to act since when, the recommendation; no task, no reply code
    body = record[LEADER]
    assert body.startswith("区安委办问责建议单（内部记录）：") and "立即核实" not in body and "到场" not in body
    assert "东城街道、区住建局收到问题督办单后逾期未办结（期限11月3日11:30）" in body, body
    assert "建议按规定启动问责程序" in body and "回复" not in body and "http" not in body, body
    async with pool.acquire() as conn:
        units = await conn.fetch(
            """SELECT n.level, n.issued_by, u.unit_kind, u.unit_id, u.unit_name, u.roles FROM notice_units u
               JOIN notices n ON n.id = u.notice_id ORDER BY n.step, u.unit_kind, u.unit_id""")
        concerning = await conn.fetchval("SELECT concerning FROM notices WHERE level='accountability'")
    got = [(u["level"], u["unit_kind"], u["unit_id"]) for u in units]
    assert got == [("reminder", "township", "T1"), ("warning", "department", "zj"), ("warning", "township", "T1"),
                   ("supervision", "department", "zj"), ("supervision", "township", "T1"),
                   ("accountability", "centre", "duty"), ("accountability", "leader", "L1")]
    assert {u["issued_by"] for u in units} == {"区安委办"}
    assert set(units[0]["roles"]) == {"grid_member", "township"}  # the grid member's notice is 属地's
    assert '"东城街道"' in concerning and '"区住建局"' in concerning


@aio
async def test_the_issuer_is_configurable_and_a_record_without_a_notice_before_names_the_units(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    raw = raw_routes()
    raw["notice_issuer"] = "临江区安委办"
    raw["escalation"] = {"red": [{"level": "问责建议单", "after": "1h", "roles": ["leader"],
                                  "stop_when": "handling"}]}
    svc = await make_service(config=parse_config(raw))
    await svc.handle_events([ev("gas.high", "S1-GAS1", "S1")])
    clock.advance(timedelta(seconds=10))
    await svc.tick()
    clock.advance(timedelta(hours=1))
    await svc.tick()
    (body,) = _notices(await messages(sim), "问责建议单").values()
    assert body.startswith("临江区安委办问责建议单（内部记录）：") and "东城街道、区住建局未按要求督促处置" in body, body
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT issued_by FROM notices") == "临江区安委办"


@aio
async def test_a_notice_never_reaches_a_business_phone_even_if_a_ladder_names_it(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    # routes.yaml refuses such a ladder at load (below); a config built in code must not get through either
    cfg = load_config(ROUTES)
    ladder = EscalationPolicy(Severity.RED, (EscalationStep(NoticeLevel.REMINDER, timedelta(minutes=5),
                                                            (RecipientRole.BUSINESS, RecipientRole.TOWNSHIP)),))
    svc = await make_service(config=dataclasses.replace(cfg, escalation={Severity.RED: ladder}))
    await svc.handle_events([ev("gas.high", "S1-GAS1", "S1")])
    clock.advance(timedelta(seconds=10))
    await svc.tick()
    clock.advance(timedelta(minutes=5))
    await svc.tick()
    msgs = await messages(sim)
    assert set(_notices(msgs, "工作提醒单")) == {TOWNSHIP}
    assert not [m for m in msgs if m["phone"] == BUSINESS and m["template"] == "notice"]
    async with pool.acquire() as conn:
        roles = await conn.fetchval("SELECT recipients FROM notices")
    assert '"business"' not in roles


@pytest.mark.parametrize(("level", "role", "why"), [
    ("工作提醒单", "business", "a business gets the alarm and its reminders"),
    ("风险警示单", "maintainer", "townships and departments"),
    ("问题督办单", "leader", "a leader the 问责建议单"),
    ("问责建议单", "township", "an internal recommendation about the units"),
])
def test_a_ladder_addressed_to_the_wrong_unit_is_refused_with_its_path(level: str, role: str, why: str) -> None:
    raw = raw_routes()
    step = next(i for i, s in enumerate(raw["escalation"]["red"]) if s["level"] == level)
    raw["escalation"]["red"][step]["roles"] = ["department", role] if level != "问责建议单" else ["leader", role]
    with pytest.raises(RouteConfigError) as exc:
        parse_config(raw, file="routes.yaml")
    problems = dict(exc.value.problems)
    assert why in problems[f"escalation.red[{step}].roles[1]"], problems
