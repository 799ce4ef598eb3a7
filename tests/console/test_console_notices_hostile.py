"""通知单台账 under hostile input (issue 14): a township acting on another township's notice, a
reply or 办结意见 that is empty, too long or hides control characters, and a cookie session's
write from a forged origin. Each refusal: its Chinese
detail and its ``console_audit`` row; nothing is written to the register. Real PostgreSQL and
the console app in process (tests/console/conftest.py ``api``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_console_notices import _audit, _issue

from console.routes.notices import MAX_TEXT

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _unit_row(api: Any, notice_id: int, unit_id: str) -> Any:
    async with api.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM notice_units WHERE notice_id=$1 AND unit_id=$2",
                                   notice_id, unit_id)


async def test_a_township_cannot_sign_or_reply_for_another_township(api: Any) -> None:
    ids = await _issue(api, api.seeded.alerts["fire_s3"])
    notice = ids["reminder"]  # addressed to 城关镇 (T1)
    for action, body in (("sign", None), ("reply", {"reply": "已处置"})):
        r = await api.client.post(f"/api/notices/{notice}/{action}", headers=api.auth("town-t2"), json=body)
        assert (r.status_code, r.json()["detail"]) == (404, f"通知单 {notice} 不存在或未发给本单位"), r.text
    # nor read it: the same answer as for a notice that does not exist
    r = await api.client.get(f"/api/notices/{notice}", headers=api.auth("town-t2"))
    assert r.status_code == 404
    # the 问责建议单 that concerns 城关镇 is the leaders' record: 城关镇 cannot reply to it either
    r = await api.client.post(f"/api/notices/{ids['accountability']}/reply", headers=api.auth("town-t1"),
                              json={"reply": "已处置"})
    leaders = ids["accountability"]
    assert (r.status_code, r.json()["detail"]) == (404, f"通知单 {leaders} 不存在或未发给本单位")
    r = await api.client.post(f"/api/notices/{2**61}/sign", headers=api.auth("town-t2"))
    assert (r.status_code, r.json()["detail"]) == (404, f"通知单 {2**61} 不存在或未发给本单位")
    row = await _unit_row(api, notice, "T1")
    assert row["signed_at"] is None and not row["reply"]  # nothing written for T1
    audit = await _audit(api, notice)
    assert [(a, act, d["action"]) for a, act, d in audit] == [
        ("township:town-t2", "notice.refused", "sign"), ("township:town-t2", "notice.refused", "reply")]
    assert audit[0][2]["problem"] == f"通知单 {notice} 不存在或未发给本单位"


@pytest.mark.parametrize(("text", "detail"), [
    ("   \n\t ", "回复不能为空"),
    ("已处置" * 667, f"回复过长：最多{MAX_TEXT}字（现有2001字）"),
    ("已处置\x1b[2J", "回复含有不可见的控制字符，请删除后重试"),
    ("已处置\u202e办结", "回复含有不可见的控制字符，请删除后重试"),  # right-to-left override
    ("已\u200b处置", "回复含有不可见的控制字符，请删除后重试"),  # zero-width space
], ids=["blank", "too-long", "escape", "bidi-override", "zero-width"])
async def test_a_reply_that_cannot_go_into_the_register_is_refused_and_audited(
        api: Any, text: str, detail: str) -> None:
    ids = await _issue(api, api.seeded.alerts["gas_s1"])
    notice = ids["reminder"]
    r = await api.client.post(f"/api/notices/{notice}/reply", headers=api.auth("town-t1"),
                              json={"reply": text})
    assert (r.status_code, r.json()["detail"]) == (422, detail), r.text
    assert (await _unit_row(api, notice, "T1"))["replied_at"] is None
    [(actor, action, what)] = await _audit(api, notice)
    assert (actor, action) == ("township:town-t1", "notice.refused")
    assert what == {"action": "reply", "problem": detail}


async def test_lines_and_tabs_are_a_reply_and_the_limit_is_the_limit(api: Any) -> None:
    ids = await _issue(api, api.seeded.alerts["gas_s1"])
    notice = ids["reminder"]
    text = "一、已关阀\n二、已通风\t责任人李值班\r\n" + "。" * (MAX_TEXT - 30)
    assert len(text.strip()) <= MAX_TEXT
    r = await api.client.post(f"/api/notices/{notice}/reply", headers=api.auth("town-t1"),
                              json={"reply": text})
    assert r.status_code == 200 and r.json()["result"] == "已回复", r.text
    assert (await _unit_row(api, notice, "T1"))["reply"] == text.strip()
    r = await api.client.post(f"/api/notices/{notice}/close", headers=api.auth("centre1"),
                              json={"unit": "township:T1", "note": "同意\x07"})
    assert (r.status_code, r.json()["detail"]) == (422, "办结意见含有不可见的控制字符，请删除后重试")
    assert (await _unit_row(api, notice, "T1"))["closed_at"] is None
    actor, action, what = (await _audit(api, notice))[-1]
    assert (actor, action) == ("centre:centre1", "notice.refused")
    assert what == {"action": "close", "unit": "township:T1",
                    "problem": "办结意见含有不可见的控制字符，请删除后重试"}
    r = await api.client.post(f"/api/notices/{notice}/reply", headers=api.auth("town-t1"),
                              json={"reply": "x" * (4 * MAX_TEXT + 1)})  # more than a request may carry
    assert r.status_code == 422 and r.json()["detail"].startswith("请求有误：回复"), r.text


async def test_a_cookie_sessions_write_from_a_forged_origin_is_refused_and_audited(api: Any) -> None:
    ids = await _issue(api, api.seeded.alerts["gas_s1"])
    notice = ids["reminder"]
    token, csrf = api.tokens["town-t1"]
    cookie = {"Cookie": f"hazmon_session={token}"}
    url = f"/api/notices/{notice}/reply"
    r = await api.client.post(url, headers={**cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
                              json={"reply": "已处置"})
    assert (r.status_code, r.json()["detail"]) == (403, "跨站请求被拒绝"), r.text
    r = await api.client.post(url, headers={**cookie, "Origin": "http://console.test"},
                              json={"reply": "已处置"})
    assert (r.status_code, r.json()["detail"]) == (403, "页面已过期（缺少防伪校验），请刷新页面"), r.text
    assert (await _unit_row(api, notice, "T1"))["replied_at"] is None
    async with api.pool.acquire() as conn:
        rows = await conn.fetch("SELECT actor, detail FROM console_audit WHERE action = 'auth.csrf_refused'"
                                " AND target = $1 ORDER BY id", url)
    assert [(r["actor"], json.loads(r["detail"])) for r in rows][-2:] == [
        ("township:town-t1", {"reason": "cross_site", "method": "POST", "origin": "https://evil.example"}),
        ("township:town-t1", {"reason": "csrf_token", "method": "POST", "origin": "http://console.test"})]
    # the page itself, same origin and with its token: accepted
    r = await api.client.post(url, headers={**cookie, "X-CSRF-Token": csrf, "Origin": "http://console.test"},
                              json={"reply": "已处置"})
    assert r.status_code == 200, r.text
