"""通知单台账 through the console API on real PostgreSQL: the centre reads every unit's notices
(filtered by township or department), a township or department its own; 签收 and 回复 by the
addressed unit, 办结 by the centre after the reply; refusals in Chinese, each write and each
refusal a console_audit row. The notices are written as the escalation pass writes them
(alerting/store/notice_register.py; the pass itself: tests/alerting/test_notice_texts.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from console_district import NOW

from alerting.store import notice_register as register

pytestmark = pytest.mark.asyncio(loop_scope="session")

UNITS = {"reminder": [register.RegisterUnit("township", "T1", "城关镇", ("township", "grid_member"))],
         "warning": [register.RegisterUnit("township", "T1", "城关镇", ("township",)),
                     register.RegisterUnit("department", "D-ZJ", "区住建局", ("department",))],
         "accountability": [register.RegisterUnit("leader", "L1", "张副区长", ("leader",)),
                            register.RegisterUnit("centre", "duty", "区应急指挥中心", ("duty_operator",))]}
STEP = {"reminder": 1, "warning": 2, "accountability": 4}


async def _issue(api, alert_id: str) -> dict[str, int]:  # noqa: ANN001
    ids = {}
    async with api.pool.acquire() as conn:
        await conn.execute("DELETE FROM notices WHERE alert_id=$1", alert_id)
        for level, units in UNITS.items():
            ids[level] = await conn.fetchval(
                """INSERT INTO notices (alert_id, level, step, issued_at, deadline, issued_by, reason)
                   VALUES ($1,$2,$3,$4,$5,'区安委办','11月3日09:00起未确认（0:05:00）') RETURNING id""",
                alert_id, level, STEP[level], NOW - timedelta(minutes=10 - STEP[level]), NOW + timedelta(hours=1))
            await register.insert_notice_units(conn, ids[level], units)
        await register.set_concerning(conn, ids["accountability"],
                                      [{"kind": "township", "id": "T1", "name": "城关镇"}])
    return ids


async def _audit(api, notice_id: int) -> list[tuple[str, str, dict]]:  # noqa: ANN001
    async with api.pool.acquire() as conn:
        rows = await conn.fetch("SELECT actor, action, detail FROM console_audit WHERE target=$1 ORDER BY id",
                                f"notice:{notice_id}")
    return [(r["actor"], r["action"], json.loads(r["detail"])) for r in rows]


async def test_the_register_per_unit_and_who_sees_what(api) -> None:  # noqa: ANN001
    ids = await _issue(api, api.seeded.alerts["gas_s1"])
    mine = set(ids.values())

    async def rows(user: str, **query: str) -> list[dict]:
        r = await api.client.get("/api/notices", headers=api.auth(user), params={"page_size": 500, **query})
        assert r.status_code == 200, r.text
        return [x for x in r.json()["items"] if x["notice_id"] in mine]

    everything = await rows("centre1")
    assert {(x["level_zh"], x["unit_kind"], x["unit_id"]) for x in everything} == {
        ("工作提醒单", "township", "T1"), ("风险警示单", "township", "T1"), ("风险警示单", "department", "D-ZJ"),
        ("问责建议单", "leader", "L1"), ("问责建议单", "centre", "duty")}
    assert {x["issued_by"] for x in everything} == {"区安委办"} and {x["state_zh"] for x in everything} == {"未签收"}
    assert {x["unit_id"] for x in await rows("centre1", township_id="T1")} == {"T1"}
    assert {(x["level"], x["unit_id"]) for x in await rows("centre1", department_id="D-ZJ")} == {("warning", "D-ZJ")}
    # a township and a department see their own notices; the 问责建议单 is the centre's record
    assert {(x["level"], x["unit_id"]) for x in await rows("town-t1")} == {("reminder", "T1"), ("warning", "T1")}
    assert {(x["level"], x["unit_id"]) for x in await rows("dept-zj")} == {("warning", "D-ZJ")}
    assert await rows("town-t2") == []
    r = await api.client.get("/api/notices", headers=api.auth("town-t1"), params={"township_id": "T2"})
    assert r.status_code == 403 and r.json()["detail"] == "无权查看：只能查看本单位的通知单台账"
    r = await api.client.get(f"/api/notices/{ids['warning']}", headers=api.auth("town-t2"))
    assert r.status_code == 404 and "未发给本单位" in r.json()["detail"]
    r = await api.client.get(f"/api/notices/{ids['accountability']}", headers=api.auth("town-t1"))
    assert r.status_code == 404
    r = await api.client.get(f"/api/notices/{ids['accountability']}", headers=api.auth("centre1"))
    assert r.status_code == 200 and r.json()["concerning"] == [{"kind": "township", "id": "T1", "name": "城关镇"}]
    detail = (await api.client.get(f"/api/notices/{ids['warning']}", headers=api.auth("dept-zj"))).json()
    assert [u["unit_id"] for u in detail["units"]] == ["D-ZJ"] and detail["level_zh"] == "风险警示单"
    r = await api.client.get("/api/notices", headers=api.auth("biz-s1"))
    assert r.status_code == 403  # a business has no notices: it gets the alarm and its reminders


async def test_sign_reply_and_close_with_permission_checks_and_audit(api) -> None:  # noqa: ANN001
    ids = await _issue(api, api.seeded.alerts["elev_s2"])
    warning = ids["warning"]
    url = f"/api/notices/{warning}"
    r = await api.client.post(f"{url}/sign", headers=api.auth("town-t1"))
    assert r.status_code == 200 and r.json()["result"] == "已签收", r.text
    assert r.json()["units"][0]["state_zh"] == "已签收" and r.json()["units"][0]["signed_by"] == "township:town-t1"
    r = await api.client.post(f"{url}/sign", headers=api.auth("town-t1"))
    assert r.json()["result"] == "此前已签收"
    # another township: as if the notice did not exist, and the attempt is on record
    r = await api.client.post(f"{url}/reply", headers=api.auth("town-t2"), json={"reply": "已处置"})
    assert r.status_code == 404 and r.json()["detail"] == f"通知单 {warning} 不存在或未发给本单位"
    # the centre cannot 办结 a part before the unit replied; the centre does not reply for it
    r = await api.client.post(f"{url}/close", headers=api.auth("centre1"), json={"unit": "township:T1", "note": "同意"})
    assert r.status_code == 409 and r.json()["detail"] == "该单位尚未回复，不能办结：请先督促其回复"
    r = await api.client.post(f"{url}/reply", headers=api.auth("centre1"), json={"reply": "代回复"})
    assert r.status_code == 403 and "无权访问" in r.json()["detail"]
    r = await api.client.post(f"{url}/reply", headers=api.auth("town-t1"),
                              json={"reply": "已督促物业关停电梯，维保单位到场修复，责任人李值班"})
    assert r.status_code == 200 and r.json()["notice_status"] == "open"  # 住建 has not replied yet
    r = await api.client.post(f"{url}/reply", headers=api.auth("dept-zj"), json={"reply": "已约谈维保单位"})
    assert r.status_code == 200 and r.json()["notice_status"] == "answered"
    r = await api.client.post(f"{url}/close", headers=api.auth("centre1"),
                              json={"unit": "township:T1", "note": "回复属实，同意办结"})
    assert r.status_code == 200 and r.json()["result"] == "已办结"
    r = await api.client.post(f"{url}/reply", headers=api.auth("town-t1"), json={"reply": "补充"})
    assert r.status_code == 409 and r.json()["detail"] == "本单位的通知单已办结，不能再回复"
    r = await api.client.post(f"{url}/close", headers=api.auth("centre1"), json={"unit": "township:T1", "note": "再次"})
    assert r.status_code == 409 and r.json()["detail"] == "该单位的通知单此前已办结"
    r = await api.client.post(f"{url}/close", headers=api.auth("centre1"),
                              json={"unit": "department:D-ZJ", "note": "同意"})
    assert r.status_code == 200 and r.json()["notice_status"] == "closed"
    r = await api.client.post(f"{url}/close", headers=api.auth("centre1"), json={"unit": "mayor:x", "note": "x"})
    assert r.status_code == 422
    audit = await _audit(api, warning)
    assert [(a, act) for a, act, _ in audit] == [
        ("township:town-t1", "notice.sign"), ("township:town-t2", "notice.refused"),
        ("centre:centre1", "notice.refused"), ("township:town-t1", "notice.reply"),
        ("department:dept-zj", "notice.reply"), ("centre:centre1", "notice.close"),
        ("township:town-t1", "notice.refused"), ("centre:centre1", "notice.refused"),
        ("centre:centre1", "notice.close")]
    assert audit[1][2] == {"action": "reply", "problem": f"通知单 {warning} 不存在或未发给本单位"}
    async with api.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM notice_units WHERE notice_id=$1 AND unit_id='T1'", warning)
    assert row["reply"].startswith("已督促物业关停电梯") and row["closed_by"] == "centre:centre1"
    assert row["close_note"] == "回复属实，同意办结"
