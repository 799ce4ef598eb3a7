"""Sessions, per-endpoint access rules, CSRF and security headers.

How a password is checked: console/passwords.py; how often one may be tried: console/login_throttle.py
(both re-exported here, the console's sign-in surface).

* Sessions: a random 256-bit token in an HttpOnly, SameSite=Strict cookie (the page) or an
  ``Authorization: Bearer`` header (API clients). Only its SHA-256 is stored; absolute expiry
  of ``console.session_ttl_s``.
* CSRF: cookie-authenticated unsafe requests must carry ``X-CSRF-Token`` equal to the
  session's token (given to the page by ``/api/auth/me``), and a foreign ``Origin`` is refused
  (:func:`same_origin`, also the check of the sign-in endpoints, which have no session yet).
  Bearer requests need none (a browser never attaches that header by itself).
* Access rules: every route declares the roles it admits with :func:`access`; the rule is
  enforced by a dependency *and* published in the OpenAPI spec as ``x-roles``, which the
  authorization test reads, so a new endpoint without a rule fails the test suite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.login_throttle import (
    LoginLimits,
    LoginRefused,
    check_login_allowed,
    finish_login_attempt,
    login_source,
    record_login,
    take_login_attempt,
)
from console.passwords import DUMMY_HASH, PasswordChecks, hash_password, needs_rehash, verify_password
from console.pool import acquire
from console.scope import Principal, Role
from hazmon.logs import kv
from hazmon.proxies import client_address, parse_networks

__all__ = [
    "SESSION_COOKIE",
    "CSRF_HEADER",
    "PUBLIC",
    "DUMMY_HASH",
    "LoginLimits",
    "LoginRefused",
    "PasswordChecks",
    "login_source",
    "client_address",
    "parse_networks",
    "take_login_attempt",
    "finish_login_attempt",
    "hash_password",
    "verify_password",
    "needs_rehash",
    "new_session",
    "end_session",
    "check_login_allowed",
    "record_login",
    "same_origin",
    "authenticate",
    "access",
    "SecurityHeaders",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "hazmon_session"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC = "public"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_session(
    conn: Any, username: str, *, ttl_s: int, now: datetime, ip: str = "", user_agent: str = ""
) -> tuple[str, str, datetime]:
    """Create a session; returns (token, csrf_token, expires_at). The token is shown once."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = now + timedelta(seconds=ttl_s)
    await conn.execute(
        """INSERT INTO console_sessions
             (token_hash, username, csrf_token, created_at, expires_at, ip, user_agent)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        _token_hash(token), username, csrf, now, expires, ip[:64], user_agent[:300],
    )
    # housekeeping: expired sessions of this user go when a new one starts
    await conn.execute("DELETE FROM console_sessions WHERE username = $1 AND expires_at < $2", username, now)
    return token, csrf, expires


async def end_session(conn: Any, token: str) -> None:
    await conn.execute("DELETE FROM console_sessions WHERE token_hash = $1", _token_hash(token))



def _principal_from_row(row: asyncpg.Record, via: str) -> Principal:
    return Principal(
        username=row["username"],
        role=Role(row["role"]),
        display_name=row["display_name"],
        department_id=row["department_id"],
        township_id=row["township_id"],
        site_ids=tuple(row["site_ids"] or ()),
        vendor_id=row["vendor_id"],
        village_ids=tuple(row["village_ids"] or ()),
        maintainer_id=row["maintainer_id"],
        phone=row["phone"],
        csrf_token=row["csrf_token"],
        via=via,
    )


def same_origin(request: Request) -> bool:
    """No ``Origin``, or one naming this host: not a cross-site request (``null`` is not)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


async def authenticate(request: Request) -> Principal:
    """The principal of this request, or 401. Checks CSRF for cookie-authenticated writes."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token, via = auth[7:].strip(), "bearer"
    else:
        token, via = request.cookies.get(SESSION_COOKIE, ""), "cookie"
    if not token or len(token) > 200:
        raise HTTPException(401, "not signed in (请先登录)", headers={"WWW-Authenticate": "Bearer"})
    app = request.app
    now = app.state.clock()
    async with acquire(app) as conn:
        row = await conn.fetchrow(
            """SELECT u.username, u.role, u.display_name, u.department_id, u.township_id, u.site_ids,
                      u.vendor_id, u.village_ids, u.maintainer_id, u.phone, s.csrf_token
               FROM console_sessions s JOIN console_users u USING (username)
               WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active""",
            _token_hash(token), now,
        )
    if row is None:
        raise HTTPException(401, "session expired or unknown (会话已过期，请重新登录)",
                            headers={"WWW-Authenticate": "Bearer"})
    principal = _principal_from_row(row, via)
    request.state.session_hash = _token_hash(token)
    if via == "cookie" and request.method in _UNSAFE:
        if not same_origin(request):
            raise await _csrf_refused(request, principal, "cross_site",
                                      "跨站请求被拒绝 (cross-origin request refused, CSRF)")
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not secrets.compare_digest(sent, principal.csrf_token):
            raise await _csrf_refused(request, principal, "csrf_token",
                                      f"缺少或错误的 {CSRF_HEADER} 请求头，请刷新页面 "
                                      f"(missing or wrong {CSRF_HEADER} header, CSRF)")
    request.state.principal = principal
    return principal


def _printable(text: str, limit: int = 200) -> str:
    """What a request said, fit for a text column (no NUL, no control characters)."""
    return "".join(c for c in text[:limit] if c.isprintable())


async def _csrf_refused(request: Request, principal: Principal, reason: str, detail: str) -> HTTPException:
    """A cookie-authenticated write refused as cross-site: on record (``auth.csrf_refused``,
    the account, the path, the Origin it came with) and in the log; the request did nothing."""
    origin, path = (_printable(request.headers.get("origin", "")), _printable(request.url.path))
    async with acquire(request.app) as conn:
        await conn.execute(
            "INSERT INTO console_audit (actor, action, target, detail) VALUES ($1, $2, $3, $4::jsonb)",
            principal.actor, "auth.csrf_refused", path,
            json.dumps({"reason": reason, "method": request.method, "origin": origin}, ensure_ascii=False))
    log.warning("csrf refused %s", kv(user=principal.username, reason=reason, path=path, origin=origin))
    return HTTPException(403, detail)


class _Guard:
    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, request: Request,
                       principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in self.roles:
            log.info("access denied %s",
                     kv(user=principal.username, role=principal.role, path=request.url.path))
            raise HTTPException(403, f"无权访问：{principal.role.zh}账号不能使用该功能")
        return principal


def access(*roles: Role | str) -> dict[str, Any]:
    """Route keyword arguments admitting ``roles`` (or ``PUBLIC``): the enforced dependency and
    the ``x-roles`` OpenAPI extension, so the rule is declared once and visible in the spec."""
    if roles == (PUBLIC,):
        return {"openapi_extra": {"x-roles": [PUBLIC]}}
    admitted = frozenset(Role(r) for r in roles)
    if not admitted:
        raise ValueError("an access rule admits at least one role")
    return {
        "dependencies": [Depends(_Guard(admitted))],
        "openapi_extra": {"x-roles": sorted(r.value for r in admitted)},
    }


_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class SecurityHeaders:
    """Pure ASGI middleware (does not buffer the SSE stream) adding security headers."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", _CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(self)"),  # 到场签到: field.js
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
                if is_api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
