"""Smoke-level API behaviour against real PostgreSQL: sign-in, scoping, filters, 4xx messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_healthz_and_security_headers(api):
    r = await api.client.get("/api/healthz")
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"


async def test_sites_scoped_per_role(api):
    seen = {}
    for user in ("centre1", "dept-zj", "town-t1", "town-t2", "biz-s1"):
        r = await api.client.get("/api/sites", headers=api.auth(user))
        assert r.status_code == 200, r.text
        seen[user] = sorted(i["id"] for i in r.json()["items"])
    assert seen["centre1"] == ["S1", "S2", "S3", "S4"]
    assert seen["dept-zj"] == ["S1", "S4"]  # gas sites only (住建 ← 燃气 in the matrix)
    assert seen["town-t1"] == ["S1", "S2"]
    assert seen["town-t2"] == ["S3", "S4"]
    assert seen["biz-s1"] == ["S1"]


async def test_township_cannot_read_other_townships_alert_by_id(api):
    foreign = api.seeded.alerts["fire_s3"]  # T2
    r = await api.client.get(f"/api/alerts/{foreign}", headers=api.auth("town-t1"))
    assert r.status_code == 404
    assert r.json()["detail"] == "未找到该报警（不存在或不在您的查看范围内）"  # the same as an unknown id
    ok = await api.client.get(f"/api/alerts/{foreign}", headers=api.auth("town-t2"))
    assert ok.status_code == 200 and ok.json()["site_id"] == "S3"
    # and it cannot act on it either
    r = await api.client.post(f"/api/alerts/{foreign}/acknowledge", json={}, headers=api.auth("town-t1"))
    assert r.status_code == 404


async def test_scoped_lists_of_alerts_devices_events_hazards(api):
    async def ids(path, user):
        r = await api.client.get(path, headers=api.auth(user), params={"page_size": 500})
        assert r.status_code == 200, r.text
        return {i.get("site_id") or i.get("id") for i in r.json()["items"]}

    assert await ids("/api/alerts", "dept-zj") <= {"S1", "S4"}
    assert "S3" not in await ids("/api/alerts", "town-t1")
    assert await ids("/api/events", "biz-s1") == {"S1"}
    assert await ids("/api/hazards", "town-t2") == {"S3"}
    r = await api.client.get("/api/devices", headers=api.auth("vendor-acme"))
    assert {d["id"] for d in r.json()["items"]} == {"G1", "F1"}
    r = await api.client.get("/api/devices/E1", headers=api.auth("vendor-acme"))  # beta's device
    assert r.status_code == 404


async def test_phone_numbers_masked_for_roles_that_do_not_need_them(api):
    full = (await api.client.get("/api/sites/S1", headers=api.auth("centre1"))).json()
    assert full["contacts"][0]["phone"] == "13812345678"
    assert full["grid_member_phone"] == "13900001111"
    town = (await api.client.get("/api/sites/S1", headers=api.auth("town-t1"))).json()
    assert town["contacts"][0]["phone"] == "13812345678"
    for user in ("dept-zj", "biz-s1"):
        site = (await api.client.get("/api/sites/S1", headers=api.auth(user))).json()
        assert site["contacts"][0]["phone"] == "138****5678", user
        assert site["grid_member_phone"] == "139****1111", user
    matrix = (await api.client.get("/api/matrix", headers=api.auth("dept-zj"))).json()
    assert all(r["leader_phone"] in (None, "137****7777") for r in matrix["rules"])


async def test_vendor_diagnostics_are_per_vendor(api):
    r = await api.client.get("/api/diagnostics/deadletters", headers=api.auth("vendor-acme"))
    items = r.json()["items"]
    assert {i["vendor"] for i in items} == {"acme"} and {i["reason"] for i in items} == {"malformed", "unknown_device"}
    assert items[0]["raw_preview"]  # recognisable bytes, escaped
    # asking for another vendor's rejections yields nothing, not theirs
    r = await api.client.get("/api/diagnostics/deadletters", params={"vendor": "beta"}, headers=api.auth("vendor-acme"))
    assert r.json()["total"] == 0
    r = await api.client.get("/api/diagnostics/summary", headers=api.auth("centre1"))
    assert {(i["vendor"], i["reason"]) for i in r.json()["items"]} >= {("acme", "malformed"), ("beta", "schema")}


@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        # the detail in Chinese names the field (console/words.py); FastAPI's list stays under "errors"
        ("/api/sites/bad%20id", None, 422, "场所含有不允许的字符"),
        ("/api/sites/NOPE", None, 404, "未找到该场所"),
        ("/api/events", {"severity": "purple"}, 422, "级别不是允许的取值"),
        ("/api/events", {"since": "2026-11-20T00:00:00"}, 422, "开始时间须带时区"),
        ("/api/events", {"since": "2026-11-21T00:00:00Z", "until": "2026-11-20T00:00:00Z"}, 400,
         "开始时间须早于结束时间"),
        ("/api/alerts", {"page": 0}, 422, "页码太小"),
        ("/api/alerts", {"page_size": 100000}, 422, "每页条数太大"),
        ("/api/devices", {"presence": "maybe"}, 422, "在线状态不是允许的取值"),
        ("/api/sites", {"q": "a\x00b"}, 422, "搜索词含有不允许的字符"),
        ("/api/kpis", {"period": "2026-13"}, 422, "无法识别的统计周期"),
        ("/api/kpis", {"period": "2026-11", "since": "2026-11-01T00:00:00Z"}, 400, "请只给出统计周期或起止时间之一"),
    ],
)
async def test_bad_ids_and_filters_get_precise_4xx(api, path, params, status, needle):
    r = await api.client.get(path, params=params, headers=api.auth("centre1"))
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"], r.text


async def test_invalid_payloads_get_precise_4xx(api):
    aid = api.seeded.alerts["elev_s2"]
    h = api.auth("centre1")
    r = await api.client.post(f"/api/alerts/{aid}/verify", json={"verdict": "maybe", "reason": "x"}, headers=h)
    assert r.status_code == 422 and "verdict" in r.text
    r = await api.client.post(f"/api/alerts/{aid}/close", json={"reason": "   "}, headers=h)
    assert r.status_code == 422 and r.json()["detail"] == "办结须填写说明"
    r = await api.client.post("/api/silences", headers=h, json={"matchers": [{"name": "site_id", "value": ".*", "op": "=~"}],
                                                            "ends_at": "2026-11-21T00:00:00Z", "reason": "x"})
    assert r.status_code == 422 and r.json()["detail"] == "该条件会静默全部报警，请指定场所、设备或报警类型"
    r = await api.client.put("/api/matrix/R-x", headers=h, json={"domain": "gas", "department_ids": ["D-NOPE"], "reason": "x"})
    assert r.status_code == 422 and "D-NOPE" in r.text
    r = await api.client.post("/api/users", headers=api.auth("admin1"),
                              json={"username": "t-user", "password": "long enough pw", "role": "township"})
    assert r.status_code == 400 and r.json()["detail"] == "镇街账号须指定镇街"
    r = await api.client.post("/api/alerts/nope/acknowledge", headers=h, content=b"{not json")
    assert r.status_code == 422


async def test_matrix_edit_is_audited_and_changes_department_scope(api):
    h = api.auth("centre1")
    before = await api.client.get("/api/alerts", headers=api.auth("dept-zj"), params={"domain": "fire"})
    assert before.json()["total"] == 0
    r = await api.client.put("/api/matrix/R-fire2", headers=h,
                             json={"domain": "fire", "department_ids": ["D-ZJ", "D-YJ"], "reason": "燃气+消防 合署"})
    assert r.status_code == 200, r.text
    assert r.json()["department_names"] == ["区住建局", "区应急管理局"]
    after = await api.client.get("/api/alerts", headers=api.auth("dept-zj"), params={"domain": "fire"})
    assert after.json()["total"] >= 1  # a matrix edit changes what a department sees at once
    audit = (await api.client.get("/api/matrix", headers=h)).json()["audit"]
    assert audit[0]["actor"] == "centre:centre1" and audit[0]["detail"]["reason"] == "燃气+消防 合署"
    r = await api.client.post("/api/matrix/R-fire2/delete", headers=h, json={"reason": "撤销"})
    assert r.status_code == 200
    assert (await api.client.get("/api/alerts", headers=api.auth("dept-zj"), params={"domain": "fire"})).json()["total"] == 0


async def test_device_health_classifies_problems(api):
    r = await api.client.get("/api/health/devices", headers=api.auth("centre1"))
    d = r.json()
    problems = {i["id"]: i["problem"] for i in d["items"]}
    assert problems["E1"] == "offline"
    assert problems["G4"] == "never_seen"
    assert problems["F1"] == "stale"  # last reading 1 h ago, interval 60 s × 3
    assert "G1" not in problems
    assert d["counts"]["online"] == 2 and d["counts"]["total"] == 4


async def test_industry_limited_matrix_rule_limits_the_department(api):
    h = api.auth("centre1")

    async def dept_sites():
        r = await api.client.get("/api/sites", headers=api.auth("dept-zj"))
        return {i["id"] for i in r.json()["items"]}

    body = {"domain": "elevator", "department_ids": ["D-ZJ"], "reason": "商场电梯协管"}
    r = await api.client.put("/api/matrix/R-elev-hosp", headers=h, json={**body, "industries": ["医院"]})
    assert r.status_code == 200
    assert await dept_sites() == {"S1", "S4"}  # the only elevator is in a 商场, not a 医院
    r = await api.client.put("/api/matrix/R-elev-hosp", headers=h, json={**body, "industries": ["商场"]})
    assert await dept_sites() == {"S1", "S2", "S4"}
    await api.client.post("/api/matrix/R-elev-hosp/delete", headers=h, json={"reason": "测试结束"})
    assert await dept_sites() == {"S1", "S4"}


async def test_sms_short_link_acknowledges_only_on_post(fresh_api):
    import re

    from alerting.outbox import NewNotification, enqueue, notification_id
    from alerting.templates import ack_placeholder
    from hazmon.contracts import NotificationRequest, Recipient, RecipientRole

    api = fresh_api
    aid = api.seeded.alerts["elev_s2"]
    async with api.pool.acquire() as conn:  # the SMS of one recipient, queued as alerting queues it
        code = await conn.fetchval("SELECT ack_code FROM alerts WHERE id = $1", aid)
        r = Recipient(role=RecipientRole.BUSINESS, name="商场值班", unit="城关商场", phone="13800002001",
                      rule="site:S2:contact")
        link = ack_placeholder()  # the token's placeholder after the template's fixed …/ack/
        body = f"城关商场电梯困人。回复{code}确认，或点http://console.test/ack/{link}"
        await enqueue(conn, [NewNotification(NotificationRequest(
            id=notification_id(aid, r, 0, "sms:alarm"), alert_id=aid, channel="sms", recipient=r, template="alarm",
            body=body, created_at=datetime.now(UTC)), params={"code": code, "token": link})], now=datetime.now(UTC))
        sent = await conn.fetchval("SELECT body FROM notifications WHERE alert_id = $1", aid)
    token = re.search(r"/ack/([0-9A-Za-z_-]{22})$", sent).group(1)
    r = await api.client.get(f"/ack/{token}")
    assert r.status_code == 200 and "确认收到" in r.text and "城关商场" not in r.text  # nothing about the site yet
    # self-contained page: its inline style is allowed (the console's CSP would leave it unstyled), no script
    csp = r.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    alert = (await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))).json()
    assert alert["acked_at"] is None  # a link preview must not acknowledge
    for _ in range(31):  # someone guessing tokens from this address ...
        assert (await api.client.post("/ack/" + "A" * 22)).status_code in (404, 429)
    assert (await api.client.post("/ack/" + "A" * 22)).status_code == 429  # ... is rate-limited
    r = await api.client.post(f"/ack/{token}")  # a valid token is not held back by the address's failures
    assert r.status_code == 200 and "已确认" in r.text and "城关商场" in r.text
    assert "设备上报" not in r.text  # what happened in words (KIND_ZH), not the detector's summary
    alert = (await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))).json()
    assert alert["acked_by"] == "link:site:S2:contact"
