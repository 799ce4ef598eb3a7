"""Forms for what was API-only (issue 14 item 6), on real PostgreSQL through the console's API:
self-service 维保/测试 报备 scoped to one's own devices (a refusal in Chinese, audited) and bounded
in length; the 重点时段 calendar and its banner; the 安全公益短信 draft → approval by another user
(self-approval refused, audited) → send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_district import NOW

from alerting.escalation import KeyPeriod
from alerting.store.escalations import sync_key_periods

pytestmark = pytest.mark.asyncio(loop_scope="session")

LATER = (NOW + timedelta(hours=2)).isoformat()


async def _audit(api, sql: str, *args):  # noqa: ANN001, ANN202
    async with api.pool.acquire() as conn:
        return await conn.fetch(sql, *args)


async def test_a_business_files_a_report_for_its_own_device_only(fresh_api) -> None:
    api = fresh_api
    body = {
        "site_id": "S1",
        "device_ids": ["G1"],
        "kind": "维保",
        "ends_at": LATER,
        "reason": "燃气报警器年检",
    }
    r = await api.client.post("/api/reports", json=body, headers=api.auth("biz-s1"))
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["kind"] == "维保" and got["status_zh"] == "生效中" and got["keeps_fire_alarm"] is True
    assert got["site_name"] == "老王饭店" and got["reason"] == "维保报备：燃气报警器年检"
    # another business's device, and another business's site: refused in Chinese and audited
    for other in ({**body, "device_ids": ["G4"]}, {**body, "site_id": "S4", "device_ids": ["G4"]}):
        r = await api.client.post("/api/reports", json=other, headers=api.auth("biz-s1"))
        assert r.status_code == 404, r.text
        assert "不属于本单位" in r.json()["detail"], r.text
    refused = await _audit(
        api, "SELECT actor, target, detail FROM console_audit WHERE action='report.refused'"
    )
    assert [(a["actor"], a["target"]) for a in refused] == [
        ("business:biz-s1", "S1"),
        ("business:biz-s1", "S4"),
    ]
    async with api.pool.acquire() as conn:
        n = await conn.fetchval("SELECT count(*) FROM silences WHERE report_kind <> ''")
    assert n == 1  # nothing half-written by the refusals
    # the reminder goes to the site's contact (the account has no mobile of its own)
    async with api.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT notify_phone, matchers FROM silences WHERE id=$1", got["id"])
    assert row["notify_phone"] == "13812345678"
    # only its own 报备 are listed to it; the centre sees every one
    mine = (await api.client.get("/api/reports", headers=api.auth("biz-s1"))).json()
    assert [x["id"] for x in mine] == [got["id"]]


async def test_a_self_service_report_is_bounded_the_centre_may_file_longer(fresh_api) -> None:
    api = fresh_api
    long = (NOW + timedelta(hours=8, minutes=1)).isoformat()
    r = await api.client.post(
        "/api/reports",
        headers=api.auth("maint-m1"),
        json={"site_id": "S2", "device_ids": ["E1"], "kind": "维保", "ends_at": long, "reason": "电梯大修"},
    )
    assert r.status_code == 422 and "报备时长不能超过8小时" in r.json()["detail"], r.text
    r = await api.client.post(
        "/api/reports",
        headers=api.auth("maint-m1"),
        json={
            "site_id": "S2",
            "device_ids": ["E1"],
            "kind": "维保",
            "ends_at": LATER,
            "reason": "电梯半月维保",
        },
    )
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    async with api.pool.acquire() as conn:  # what the flush's mute stage records when it holds an alarm
        await conn.execute(
            "INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason,"
            " version) VALUES ($1, 'suppress', 'new', 'new', 'system', $2, $3, 1)",
            api.seeded.alerts["elev_s2"], NOW, f"silence:{mid}",
        )
    listed = (await api.client.get("/api/reports", headers=api.auth("maint-m1"))).json()
    assert [(x["id"], x["held"], x["held_zh"]) for x in listed] == [(mid, 1, ["电梯困人（仍在报警）"])]
    r = await api.client.post(
        "/api/reports",
        headers=api.auth("maint-m1"),
        json={"site_id": "S1", "device_ids": ["G1"], "kind": "维保", "ends_at": LATER, "reason": "不是我的"},
    )
    assert r.status_code == 404 and "不属于本单位" in r.json()["detail"], r.text
    # the centre: any site, longer; a 测试 never mutes a real fire alarm
    r = await api.client.post(
        "/api/reports",
        headers=api.auth("centre1"),
        json={
            "site_id": "S3",
            "device_ids": ["F1"],
            "kind": "测试",
            "ends_at": long,
            "reason": "消防联动测试",
        },
    )
    assert r.status_code == 201 and r.json()["keeps_fire_alarm"] is True, r.text
    rid = r.json()["id"]
    # a business cannot end the centre's 报备; the centre can
    r = await api.client.post(f"/api/reports/{rid}/end", json={"reason": "x"}, headers=api.auth("biz-s1"))
    assert r.status_code == 404
    r = await api.client.post(
        f"/api/reports/{rid}/end", json={"reason": "测试完毕"}, headers=api.auth("centre1")
    )
    assert r.status_code == 200 and r.json()["status_zh"] == "已结束", r.text


async def test_a_key_period_shows_a_banner_to_every_role_until_it_is_ended(fresh_api) -> None:
    api = fresh_api
    r = await api.client.post(
        "/api/key-periods",
        headers=api.auth("centre1"),
        json={
            "name": "元旦假期",
            "kind": "holiday",
            "starts_at": (NOW - timedelta(hours=1)).isoformat(),
            "ends_at": (NOW + timedelta(days=2)).isoformat(),
            "timer_factor": 0.5,
            "township_ids": ["T1"],
            "reason": "区安委办通知",
        },
    )
    assert r.status_code == 201 and r.json()["status_zh"] == "进行中", r.text
    pid = r.json()["id"]
    for user in ("biz-s1", "vendor-acme", "grid-v1", "town-t2"):
        banner = (await api.client.get("/api/key-periods/active", headers=api.auth(user))).json()
        assert [(b["name"], b["where_zh"], b["kind_zh"]) for b in banner] == [
            ("元旦假期", "城关镇", "节假日")
        ], user
    r = await api.client.post(
        "/api/key-periods",
        headers=api.auth("biz-s1"),
        json={"name": "x", "starts_at": NOW.isoformat(), "ends_at": LATER, "reason": "x"},
    )
    assert r.status_code == 403
    r = await api.client.post(
        f"/api/key-periods/{pid}/end", json={"reason": "提前结束"}, headers=api.auth("admin1")
    )
    assert r.status_code == 200 and r.json()["status_zh"] == "已结束", r.text
    assert (await api.client.get("/api/key-periods/active", headers=api.auth("biz-s1"))).json() == []
    r = await api.client.post(
        f"/api/key-periods/{pid}/end", json={"reason": "再次"}, headers=api.auth("admin1")
    )
    assert r.status_code == 409 and r.json()["detail"] == "该重点时段已结束"
    audit = await _audit(
        api, "SELECT actor, action FROM registry_audit WHERE action LIKE 'key_period.%' ORDER BY id"
    )
    assert [(a["actor"], a["action"]) for a in audit] == [
        ("centre:centre1", "key_period.create"),
        ("admin:admin1", "key_period.end"),
    ]


async def test_a_broadcast_is_approved_by_another_user_then_sent(fresh_api) -> None:
    api = fresh_api
    bad = await api.client.post(
        "/api/broadcasts/preview",
        headers=api.auth("centre1"),
        json={"body": "详见 http://x.cn，咨询13812345678", "industries": ["餐饮"]},
    )
    problems = bad.json()["problems"]
    assert any("网址" in p for p in problems) and any("电话" in p for p in problems), problems
    text = "冬季使用燃气请保持通风，发现泄漏立即关阀，切勿开关电器，到室外拨打119。"
    pv = (
        await api.client.post(
            "/api/broadcasts/preview",
            headers=api.auth("centre1"),
            json={"body": text, "industries": ["餐饮"]},
        )
    ).json()
    assert pv["problems"] == [] and pv["recipients"] == 2 and pv["segments"] == 1
    assert pv["full"] == f"【区应急指挥中心】安全提示：{text}" and pv["chars"] == len(pv["full"])
    r = await api.client.post(
        "/api/broadcasts",
        headers=api.auth("centre1"),
        json={"body": "请拨打13812345678", "reason": "冬季燃气安全"},
    )
    assert r.status_code == 422 and "电话" in r.json()["detail"]
    r = await api.client.post(
        "/api/broadcasts",
        headers=api.auth("centre1"),
        json={"body": text, "industries": ["餐饮"], "reason": "冬季燃气安全"},
    )
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    r = await api.client.post(f"/api/broadcasts/{bid}/send", headers=api.auth("centre1"))
    assert r.status_code == 409 and "尚未通过审批" in r.json()["detail"]
    r = await api.client.post(f"/api/broadcasts/{bid}/approve", json={}, headers=api.auth("centre1"))
    assert r.status_code == 409 and "不能审批自己起草的短信" in r.json()["detail"], r.text
    r = await api.client.post(
        f"/api/broadcasts/{bid}/approve", json={"reason": "同意"}, headers=api.auth("admin1")
    )
    assert r.status_code == 200 and r.json()["status_zh"] == "已审批待发送", r.text
    r = await api.client.post(f"/api/broadcasts/{bid}/send", headers=api.auth("centre1"))
    assert r.status_code == 200 and r.json()["queued"] == 2, r.text
    rows = await _audit(
        api, "SELECT recipient_phone, body FROM notifications WHERE broadcast_id=$1 ORDER BY 1", bid
    )
    assert [(x["recipient_phone"], x["body"]) for x in rows] == [
        ("13812340004", f"安全提示：{text}"),
        ("13812345678", f"安全提示：{text}"),
    ]
    audit = await _audit(
        api, "SELECT action, actor FROM broadcast_audit WHERE broadcast_id=$1 ORDER BY id", bid
    )
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("draft", "centre:centre1"),
        ("refused", "centre:centre1"),
        ("refused", "centre:centre1"),
        ("approve", "admin:admin1"),
        ("send", "centre:centre1"),
    ]
    listed = (await api.client.get("/api/broadcasts", headers=api.auth("admin1"))).json()
    assert listed[0]["status_zh"] == "已发送" and listed[0]["audience_zh"] == "全区 · 餐饮"
    r = await api.client.post(f"/api/broadcasts/{bid}/send", headers=api.auth("centre1"))
    assert r.status_code == 409 and r.json()["detail"] == "该短信已发送"


async def test_a_configured_key_period_ended_on_the_page_stays_ended_after_the_sync(fresh_api) -> None:
    api = fresh_api
    cfg = KeyPeriod(
        "KP-cfg", "防汛Ⅳ级应急响应", NOW - timedelta(hours=1), NOW + timedelta(days=1), 0.5, "flood"
    )
    pending = KeyPeriod(
        "KP-later", "春节假期", NOW + timedelta(days=5), NOW + timedelta(days=9), 0.5, "holiday"
    )
    async with api.pool.acquire() as conn:
        await sync_key_periods(conn, [cfg, pending])
    r = await api.client.post(
        "/api/key-periods/KP-cfg/end", json={"reason": "响应解除"}, headers=api.auth("centre1")
    )
    assert r.status_code == 200 and r.json()["status_zh"] == "已结束", r.text
    r = await api.client.post(
        "/api/key-periods/KP-later/end", json={"reason": "x"}, headers=api.auth("centre1")
    )
    assert r.status_code == 409 and "配置文件" in r.json()["detail"], r.text
    async with api.pool.acquire() as conn:
        periods = {p.id: p for p in await sync_key_periods(conn, [cfg, pending])}  # the service's reload
    assert periods["KP-cfg"].ends_at == NOW and periods["KP-later"].starts_at == pending.starts_at
