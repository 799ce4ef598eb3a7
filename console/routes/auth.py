"""Sign in and out (登录/退出), and who am I."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from console.auth import (
    _DUMMY_HASH,
    PUBLIC,
    SESSION_COOKIE,
    _same_origin,
    access,
    check_login_allowed,
    end_session,
    hash_password,
    needs_rehash,
    new_session,
    record_login,
    verify_password,
)
from console.routes._common import Conn, CurrentPrincipal
from console.scope import ALL_ROLES
from hazmon.logs import kv

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
    password: Annotated[str, Field(min_length=1, max_length=256)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/login", summary="登录 (password → session cookie + bearer token)", **access(PUBLIC))
async def login(body: LoginBody, request: Request, response: Response, conn: Conn) -> dict:
    app = request.app
    now = app.state.clock()
    ip = _client_ip(request)
    username = body.username.strip().lower()
    if not _same_origin(request):
        raise HTTPException(403, "cross-origin login refused (CSRF)")
    wait = await check_login_allowed(conn, username, ip, now=now, limits=app.state.login_limits)
    if wait:
        log.warning("login rate limited %s", kv(user=username, ip=ip, retry_after=wait))
        raise HTTPException(
            429, f"too many failed logins; retry in {wait} s (登录失败次数过多)", headers={"Retry-After": str(wait)}
        )
    row = await conn.fetchrow(
        "SELECT username, password_hash, role, display_name, active FROM console_users WHERE username = $1", username
    )
    ok = verify_password(row["password_hash"] if row else _DUMMY_HASH, body.password) and bool(row and row["active"])
    await record_login(conn, username, ip, ok, now=now)
    if not ok or row is None:
        log.info("login failed %s", kv(user=username, ip=ip))
        raise HTTPException(401, "wrong username or password (用户名或密码错误)")
    if needs_rehash(row["password_hash"]):
        await conn.execute(
            "UPDATE console_users SET password_hash = $2 WHERE username = $1", username, hash_password(body.password)
        )
    ttl = app.state.settings.console.session_ttl_s
    token, csrf, expires = await new_session(
        conn, username, ttl_s=ttl, now=now, ip=ip, user_agent=request.headers.get("user-agent", "")
    )
    response.set_cookie(
        SESSION_COOKIE, token, max_age=ttl, httponly=True, samesite="strict",
        secure=app.state.settings.console.secure_cookies, path="/",
    )
    log.info("login %s", kv(user=username, role=row["role"], ip=ip))
    return {
        "token": token,
        "csrf_token": csrf,
        "expires_at": expires.isoformat(),
        "user": {"username": username, "role": row["role"], "display_name": row["display_name"]},
    }


@router.post("/logout", summary="退出", **access(*ALL_ROLES))
async def logout(request: Request, response: Response, conn: Conn, principal: CurrentPrincipal) -> dict:
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")
    await end_session(conn, token)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me", summary="当前用户 (and the CSRF token for the page)", **access(*ALL_ROLES))
async def me(principal: CurrentPrincipal) -> dict:
    return {
        "username": principal.username,
        "role": principal.role.value,
        "role_zh": principal.role.zh,
        "display_name": principal.display_name,
        "department_id": principal.department_id,
        "township_id": principal.township_id,
        "site_ids": list(principal.site_ids),
        "vendor_id": principal.vendor_id,
        "csrf_token": principal.csrf_token,
    }
