"""Login, sessions, CSRF, rate limiting — on a fresh database with a controllable clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_district import PASSWORD

from console.auth import SESSION_COOKIE

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def login(api, username, password=PASSWORD, **kw):
    return await api.client.post("/api/auth/login", json={"username": username, "password": password}, **kw)


async def test_login_sets_httponly_cookie_and_me_gives_csrf(fresh_api):
    r = await login(fresh_api, "centre1")
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    me = await fresh_api.client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["role"] == "centre" and me.json()["csrf_token"]
    async with fresh_api.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT password_hash FROM console_users WHERE username='centre1'")
    assert stored.startswith("$argon2id$")


async def test_cookie_writes_need_the_csrf_header(fresh_api):
    await login(fresh_api, "centre1")
    csrf = (await fresh_api.client.get("/api/auth/me")).json()["csrf_token"]
    aid = fresh_api.seeded.alerts["elev_s2"]
    r = await fresh_api.client.post(f"/api/alerts/{aid}/acknowledge", json={})
    assert r.status_code == 403 and "防伪校验" in r.json()["detail"]
    r = await fresh_api.client.post(f"/api/alerts/{aid}/acknowledge", json={}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    r = await fresh_api.client.post(f"/api/alerts/{aid}/acknowledge", json={},
                                    headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["detail"] == "跨站请求被拒绝"
    r = await fresh_api.client.post(f"/api/alerts/{aid}/acknowledge", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text


async def test_wrong_password_then_rate_limit_with_retry_after(fresh_api, clock):
    for _ in range(5):
        r = await login(fresh_api, "town-t1", "wrong password!")
        assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = await login(fresh_api, "town-t1")  # even the right password waits now
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    clock.now += timedelta(minutes=16)
    r = await login(fresh_api, "town-t1")
    assert r.status_code == 200


async def test_unknown_user_gets_the_same_answer(fresh_api):
    r = await login(fresh_api, "nobody-here", "whatever it is")
    assert r.status_code == 401 and "用户名或密码错误" in r.text


async def test_session_expires(fresh_api, clock):
    r = await login(fresh_api, "biz-s1")
    token = r.json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    assert (await fresh_api.client.get("/api/auth/me", headers=h)).status_code == 200
    clock.now += timedelta(hours=8, seconds=1)
    r = await fresh_api.client.get("/api/auth/me", headers=h)
    assert r.status_code == 401 and r.json()["detail"] == "会话已过期，请重新登录"


async def test_logout_and_deactivation_end_sessions(fresh_api):
    token = (await login(fresh_api, "town-t2")).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    assert (await fresh_api.client.post("/api/auth/logout", headers=h)).status_code == 200
    assert (await fresh_api.client.get("/api/auth/me", headers=h)).status_code == 401
    token = (await login(fresh_api, "town-t2")).json()["token"]
    r = await fresh_api.client.delete("/api/users/town-t2", headers=fresh_api.auth("admin1"))
    assert r.status_code == 200
    assert (await fresh_api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await login(fresh_api, "town-t2")).status_code == 401
