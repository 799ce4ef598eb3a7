"""The closed loop through the API: 研判 → 派发 → 处置 → 反馈 → 办结, races, hazards, KPIs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_full_loop_with_audit_and_kpi(fresh_api, clock):
    api = fresh_api
    h = api.auth("centre1")
    aid = api.seeded.alerts["gas_s1"]
    kpi0 = (await api.client.get("/api/kpis", params={"period": "2026-11", "dimension": "total"}, headers=h)).json()
    assert kpi0["rows"][0]["alerts"] == 3 and kpi0["rows"][0]["alerts_closed"] == 0
    clock.now += timedelta(minutes=1)
    r = await api.client.post(f"/api/alerts/{aid}/acknowledge", json={}, headers=api.auth("biz-s1"))
    assert r.status_code == 200 and r.json()["alert"]["acked_by"] == "business:biz-s1"
    # 派发 makes one 工单 per unit of the matrix (console/routes/workorders.py)
    dispatch = {"orders": [{"unit_id": "T1"}, {"unit_id": "D-ZJ"}], "deadline_minutes": 60}
    steps = [("verify", {"verdict": "real", "reason": "视频复核有泄漏"}), ("dispatch", dispatch),
             ("handle", {"note": "网格员到场"}), ("feedback", {"note": "已关阀通风，更换软管", "photo_ref": "img/001.jpg"}),
             ("close", {"reason": "隐患消除"})]
    for action, body in steps:
        clock.now += timedelta(minutes=2)
        who = "town-t1" if action in ("handle", "feedback") else "centre1"
        r = await api.client.post(f"/api/alerts/{aid}/{action}", json=body, headers=api.auth(who))
        assert r.status_code == 200, (action, r.text)
    detail = (await api.client.get(f"/api/alerts/{aid}", headers=h)).json()
    assert detail["phase"] == "closed"
    actions = [(t["action"], t["outcome"], t["actor"]) for t in detail["transitions"]]
    assert actions == [("fire", "applied", "system"), ("acknowledge", "applied", "business:biz-s1"),
                       ("verify", "applied", "centre:centre1"), ("dispatch", "applied", "centre:centre1"),
                       ("handle", "applied", "township:town-t1"), ("feedback", "applied", "township:town-t1"),
                       ("close", "applied", "centre:centre1")]
    assert detail["readings"] and detail["readings"][0]["metric"] == "gas_lel"
    kpi1 = (await api.client.get("/api/kpis", params={"period": "2026-11", "dimension": "total"}, headers=h)).json()
    assert kpi1["rows"][0]["alerts_closed"] == 1
    assert kpi1["rows"][0]["closure_rate"] == pytest.approx(1 / 3)
    # the board no longer lists it
    board = (await api.client.get("/api/board", headers=h)).json()
    assert aid not in {a["id"] for a in board["items"]} and board["counts"]["red"] == 0


async def test_business_cannot_close_and_wrong_phase_is_409_recorded(fresh_api):
    api = fresh_api
    aid = api.seeded.alerts["elev_s2"]
    r = await api.client.post(f"/api/alerts/{aid}/close", json={"reason": "x"}, headers=api.auth("town-t1"))
    assert r.status_code == 403
    r = await api.client.post(f"/api/alerts/{aid}/close", json={"reason": "想直接办结"}, headers=api.auth("centre1"))
    assert r.status_code == 409 and "真实警情须反馈后办结" in r.json()["problem"]
    tl = (await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))).json()["transitions"]
    assert tl[-1]["action"] == "close" and tl[-1]["outcome"] == "rejected"


async def test_two_operators_closing_at_once_one_state_both_recorded(fresh_api):
    api = fresh_api
    aid = api.seeded.alerts["fire_s3"]
    h = api.auth("centre1")
    r = await api.client.post(f"/api/alerts/{aid}/verify", json={"verdict": "false", "reason": "烟感误报"}, headers=h)
    assert r.status_code == 200
    version = r.json()["alert"]["version"]
    r1, r2 = await asyncio.gather(
        api.client.post(f"/api/alerts/{aid}/close", json={"reason": "误报办结", "expected_version": version}, headers=h),
        api.client.post(f"/api/alerts/{aid}/close", json={"reason": "误报", "expected_version": version},
                        headers=api.auth("admin1")),
    )
    assert sorted([r1.status_code, r2.status_code]) == [200, 409]
    tl = (await api.client.get(f"/api/alerts/{aid}", headers=h)).json()["transitions"]
    closes = [t for t in tl if t["action"] == "close"]
    assert sorted(t["outcome"] for t in closes) == ["applied", "rejected"]
    assert {t["actor"] for t in closes} == {"centre:centre1", "admin:admin1"}


async def test_hazard_ledger_through_the_api(fresh_api, clock):
    api = fresh_api
    h = api.auth("dept-zj")
    r = await api.client.post("/api/hazards", json={"site_id": "S4", "domain": "gas", "title": "未装切断阀"}, headers=h)
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    r = await api.client.post("/api/hazards", json={"site_id": "S3", "domain": "gas", "title": "x"}, headers=h)
    assert r.status_code == 422  # S3 has no gas device: outside the department's scope
    deadline = (clock.now + timedelta(days=7)).isoformat()
    for step, body, who in [("register", {"reason": "入账"}, "dept-zj"),
                            ("supervise", {"reason": "挂牌", "deadline": deadline, "supervisor": "区安委办",
                                           "owner": "店主", "measures": "加装切断阀", "funds": "自筹",
                                           "plan": "燃气泄漏处置方案"}, "dept-zj"),
                            ("rectify", {"reason": "已加装", "photo_ref": "p.jpg"}, "town-t2"),
                            ("review", {"reason": "复查合格", "passed": True}, "town-t2"),
                            ("strike-off", {"reason": "验收合格"}, "dept-zj")]:
        r = await api.client.post(f"/api/hazards/{hid}/{step}", json=body, headers=api.auth(who))
        assert r.status_code == 200, (step, r.text)
    got = (await api.client.get(f"/api/hazards/{hid}", headers=h)).json()
    assert got["phase"] == "struck_off" and len(got["transitions"]) == 6
    r = await api.client.post(f"/api/hazards/{hid}/rectify", json={"reason": "again"}, headers=h)
    assert r.status_code == 409
