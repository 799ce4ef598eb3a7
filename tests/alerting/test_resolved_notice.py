"""恢复: when a told-about life-safety alarm resolves, the people who were told hear it within the
route's group_wait — not at the group's next group_interval flush, up to 5 minutes later."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alerting_helpers import ServiceFactory, ev, messages, resolved

from alerting.clock import ManualClock
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_gas_high_resolution_is_told_within_group_wait(
    sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1")
    await svc.handle_events([gas])
    clock.advance(10)  # gas-high: group_wait 10 s (life_safety, send_resolved), group_interval 5 m
    await svc.tick()
    told = {m["phone"] for m in await messages(sim)}
    assert told and not any("解除" in m["body"] for m in await messages(sim))

    clock.advance(timedelta(minutes=1))
    await svc.handle_events([resolved(gas, clock.now())])
    await svc.tick()  # group_wait not over yet: the burst of resolutions may still grow
    assert not any("解除" in m["body"] for m in await messages(sim))
    clock.advance(10)
    await svc.tick()
    cleared = [m for m in await messages(sim) if "解除" in m["body"]]
    assert {m["phone"] for m in cleared} == told
    assert all("老王饭店" in m["body"] and "可燃气体浓度超高限报警" in m["body"] for m in cleared)

    # the group's later flushes do not tell it again
    clock.advance(timedelta(minutes=10))
    await svc.tick()
    assert len([m for m in await messages(sim) if "解除" in m["body"]]) == len(cleared)
