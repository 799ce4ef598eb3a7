"""The hazards ledger's steps on real PostgreSQL (登记, 转隐患, 挂牌督办 with the 五落实, 整改 with
photos, 复查 passed and failed, 销号 only after a passed 复查), each refusal in Chinese and
audited, and the overdue pass (逾期提醒 → 逾期升级) read from the SMS gateway simulator over HTTP
with a test clock."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from alerting_helpers import T0, ServiceFactory, ev, messages

from alerting import ledger
from alerting.clock import ManualClock
from alerting.errors import InvalidAction
from sim.gateway import SmsSimulator

aio = pytest.mark.asyncio(loop_scope="session")
FIVE = {
    "owner": "老王（店主）",
    "measures": "更换金属波纹管并加装切断阀",
    "funds": "企业自筹3000元",
    "plan": "燃气泄漏现场处置方案",
}
BUSINESS, TOWNSHIP, GRID = "13800001001", "13800000101", "13800000201"
ZJ, LEADER = "13800000301", "13800000401"


async def _supervised(c: asyncpg.Connection, hid: str, *, days: float = 7, grade: str = "general") -> None:
    await ledger.find_hazard(
        c,
        actor="centre:op",
        now=T0,
        site_id="S1",
        domain="gas",
        title="燃气软管老化",
        grade=grade,
        hazard_id=hid,
    )
    assert (await ledger.register_hazard(c, hid, actor="centre:op", now=T0, reason="登记入账")).applied
    r = await ledger.supervise_hazard(
        c,
        hid,
        actor="township:t1",
        now=T0,
        deadline=T0 + timedelta(days=days),
        supervisor="东城街道",
        reason="挂牌督办",
        **FIVE,
    )
    assert r.applied, r.problem


@aio
async def test_every_step_and_every_refusal_is_audited(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as c:
        await _supervised(c, "HZ-A")
        with pytest.raises(InvalidAction, match="缺少：整改资金、应急预案"):
            await ledger.supervise_hazard(
                c,
                "HZ-A",
                actor="x",
                now=T0,
                deadline=T0 + timedelta(days=1),
                supervisor="东城街道",
                reason="再督办",
                owner="老王",
                measures="换管",
            )
        no = await ledger.strike_off_hazard(c, "HZ-A", actor="township:t1", now=T0, reason="想直接销号")
        assert not no.applied and no.problem == "隐患当前挂牌督办中，不能销号（须在复查通过待销号时）"
        no = await ledger.review_hazard(c, "HZ-A", actor="township:t1", now=T0, passed=True, reason="看过了")
        assert not no.applied and "不能复查" in no.problem
        r = await ledger.rectify_hazard(
            c,
            "HZ-A",
            actor="business:laowang",
            now=T0 + timedelta(days=1),
            reason="已更换软管",
            attachment_ids=["att-1", "att-2"],
        )
        assert r.applied and r.hazard.phase == "rectified" and r.hazard.attachment_ids == ("att-1", "att-2")
        assert r.hazard.overdue_due_at is None  # rectified: the overdue pass stops
        fail = await ledger.review_hazard(
            c,
            "HZ-A",
            actor="department:zj",
            now=T0 + timedelta(days=2),
            passed=False,
            reason="切断阀未安装",
            unit="区住建局",
        )
        assert fail.applied and fail.hazard.phase == "supervised"
        assert fail.hazard.review_note == "切断阀未安装"
        assert fail.hazard.overdue_due_at == T0 + timedelta(days=7)  # looked at again from its deadline
        no = await ledger.strike_off_hazard(c, "HZ-A", actor="township:t1", now=T0, reason="销号")
        assert not no.applied  # a failed 复查 is no 复查
        await ledger.rectify_hazard(
            c,
            "HZ-A",
            actor="business:laowang",
            now=T0 + timedelta(days=3),
            reason="已加装切断阀",
            attachment_ids=["att-3"],
        )
        ok = await ledger.review_hazard(
            c,
            "HZ-A",
            actor="township:t1",
            now=T0 + timedelta(days=4),
            passed=True,
            reason="现场复查合格",
            unit="东城街道",
        )
        assert ok.applied and ok.hazard.phase == "reviewed" and ok.hazard.reviewed_by == "东城街道"
        stale = await ledger.strike_off_hazard(
            c, "HZ-A", actor="t", now=T0, reason="销号", expected_version=1
        )
        assert not stale.applied and stale.problem == "该隐患已被他人更新，请刷新后再操作"
        done = await ledger.strike_off_hazard(
            c, "HZ-A", actor="township:t1", now=T0 + timedelta(days=4), reason="复查合格，予以销号"
        )
        assert done.applied and done.hazard.phase == "struck_off"
        tl = await ledger.hazard_timeline(c, "HZ-A")
    assert [(t.action, t.outcome) for t in tl] == [
        ("find", "applied"),
        ("register", "applied"),
        ("supervise", "applied"),
        ("strike_off", "rejected"),
        ("review", "rejected"),
        ("rectify", "applied"),
        ("review", "applied"),
        ("strike_off", "rejected"),
        ("rectify", "applied"),
        ("review", "applied"),
        ("strike_off", "rejected"),
        ("strike_off", "applied"),
    ]
    assert tl[2].detail["owner"] == "老王（店主）" and tl[2].detail["funds"] == "企业自筹3000元"
    assert tl[5].detail["attachment_ids"] == ["att-1", "att-2"]
    assert tl[6].detail["passed"] is False and tl[6].to_phase == "supervised"
    assert tl[3].detail["problem"].startswith("隐患当前挂牌督办中")


@aio
async def test_an_alarm_turned_into_a_hazard_is_linked_both_ways(
    pool: asyncpg.Pool,
    make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await svc.handle_events([ev("gas.high", "S1-GAS1", "S1")])
    async with pool.acquire() as c:
        aid = await c.fetchval("SELECT id FROM alerts WHERE site_id='S1'")
        h = await ledger.hazard_from_alert(
            c, aid, actor="township:t1", now=T0, title="燃气软管老化漏气", grade="major"
        )
        again = await ledger.hazard_from_alert(c, aid, actor="township:t1", now=T0, title="燃气软管老化漏气")
        audit = await c.fetch(
            "SELECT action, reason, detail FROM alert_transitions WHERE alert_id=$1 AND action='to_hazard'",
            aid,
        )
    assert again.id == h.id  # a double click makes one hazard
    assert h.phase == "registered" and h.source_alert_id == aid and h.site_id == "S1" and h.domain == "gas"
    assert h.township_id == "T1" and h.department_ids == ("zj",) and h.grade == "major"
    assert len(audit) == 1 and h.id in audit[0]["reason"]


@aio
async def test_an_overdue_hazard_is_told_then_escalated_once_each(
    pool: asyncpg.Pool,
    sim: SmsSimulator,
    clock: ManualClock,
    make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    async with pool.acquire() as c:
        await _supervised(c, "HZ-OD", days=1, grade="major")
    await svc.tick()
    clock.advance(timedelta(hours=23))
    await svc.tick()
    assert not [m for m in await messages(sim) if "隐患" in m["body"]]  # not due: nothing told
    clock.advance(timedelta(hours=1, seconds=1))
    await svc.tick()
    told = {m["phone"]: m["body"] for m in await messages(sim) if "隐患" in m["body"]}
    assert set(told) == {BUSINESS, TOWNSHIP, GRID}, told
    for body in told.values():
        assert body == (
            "隐患整改逾期提醒：老王饭店的隐患燃气软管老化（重大隐患）整改期限为11月4日09:00，"
            "至今未报告整改完成。请按挂牌督办要求落实整改，完成后在平台报告整改情况并申请复查。"
            "中心值班电话0571-88001110。"
        ), body
    await svc.tick()
    clock.advance(timedelta(hours=12))
    await svc.tick()
    assert len([m for m in await messages(sim) if "隐患" in m["body"]]) == 3  # told once
    clock.advance(timedelta(hours=12))
    await svc.tick()
    up = {m["phone"]: m["body"] for m in await messages(sim) if "隐患逾期升级" in m["body"]}
    assert set(up) == {ZJ, LEADER}, up
    assert up[ZJ] == (
        "隐患逾期升级：老王饭店的隐患燃气软管老化（重大隐患）整改期限为11月4日09:00，"
        "已逾期1天仍未整改完成，责任人老王（店主）。请督促责任单位限期整改到位。"
        "中心值班电话0571-88001110。"
    ), up[ZJ]
    clock.advance(timedelta(days=3))
    await svc.tick()
    assert len([m for m in await messages(sim) if "隐患" in m["body"]]) == 5  # nothing after the escalation
    async with pool.acquire() as c:
        tl = await ledger.hazard_timeline(c, "HZ-OD")
        h = await ledger.get_hazard(c, "HZ-OD")
        await c.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await c.fetch(
                "EXPLAIN SELECT * FROM hazards WHERE overdue_due_at IS NOT NULL AND overdue_due_at <= now()"
            )
        )
    assert [t.action for t in tl][-2:] == ["overdue_notify", "overdue_escalate"]
    assert len(tl[-2].detail["told"]) == 3 and tl[-1].actor == "system:hazard_overdue"
    assert h.overdue_level == 2 and h.overdue_due_at is None and h.version == 3  # no phase change
    assert "hazards_overdue_due" in plan  # the pass's query is the partial index's: free when none is due
