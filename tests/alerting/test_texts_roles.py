"""A text per role, on the real services: the alerting service composes, the outbox sends over
HTTP to the SMS gateway simulator, and what the simulator received is read back.

The business reads what happened at its own site and what to do now; the grid member, the
department and the leaders read a supervision text (到场核实、督促处置) with the business's name
and contact. Every text names the device by where it is (the registry's 安装位置, a lift's 梯号
and 注册代码, a fire point's zone from the frame), the reading, the severity in words and the
centre's duty number; a link, where there is one, ends the text whole.
"""

from __future__ import annotations

import re
from datetime import timedelta

import asyncpg
from alerting_helpers import ServiceFactory, ev, messages

from alerting.clock import ManualClock
from alerting.templates import ACK_TOKEN_LEN, Deployment
from hazmon.contracts import Severity
from sim.gateway import SmsSimulator

DUTY = Deployment().duty_phone
LINK = re.compile(r"，或点http://ack\.test/a/([0-9A-Za-z_-]+)$")
BUSINESS_S1, GRID_V1 = "13800001001", "13800000201"


async def _locate(pool: asyncpg.Pool, device: str, location: str, reg_code: str = "") -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE devices SET location=$2, reg_code=$3 WHERE id=$1",
                           device, location, reg_code)


def _whole_link(body: str) -> None:
    m = LINK.search(body)
    assert m and len(m.group(1)) == ACK_TOKEN_LEN, body  # the token whole, nothing after it
    assert "【" not in body and "】" not in body  # the provider adds the signature


async def test_business_and_grid_member_get_different_texts_naming_the_location(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    await _locate(pool, "S1-GAS1", "后厨灶台上方")
    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1", severity=Severity.ORANGE).model_copy(
        update={"summary": "可燃气体浓度 23 %LEL ≥ 20"})
    await svc.handle_events([gas])
    clock.advance(timedelta(minutes=3))  # past the orange route's group wait
    await svc.tick()
    (biz,) = [m["body"] for m in await messages(sim, BUSINESS_S1)]
    (grid,) = [m["body"] for m in await messages(sim, GRID_V1)]
    assert biz != grid
    for body in (biz, grid):
        assert "老王饭店的后厨灶台上方发生可燃气体浓度超高限报警，浓度23%LEL" in body, body
        assert body.startswith("橙色报警：") and f"中心值班电话{DUTY}" in body
        _whole_link(body)
    # the business: what to do now, as gas practice has it
    assert "关闭燃气阀门" in biz and "严禁开关电器、使用明火" in biz and "119" in biz
    assert "到场核实" not in biz
    # the grid member: supervise, with the business's contact; not the business's instructions
    assert "请到场核实、督促企业处置，企业联系人老王，电话13800001001" in grid
    assert "关闭燃气阀门" not in grid and "开窗通风" not in grid
    # every message says which registered template it came from; each number its own code
    sent = await messages(sim)
    assert {m["params"]["_tpl"] for m in sent if m["phone"] == BUSINESS_S1} == {"alarm.biz.gas_leak_l"}
    assert {m["params"]["_tpl"] for m in sent if m["phone"] == GRID_V1} == {"alarm.sup.gas_l"}


async def test_a_lift_is_named_by_its_number_and_registration_code(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory,
) -> None:
    await _locate(pool, "E6", "2号楼1单元 3号梯", "31103301152017432274")
    svc = await make_service()
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    (biz,) = [m["body"] for m in await messages(sim, "13800006001")]
    assert biz.startswith("红色报警：安居小区的2号楼1单元 3号梯（注册代码31103301152017432274）"
                          "发生电梯困人"), biz
    assert "通知维保单位到场救援" in biz and "安抚被困人员" in biz
    _whole_link(biz)
    others = [m for m in await messages(sim) if m["phone"] != "13800006001"]
    assert others  # the grid member and 市监 at least
    for m in others:
        assert "3号梯（注册代码31103301152017432274）" in m["body"]
        assert "企业联系人物业吴，电话13800006001" in m["body"]
        assert "安抚被困人员" not in m["body"]
        _whole_link(m["body"])


async def test_a_fire_point_is_named_by_the_zone_the_frame_carried(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    fire = ev("fire.alarm", "P2", "S2", component="023").model_copy(update={"zone": "3F 东侧走廊"})
    await svc.handle_events([fire])
    clock.advance(timedelta(minutes=3))
    await svc.tick()
    (biz,) = [m["body"] for m in await messages(sim, "13800002001")]
    assert "幸福商场的3F 东侧走廊 023号点位发生火灾报警" in biz and "消防主机" not in biz, biz
    assert "核实火情" in biz
    for m in await messages(sim):
        assert "3F 东侧走廊 023号点位" in m["body"]
        _whole_link(m["body"])
