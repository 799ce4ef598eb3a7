"""The closed loop (闭环), the hazards ledger and silences on real PostgreSQL, with audit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from alerting_helpers import T0, ev

from alerting import ledger
from alerting import lifecycle as lc
from alerting.errors import InvalidAction, NotFound
from alerting.silence import create_silence, expire_silence, list_silences, silence_audit
from alerting.store import AlertRecord, Placement, record_events
from hazmon.contracts import AlertPhase, Event, Verdict

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _record(conn: asyncpg.Connection, e: Event, *, now: datetime, **placed: Any
                  ) -> tuple[AlertRecord, str]:
    """One event stored through the batch path (a batch of one)."""
    return (await record_events(conn, [Placement(e, **placed)], now=now))[0]


async def _alert(pool: asyncpg.Pool, kind: str = "gas.high") -> str:
    e = ev(kind, "S1-GAS1", "S1")
    async with pool.acquire() as conn:
        a, what = await _record(conn, e, now=T0, township_id="T1", department_ids=["zj"])
    assert what == "new"
    return a.id


async def test_full_closed_loop_is_recorded(pool: asyncpg.Pool) -> None:
    aid = await _alert(pool)
    t = T0
    async with pool.acquire() as c:
        r = await lc.verify(c, aid, actor="op-wang", now=t + timedelta(minutes=2), verdict=Verdict.REAL,
                            reason="视频确认")
        assert r.applied and r.alert.phase is AlertPhase.VERIFIED and r.alert.acked_by == "op-wang"
        assert (await lc.dispatch(c, aid, actor="op-wang", now=t + timedelta(minutes=3),
                                  units=["住建", "东城街道"])).applied
        assert (await lc.start_handling(c, aid, actor="grid-zhang", now=t + timedelta(minutes=10),
                                        note="到场")).applied
        assert (await lc.feedback(c, aid, actor="grid-zhang", now=t + timedelta(minutes=30),
                                  note="软管老化，已更换", photo_ref="oss://photos/a1.jpg")).applied
        done = await lc.close(c, aid, actor="op-wang", now=t + timedelta(minutes=40),
                              reason="整改完毕，复测正常")
        assert done.applied and done.alert.phase is AlertPhase.CLOSED and done.alert.version == 6
        tl = await lc.alert_timeline(c, aid)
    assert [x.action for x in tl] == ["fire", "verify", "dispatch", "handle", "feedback", "close"]
    assert [x.to_phase for x in tl][1:] == ["verified", "dispatched", "handling", "feedback", "closed"]
    assert tl[4].photo_ref == "oss://photos/a1.jpg" and tl[4].actor == "grid-zhang"
    assert tl[5].reason == "整改完毕，复测正常"


async def test_out_of_order_and_missing_reason_are_refused(pool: asyncpg.Pool) -> None:
    aid = await _alert(pool)
    async with pool.acquire() as c:
        r = await lc.close(c, aid, actor="op", now=T0, reason="想关就关")
        assert not r.applied and "after feedback" in r.problem  # a real alarm is not closed before 研判
        with pytest.raises(InvalidAction):
            await lc.close(c, aid, actor="op", now=T0, reason="  ")  # nothing closes without a reason
        with pytest.raises(NotFound):
            await lc.verify(c, "no-such-alert", actor="op", now=T0, verdict=Verdict.TEST, reason="x")
        r = await lc.dispatch(c, aid, actor="op", now=T0, units=["住建"])
        assert not r.applied and "needs verified" in r.problem
        await lc.verify(c, aid, actor="op", now=T0, verdict=Verdict.TEST, reason="厂家测试")
        r = await lc.dispatch(c, aid, actor="op", now=T0, units=["住建"])
        assert not r.applied  # a test is closed, not dispatched
        assert (await lc.close(c, aid, actor="op", now=T0, reason="测试信号")).applied
        tl = await lc.alert_timeline(c, aid)
    assert [(x.action, x.outcome) for x in tl] == [
        ("fire", "applied"), ("close", "rejected"), ("dispatch", "rejected"), ("verify", "applied"),
        ("dispatch", "rejected"), ("close", "applied")]


async def test_two_operators_closing_at_once_end_in_one_state_with_both_recorded(pool: asyncpg.Pool) -> None:
    aid = await _alert(pool)
    async with pool.acquire() as c:
        await lc.verify(c, aid, actor="op1", now=T0, verdict=Verdict.FALSE, reason="误报")
    async with pool.acquire() as c1, pool.acquire() as c2:
        r1, r2 = await asyncio.gather(
            lc.close(c1, aid, actor="op1", now=T0 + timedelta(minutes=1), reason="误报关闭"),
            lc.close(c2, aid, actor="op2", now=T0 + timedelta(minutes=1), reason="误报，已核实"),
        )
    assert sorted([r1.applied, r2.applied]) == [False, True]
    loser = r1 if not r1.applied else r2
    assert "already closed" in loser.problem
    async with pool.acquire() as c:
        a = await lc.get_alert(c, aid)
        closes = [x for x in await lc.alert_timeline(c, aid) if x.action == "close"]
    assert a.phase is AlertPhase.CLOSED and a.version == 3
    assert {x.outcome for x in closes} == {"applied", "rejected"}
    assert {x.actor for x in closes} == {"op1", "op2"}


async def test_stale_version_is_rejected(pool: asyncpg.Pool) -> None:
    aid = await _alert(pool)
    async with pool.acquire() as c:
        a = await lc.get_alert(c, aid)
        await lc.acknowledge(c, aid, actor="op1", now=T0)
        r = await lc.verify(c, aid, actor="op2", now=T0, verdict=Verdict.REAL, reason="x",
                            expected_version=a.version)
        assert not r.applied and "stale version" in r.problem
        again = await lc.acknowledge(c, aid, actor="op3", now=T0)
        assert not again.applied and "already acknowledged by op1" in again.problem


async def test_replayed_and_resolved_events(pool: asyncpg.Pool) -> None:
    e = ev("gas.high", "S1-GAS1", "S1")
    async with pool.acquire() as c:
        _, w1 = await _record(c, e, now=T0)
        _, w2 = await _record(c, e, now=T0 + timedelta(seconds=5))
        r = e.model_copy(update={"state": "resolved", "ends_at": T0 + timedelta(minutes=3)})
        a3, w3 = await _record(c, r, now=T0 + timedelta(minutes=3))
        _, w4 = await _record(c, r, now=T0 + timedelta(minutes=4))
        _, w5 = await _record(c, e, now=T0 + timedelta(minutes=5))  # a late replay of the firing record
    assert [w1, w2, w3, w4, w5] == ["new", "replay", "resolved", "replay", "replay"]
    assert a3.state == "resolved" and a3.ends_at == T0 + timedelta(minutes=3)


async def test_hazard_ledger(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as c:
        h = await ledger.find_hazard(c, actor="insp-li", now=T0, site_id="S1", domain="gas",
                                     title="燃气软管老化", grade="major", hazard_id="HZ-1")
        assert h.township_id == "T1" and h.department_ids == ("zj",) and h.phase == "found"
        assert (await ledger.find_hazard(c, actor="x", now=T0, site_id="S1", domain="gas", title="dup",
                                         hazard_id="HZ-1")).title == "燃气软管老化"  # idempotent
        r = await ledger.strike_off_hazard(c, "HZ-1", actor="x", now=T0, reason="想销号")
        assert not r.applied
        assert (await ledger.register_hazard(c, "HZ-1", actor="insp-li", now=T0, reason="入台账")).applied
        with pytest.raises(InvalidAction):
            await ledger.supervise_hazard(c, "HZ-1", actor="ajb", now=T0, deadline=T0 - timedelta(days=1),
                                          supervisor="区安委办", reason="挂牌")
        s = await ledger.supervise_hazard(c, "HZ-1", actor="ajb", now=T0, deadline=T0 + timedelta(days=7),
                                          supervisor="区安委办", reason="重大隐患挂牌督办", owner="老王",
                                          measures="更换金属软管", funds="企业自筹", plan="燃气泄漏处置方案")
        assert s.applied and s.hazard.deadline == T0 + timedelta(days=7)
        assert s.hazard.overdue(T0 + timedelta(days=8)) and not s.hazard.overdue(T0 + timedelta(days=6))
        assert (await ledger.rectify_hazard(c, "HZ-1", actor="S1-owner", now=T0 + timedelta(days=5),
                                            reason="更换金属软管", photo_ref="oss://p/h1.jpg")).applied
        assert (await ledger.review_hazard(c, "HZ-1", actor="zj-inspector", now=T0 + timedelta(days=6),
                                           passed=True, reason="复查合格")).applied
        done = await ledger.strike_off_hazard(c, "HZ-1", actor="zj-inspector", now=T0 + timedelta(days=6),
                                              reason="予以销号")
        assert done.applied and done.hazard.phase == "struck_off" and done.hazard.version == 6
        tl = await ledger.hazard_timeline(c, "HZ-1")
    assert [(t.action, t.outcome) for t in tl] == [
        ("find", "applied"), ("strike_off", "rejected"), ("register", "applied"), ("supervise", "applied"),
        ("rectify", "applied"), ("review", "applied"), ("strike_off", "applied")]
    assert tl[3].detail["supervisor"] == "区安委办"


async def test_silences_validation_expiry_and_audit(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as c:
        with pytest.raises(InvalidAction, match="expiry"):
            await create_silence(c, actor="op", now=T0, matchers=['site_id="S6"'], ends_at=None,
                                 reason="维保")
        with pytest.raises(InvalidAction, match="reason"):
            await create_silence(c, actor="op", now=T0, matchers=['site_id="S6"'],
                                 ends_at=T0 + timedelta(hours=1), reason="")
        with pytest.raises(InvalidAction, match="every alert"):
            await create_silence(c, actor="op", now=T0, matchers=['site_id=~".*"'],
                                 ends_at=T0 + timedelta(hours=1), reason="全部静默")
        with pytest.raises(InvalidAction, match="bad matcher"):
            await create_silence(c, actor="op", now=T0, matchers=["site_id~S6"],
                                 ends_at=T0 + timedelta(hours=1), reason="x")
        s = await create_silence(c, actor="op-li", now=T0, matchers=['site_id="S6"', 'kind=~"elevator\\..*"'],
                                 ends_at=T0 + timedelta(hours=2), reason="电梯年检")
        assert s.active(T0) and s.matches({"site_id": "S6", "kind": "elevator.fault"})
        assert not s.matches({"site_id": "S6", "kind": "gas.high"})
        assert [x.id for x in await list_silences(c, now=T0)] == [s.id]
        e = await expire_silence(c, s.id, actor="op-zhao", now=T0 + timedelta(minutes=30), reason="提前完成")
        assert not e.active(T0 + timedelta(minutes=31)) and e.expired_by == "op-zhao"
        assert await list_silences(c, now=T0 + timedelta(hours=1)) == []
        assert len(await list_silences(c, now=T0 + timedelta(hours=1), include_expired=True)) == 1
        audit = await silence_audit(c, s.id)
    assert [(a["action"], a["actor"]) for a in audit] == [("create", "op-li"), ("expire", "op-zhao")]


async def test_ack_code_is_unique_among_open_alerts_only(pool: asyncpg.Pool) -> None:
    old = await _alert(pool)
    async with pool.acquire() as c:
        await lc.verify(c, old, actor="op", now=T0, verdict=Verdict.TEST, reason="测试")
        await lc.close(c, old, actor="op", now=T0, reason="测试结束")
        code = (await lc.get_alert(c, old)).ack_code
        e = ev("gas.low", "S1-GAS1", "S1", at=T0 + timedelta(days=30))
        new, _ = await _record(c, e, now=T0 + timedelta(days=30))
        await c.execute("UPDATE alerts SET ack_code=$2 WHERE id=$1", new.id, code)  # the code is drawn again
        with pytest.raises(asyncpg.UniqueViolationError):  # but never twice among open alarms
            e2 = ev("gas.high", "S1-GAS1", "S1", at=T0 + timedelta(days=31))
            other, _ = await _record(c, e2, now=T0 + timedelta(days=31))
            await c.execute("UPDATE alerts SET ack_code=$2 WHERE id=$1", other.id, code)
        # the alert's code is only its reference: what acknowledges is each recipient's own
        # code and token (tests/alerting/test_inbound_security.py)
        assert (await lc.get_alert(c, new.id)).ack_code == code
