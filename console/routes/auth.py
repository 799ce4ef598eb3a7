"""Sign in and out (登录/退出), and who am I."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from console.auth import PUBLIC, SESSION_COOKIE, access, client_address, end_session, new_session, same_origin
from console.login_throttle import LoginRefused, finish_login_attempt, login_source, take_login_attempt
from console.passwords import DUMMY_HASH, needs_rehash
from console.pool import acquire
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
    peer = request.client.host if request.client else ""
    return client_address(peer, request.headers.get("x-forwarded-for", ""), request.app.state.trusted_proxies)


@router.post(
    "/login",
    summary="登录 (password → session cookie + bearer token)",
    responses={429: {"description": "登录失败次数过多 / 登录过于频繁 (throttled; Retry-After)"}},
    **access(PUBLIC),
)
async def login(body: LoginBody, request: Request, response: Response) -> dict:
    """No connection is held across the password check: the attempt is taken, the user read,
    and the outcome recorded each with a connection borrowed for a moment."""
    app = request.app
    now = app.state.clock()
    ip = _client_ip(request)
    source = login_source(ip)
    username = body.username.strip().lower()
    limits = app.state.login_limits
    if not same_origin(request):
        raise HTTPException(403, "跨站登录请求被拒绝 (cross-origin login refused, CSRF)")
    async with acquire(app) as conn:
        try:
            await take_login_attempt(conn, username, source, now=now, limits=limits)
        except LoginRefused as exc:
            log.warning("login throttled %s",
                        kv(user=username, ip=ip, reason=exc.reason, retry_after=exc.retry_after))
            raise HTTPException(429, exc.detail, headers={"Retry-After": str(exc.retry_after)}) from None
        row = await conn.fetchrow(
            "SELECT username, password_hash, role, display_name, active FROM console_users"
            " WHERE username = $1",
            username,
        )
    checks = app.state.password_checks
    ok = False
    try:
        # unknown users cost the same check as known ones
        ok = await checks.verify(row["password_hash"] if row else DUMMY_HASH, body.password)
        ok = ok and bool(row and row["active"])
    finally:
        async with acquire(app) as conn:
            await finish_login_attempt(conn, username, source, ip, ok, now=now, limits=limits)
    if not ok or row is None:
        log.info("login failed %s", kv(user=username, ip=ip))
        raise HTTPException(401, "用户名或密码错误 (wrong username or password)")
    new_hash = await checks.hash(body.password) if needs_rehash(row["password_hash"]) else None
    async with acquire(app) as conn:
        if new_hash:
            await conn.execute("UPDATE console_users SET password_hash = $2 WHERE username = $1",
                               username, new_hash)
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
    bearer = auth.lower().startswith("bearer ")
    token = auth[7:].strip() if bearer else request.cookies.get(SESSION_COOKIE, "")
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
        "village_ids": list(principal.village_ids),
        "maintainer_id": principal.maintainer_id,
        "csrf_token": principal.csrf_token,
    }
