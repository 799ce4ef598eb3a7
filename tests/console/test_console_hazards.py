"""The hazards ledger through the console API on real PostgreSQL: 转隐患 from an alarm, 挂牌督办
with the 五落实, 整改 with a photo uploaded through POST /api/attachments, 复查 failed then passed,
销号; every refusal in Chinese (409 with its problem, 422 for a form that can never be valid);
another township's hazard refused and audited; 重大隐患清零 per township and department."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image

aio = pytest.mark.asyncio(loop_scope="session")
FIVE = {"owner": "王老板（店主）", "measures": "更换燃气软管并加装切断阀", "funds": "企业自筹2000元",
        "plan": "燃气泄漏现场处置方案"}


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buf, "JPEG")
    return buf.getvalue()


@aio
async def test_a_township_takes_an_alarm_through_the_ledger(fresh_api, clock):
    api = fresh_api
    t1, t2 = api.auth("town-t1"), api.auth("town-t2")
    aid = api.seeded.alerts["gas_s1"]
    r = await api.client.post(f"/api/alerts/{aid}/to-hazard", headers=t2, json={"title": "软管老化"})
    assert r.status_code == 404  # another township's alarm
    r = await api.client.post(f"/api/alerts/{aid}/to-hazard", headers=t1,
                              json={"title": "燃气软管老化漏气", "grade": "major"})
    assert r.status_code == 201, r.text
    hz = r.json()
    hid = hz["id"]
    assert hz["phase"] == "registered" and hz["phase_zh"] == "已登记" and hz["source_alert_id"] == aid
    assert hz["township_name"] == "城关镇" and hz["grade_zh"] == "重大隐患"
    deadline = (clock.now + timedelta(days=3)).isoformat()
    r = await api.client.post(f"/api/hazards/{hid}/supervise", headers=t1,
                              json={"reason": "挂牌督办", "deadline": deadline, "supervisor": "城关镇",
                                    "owner": "王老板"})
    assert r.status_code == 422 and r.json()["detail"] == "挂牌督办须落实五落实，缺少：整改措施、整改资金、应急预案"
    r = await api.client.post(f"/api/hazards/{hid}/strike-off", headers=t1, json={"reason": "销号"})
    assert r.status_code == 409 and r.json()["problem"] == "隐患当前已登记，不能销号（须在复查通过待销号时）"
    async with api.pool.acquire() as c:
        refused = await c.fetchval("SELECT detail->>'message' FROM console_audit"
                                   " WHERE action='hazard.step_refused' AND target=$1", hid)
    assert refused == "挂牌督办须落实五落实，缺少：整改措施、整改资金、应急预案"
    r = await api.client.post(f"/api/hazards/{hid}/supervise", headers=t1,
                              json={"reason": "挂牌督办", "deadline": deadline, "supervisor": "城关镇", **FIVE})
    assert r.status_code == 200 and r.json()["hazard"]["owner"] == "王老板（店主）", r.text
    # another township: refused like an unknown hazard, and audited
    r = await api.client.post(f"/api/hazards/{hid}/rectify", headers=t2, json={"reason": "已整改"})
    assert r.status_code == 404 and "不在您的查看范围内" in r.json()["detail"]
    async with api.pool.acquire() as c:
        audit = await c.fetch("SELECT actor FROM console_audit WHERE action='hazard.refused' AND target=$1", hid)
    assert [a["actor"] for a in audit] == ["township:town-t2"]
    # 整改 with a photo uploaded for this hazard; a made-up id is refused in Chinese
    r = await api.client.post(f"/api/hazards/{hid}/rectify", headers=t1,
                              json={"reason": "已整改", "attachment_ids": ["not an id"]})
    assert r.status_code == 422 and "照片" in r.json()["detail"]
    r = await api.client.post("/api/attachments", headers=t1, data={"hazard_id": hid},
                              files={"file": ("p.jpg", _jpeg(), "image/jpeg")})
    assert r.status_code == 201, r.text
    att = r.json()["attachment_id"]
    r = await api.client.post(f"/api/hazards/{hid}/rectify", headers=t1,
                              json={"reason": "已更换软管", "attachment_ids": ["att-nosuchphoto"]})
    assert r.status_code == 422 and "照片" in r.json()["detail"], r.text
    r = await api.client.post(f"/api/hazards/{hid}/rectify", headers=t1,
                              json={"reason": "已更换软管", "attachment_ids": [att]})
    assert r.status_code == 200 and r.json()["hazard"]["attachment_ids"] == [att], r.text
    r = await api.client.post(f"/api/hazards/{hid}/review", headers=api.auth("dept-zj"),
                              json={"reason": "切断阀未安装", "passed": False})
    assert r.status_code == 200 and r.json()["hazard"]["phase"] == "supervised", r.text
    r = await api.client.post(f"/api/hazards/{hid}/rectify", headers=t1, json={"reason": "已加装切断阀"})
    assert r.status_code == 200
    r = await api.client.post(f"/api/hazards/{hid}/review", headers=api.auth("biz-s1"),
                              json={"reason": "自查合格", "passed": True})
    assert r.status_code == 403  # a business does not review its own rectification
    r = await api.client.post(f"/api/hazards/{hid}/review", headers=t1, json={"reason": "复查合格", "passed": True})
    assert r.status_code == 200 and r.json()["hazard"]["phase"] == "reviewed"
    got = (await api.client.get(f"/api/hazards/{hid}", headers=t1)).json()
    assert got["can"] == ["strike_off"] and got["reviewed_by"]
    r = await api.client.post(f"/api/hazards/{hid}/strike-off", headers=t1, json={"reason": "复查合格，予以销号"})
    assert r.status_code == 200 and r.json()["hazard"]["phase_zh"] == "已销号"
    got = (await api.client.get(f"/api/hazards/{hid}", headers=t1)).json()
    steps = [(t["action_zh"], t["outcome"]) for t in got["transitions"]]
    assert steps == [("排查发现", "applied"), ("登记", "applied"), ("销号", "rejected"), ("挂牌督办", "applied"),
                     ("整改", "applied"), ("复查", "applied"), ("整改", "applied"), ("复查", "applied"),
                     ("销号", "applied")]
    assert got["transitions"][4]["words"] == "整改照片1张"
    assert got["transitions"][5]["words"] == "复查不通过，退回整改"
    assert got["transitions"][2]["words"].startswith("未执行：隐患当前已登记")
    assert "镇街" in got["transitions"][0]["actor_zh"] and "行业部门" in got["transitions"][5]["actor_zh"]
    linked = (await api.client.get(f"/api/alerts/{aid}/hazards", headers=api.auth("grid-v1"))).json()["items"]
    assert linked == [{"id": hid, "title": "燃气软管老化漏气", "phase_zh": "已销号", "grade_zh": "重大隐患"}]
    r = await api.client.get(f"/api/alerts/{aid}/hazards", headers=t2)
    assert r.status_code == 404
    alert = (await api.client.get(f"/api/alerts/{aid}", headers=t1)).json()
    assert any(t["action"] == "to_hazard" for t in alert["transitions"])


@aio
async def test_the_major_hazards_toward_clearance(fresh_api):
    api = fresh_api
    c1 = api.auth("centre1")
    for site, title in (("S1", "燃气管道穿越地下室"), ("S2", "消防通道堵塞")):
        r = await api.client.post("/api/hazards", headers=c1, json={
            "site_id": site, "domain": "gas" if site == "S1" else "fire", "title": title, "grade": "major",
            "on_ledger": True})
        assert r.status_code == 201 and r.json()["phase"] == "registered", r.text
    d = (await api.client.get("/api/hazards/clearance", headers=c1)).json()
    town = [r for r in d["items"] if r["unit_kind"] == "township"]
    assert town[0]["unit_name"] == "城关镇" and town[0]["open"] == 2 and town[0]["unit_kind_zh"] == "镇街"
    assert town[0]["oldest_title"] in ("燃气管道穿越地下室", "消防通道堵塞") and d["total_open"] == 2
    d2 = (await api.client.get("/api/hazards/clearance", headers=api.auth("town-t2"))).json()
    assert d2["total_open"] == 0 and d2["items"] == []  # T2 holds none of them


@aio
async def test_each_role_is_offered_only_its_own_steps(fresh_api):
    api = fresh_api
    r = await api.client.post("/api/hazards", headers=api.auth("grid-v1"), json={
        "site_id": "S1", "domain": "gas", "title": "燃气表箱锈蚀", "on_ledger": True})
    assert r.status_code == 201 and r.json()["phase"] == "registered", r.text  # a 网格员 registers what it finds
    hid = r.json()["id"]
    can = {u: (await api.client.get(f"/api/hazards/{hid}", headers=api.auth(u))).json()["can"]
           for u in ("town-t1", "biz-s1", "grid-v1", "centre1")}
    assert can == {"town-t1": ["supervise", "rectify"], "biz-s1": ["rectify"], "grid-v1": ["rectify"],
                   "centre1": ["supervise", "rectify"]}
    r = await api.client.post(f"/api/hazards/{hid}/supervise", headers=api.auth("biz-s1"), json={
        "reason": "x", "deadline": "2030-01-01T00:00:00+08:00", "supervisor": "x", **FIVE})
    assert r.status_code == 403 and "无权访问" in r.json()["detail"]
    r = await api.client.get(f"/api/hazards/{hid}", headers=api.auth("maint-m1"))
    assert r.status_code == 403  # a 维保单位 has no hazards ledger
