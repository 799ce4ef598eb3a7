"""工单 through the console API on real PostgreSQL: the centre's 派发 picker from the alarm's
责任矩阵, orders scoped per role (a grid member cannot see or act on another village's order:
403 in Chinese, audited), two operators approving one order at once (one 200, one 409 in
Chinese), bad input refused in Chinese, and the last approval closing the alarm."""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from PIL import Image

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _verify(api, aid: str) -> None:
    r = await api.client.post(f"/api/alerts/{aid}/verify", json={"verdict": "real", "reason": "视频复核属实"},
                              headers=api.auth("centre1"))
    assert r.status_code == 200, r.text


async def _options(api, aid: str) -> dict:
    r = await api.client.get(f"/api/alerts/{aid}/dispatch-options", headers=api.auth("centre1"))
    assert r.status_code == 200, r.text
    return {u["unit_id"]: u for u in r.json()["units"]}


async def _dispatch(api, aid: str, orders: list[dict], minutes: int = 60) -> list[dict]:
    body = {"orders": orders, "deadline_minutes": minutes, "note": "请到场处置"}
    r = await api.client.post(f"/api/alerts/{aid}/dispatch", json=body, headers=api.auth("centre1"))
    assert r.status_code == 200, r.text
    return r.json()["orders"]


def _zh(text: str) -> None:
    assert re.search(r"[\u4e00-\u9fff]", text) and not re.search(r"[A-Za-z]{3,}", text), text


async def test_dispatch_options_come_from_the_matrix_and_dispatch_makes_orders(fresh_api):
    api = fresh_api
    aid = api.seeded.alerts["gas_s1"]
    r = await api.client.post(f"/api/alerts/{aid}/dispatch", json={"orders": [{"unit_id": "T1"}]},
                              headers=api.auth("centre1"))
    assert r.status_code == 409 and r.json()["problem"] == "报警尚未研判，请先研判再派发", r.text
    await _verify(api, aid)
    units = await _options(api, aid)
    assert {k: (u["unit_kind"], u["unit_name"], u["why"]) for k, u in units.items()} == {
        "S1": ("business", "老王饭店", "企业主体责任"), "V1": ("grid", "东门社区", "属地（网格员）"),
        "T1": ("township", "城关镇", "属地（值班）"), "D-ZJ": ("department", "区住建局", "行业监管（三管三必须）"),
        "L1": ("leader", "张副区长", "责任领导")}
    assert [p["name"] for p in units["V1"]["people"]] == ["陈网格"]
    r = await api.client.get(f"/api/alerts/{aid}/dispatch-options", headers=api.auth("town-t1"))
    assert r.status_code == 403
    # a unit the matrix does not name, a person of another unit: 422 in Chinese, nothing made
    other = units["T1"]["people"][0]["contact_id"]
    for bad in ([{"unit_id": "V2"}], [{"unit_id": "V1", "contact_id": other}], [{"unit_id": "T1"}] * 2):
        r = await api.client.post(f"/api/alerts/{aid}/dispatch", json={"orders": bad},
                                  headers=api.auth("centre1"))
        assert r.status_code == 422, r.text
        _zh(r.json()["detail"])
    r = await api.client.post(f"/api/alerts/{aid}/dispatch", json={"orders": [{"unit_id": "T1"}],
                                                                   "deadline_minutes": 1},
                              headers=api.auth("centre1"))
    assert r.status_code == 422
    chen = units["V1"]["people"][0]["contact_id"]
    orders = await _dispatch(api, aid, [{"unit_id": "V1", "contact_id": chen}, {"unit_id": "D-ZJ"}])
    assert [(o["unit_name"], o["assignee_name"], o["state_zh"], o["overdue"]) for o in orders] == [
        ("东门社区", "陈网格", "待接单", False), ("区住建局", "", "待接单", False)]
    assert orders[0]["alert_title"] == "老王饭店 可燃气体浓度超高限报警" and orders[0]["order_id"].startswith("WO-")
    again = await api.client.post(f"/api/alerts/{aid}/dispatch", json={"orders": [{"unit_id": "D-ZJ"}]},
                                  headers=api.auth("centre1"))
    assert again.status_code == 409 and "已有该报警未办结的工单" in again.json()["problem"]
    page = (await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))).json()
    assert page["phase"] == "dispatched"
    async with api.pool.acquire() as conn:  # the timer pass of alerting has them to tell
        assert await conn.fetchval("SELECT count(*) FROM work_orders WHERE next_due_at IS NOT NULL") == 2


async def test_orders_are_scoped_and_a_grid_member_is_refused_anothers_order(fresh_api):
    api = fresh_api
    mine, theirs = api.seeded.alerts["gas_s1"], api.seeded.alerts["fire_s3"]
    for aid in (mine, theirs):
        await _verify(api, aid)
    (v1,) = await _dispatch(api, mine, [{"unit_id": "V1"}])
    v2, t2 = await _dispatch(api, theirs, [{"unit_id": "V2"}, {"unit_id": "T2"}])
    listed = (await api.client.get("/api/workorders", headers=api.auth("grid-v1"))).json()
    assert [o["order_id"] for o in listed["items"]] == [v1["order_id"]] and listed["total"] == 1
    assert listed["items"][0]["actions"] == ["accept"]
    r = await api.client.get(f"/api/workorders/{v2['order_id']}", headers=api.auth("grid-v1"))
    assert r.status_code == 403 and r.json()["detail"] == "无权查看：该工单不是派给您或您负责的村（社区）的"
    r = await api.client.post(f"/api/workorders/{v2['order_id']}/accept", json={},
                              headers=api.auth("grid-v1"))
    assert r.status_code == 403
    r = await api.client.get(f"/api/workorders/{v2['order_id']}", headers=api.auth("town-t1"))
    assert r.status_code == 404 and r.json()["detail"] == "工单不存在，或不在您的查看范围内"
    async with api.pool.acquire() as conn:
        audit = await conn.fetch("SELECT actor, target FROM console_audit WHERE action = 'workorder.refused'"
                                 " ORDER BY id")
        assert [(a["actor"], a["target"]) for a in audit] == [
            ("grid_member:grid-v1", v2["order_id"]), ("grid_member:grid-v1", v2["order_id"]),
            ("township:town-t1", v2["order_id"])]
        assert await conn.fetchval("SELECT state FROM work_orders WHERE id=$1", v2["order_id"]) == "issued"
    t2_list = (await api.client.get("/api/workorders", headers=api.auth("town-t2"))).json()
    assert {o["order_id"] for o in t2_list["items"]} == {v2["order_id"], t2["order_id"]}
    assert (await api.client.get("/api/workorders", headers=api.auth("dept-zj"))).json()["total"] == 0
    assert (await api.client.get("/api/workorders", headers=api.auth("centre1"))).json()["total"] == 3
    assert (await api.client.get("/api/workorders", headers=api.auth("vendor-acme"))).status_code == 403
    # the grid member works its own order; an illegal step is 409 in Chinese
    r = await api.client.post(f"/api/workorders/{v1['order_id']}/arrive", json={},
                              headers=api.auth("grid-v1"))
    assert r.status_code == 409 and r.json()["problem"] == "请先接单，再到场签到（当前：待接单）"
    r = await api.client.post(f"/api/workorders/{v1['order_id']}/accept", json={},
                              headers=api.auth("grid-v1"))
    assert r.status_code == 200 and r.json()["order"]["state"] == "accepted"
    r = await api.client.post(f"/api/workorders/{v1['order_id']}/approve", json={"reason": "real"},
                              headers=api.auth("grid-v1"))
    assert r.status_code == 403


async def test_two_approvals_at_once_one_409_and_the_last_closes_the_alarm(fresh_api):
    api = fresh_api
    aid = api.seeded.alerts["gas_s1"]
    await _verify(api, aid)
    (order,) = await _dispatch(api, aid, [{"unit_id": "V1"}])
    oid = order["order_id"]
    gm = api.auth("grid-v1")
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(photo, "PNG")
    up = await api.client.post("/api/attachments", files={"file": ("现场.png", photo.getvalue(), "image/png")},
                               data={"alert_id": aid}, headers=gm)
    assert up.status_code == 201, up.text
    att = up.json()["attachment_id"]
    for step, body in (("accept", {}), ("arrive", {"lat": 30.2, "lon": 120.1, "accuracy_m": 15})):
        r = await api.client.post(f"/api/workorders/{oid}/{step}", json=body, headers=gm)
        assert r.status_code == 200, (step, r.text)
    # a photo nobody uploaded: 422 in Chinese, audited, nothing changed
    r = await api.client.post(f"/api/workorders/{oid}/feedback",
                              json={"note": "已关阀", "attachment_ids": ["att-nope1"]}, headers=gm)
    assert r.status_code == 422 and r.json()["detail"] == "第1张照片不存在，请重新上传", r.text
    async with api.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM console_audit WHERE action='attachment.refused'"
                                   " AND target=$1", aid) == 1
        assert await conn.fetchval("SELECT state FROM work_orders WHERE id=$1", oid) == "arrived"
    r = await api.client.post(f"/api/workorders/{oid}/feedback", headers=gm, json={
        "note": "已关阀通风，软管已更换", "attachment_ids": [att], "request_close": True})
    assert r.status_code == 200, r.text
    assert r.json()["order"]["close_requested"] is True and r.json()["order"]["attachment_ids"] == [att]
    r = await api.client.post(f"/api/workorders/{oid}/feedback",
                              json={"note": "x", "attachment_ids": ["bad id"]}, headers=gm)
    assert r.status_code == 422
    _zh(r.json()["detail"])

    async def approve(user: str):
        return await api.client.post(f"/api/workorders/{oid}/approve",
                                     json={"reason": "real", "note": "处置到位"}, headers=api.auth(user))

    a, b = await asyncio.gather(approve("centre1"), approve("admin1"))
    codes = sorted([a.status_code, b.status_code])
    assert codes == [200, 409], (a.text, b.text)
    loser = a if a.status_code == 409 else b
    assert re.fullmatch(r"工单已于\d+月\d+日\d\d:\d\d办结，不能再操作", loser.json()["problem"]), loser.text
    winner = a if a.status_code == 200 else b
    assert winner.json()["alert_closed"] is True
    page = (await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))).json()
    assert page["phase"] == "closed" and page["close_reason"] == "工单全部办结：真实警情，处置到位"
    detail = (await api.client.get(f"/api/workorders/{oid}", headers=gm)).json()
    assert detail["state_zh"] == "已办结" and detail["close_reason_zh"] == "真实警情"
    assert [(s["action_zh"], s["outcome"]) for s in detail["steps"]][-2:] in (
        [("审核通过", "applied"), ("审核通过", "rejected")], [("审核通过", "rejected"), ("审核通过", "applied")])
    closed = (await api.client.get("/api/workorders", params={"state": "closed"}, headers=gm)).json()
    assert closed["total"] == 1


async def test_the_order_sms_link_opens_the_recipients_page(fresh_api):
    """The order's SMS, as alerting's timers pass queues it, carries the recipient's own link; the
    console serves it: the 确认收到 page with 登录查看报警详情 for that recipient."""
    from pathlib import Path

    from console_district import NOW

    from alerting.compose import ComposeContext
    from alerting.config import load_config
    from alerting.workorder_notify import notify_due_orders
    from hazmon.registry import load_registry

    api = fresh_api
    aid = api.seeded.alerts["gas_s1"]
    await _verify(api, aid)
    (order,) = await _dispatch(api, aid, [{"unit_id": "V1"}])
    async with api.pool.acquire() as conn:
        registry = await load_registry(conn)
    routes = Path(__file__).resolve().parents[2] / "data" / "routes.yaml"
    ctx = ComposeContext(registry, load_config(routes), ack_base_url="http://console.test/ack")
    assert await notify_due_orders(api.pool, ctx, NOW) == 1
    async with api.pool.acquire() as conn:
        body = await conn.fetchval("SELECT body FROM notifications WHERE template='workorder' AND"
                                   " recipient_phone='13900001111'")
    print("网格员 receives:", body)
    assert body.startswith("工单：老王饭店的") and "前到场处置" in body
    m = re.search(r"http://console\.test(/ack/[0-9A-Za-z_-]{22})$", body)
    assert m, body
    page = await api.client.get(m.group(1))
    assert page.status_code == 200 and "确认收到" in page.text and "登录查看报警详情" in page.text
    assert order["state"] == "issued"
