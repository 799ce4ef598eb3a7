"""Authentication, per-endpoint access rules, CSRF and security headers.

* Passwords: argon2id via argon2-cffi (RFC 9106 parameters); rehashed on login when the
  parameters change. Unknown users cost the same verify as known ones.
* Sessions: a random 256-bit token in an HttpOnly, SameSite=Strict cookie (the page) or an
  ``Authorization: Bearer`` header (API clients). Only its SHA-256 is stored; absolute expiry
  of ``console.session_ttl_s``.
* CSRF: cookie-authenticated unsafe requests must carry ``X-CSRF-Token`` equal to the
  session's token (given to the page by ``/api/auth/me``), and a foreign ``Origin`` is refused.
  Bearer requests need none (a browser never attaches that header by itself).
* Login throttle: wrong passwords per (account, source address) and per source address lock
  that key with growing lock times; an attempt is taken under a row lock *before* its password
  is checked (no race past the limit); successful logins per account are limited too. Counted
  in PostgreSQL (``console_login_throttle``) so it holds across processes and restarts.
  Failures from one address never lock the owner out from another.
* argon2 runs in worker threads, a few at a time (:class:`PasswordChecks`): the event loop,
  and with it every other request, never waits for a password check.
* Access rules: every route declares the roles it admits with :func:`access`; the rule is
  enforced by a dependency *and* published in the OpenAPI spec as ``x-roles``, which the
  authorization test reads, so a new endpoint without a rule fails the test suite.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.pool import acquire
from console.scope import Principal, Role
from hazmon.errors import HazmonError
from hazmon.logs import kv
from hazmon.proxies import client_address, parse_networks

__all__ = [
    "SESSION_COOKIE",
    "CSRF_HEADER",
    "PUBLIC",
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
    "new_session",
    "check_login_allowed",
    "record_login",
    "authenticate",
    "access",
    "SecurityHeaders",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "hazmon_session"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC = "public"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("dummy password for timing equalisation")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class PasswordChecks:
    """argon2 off the event loop: each check runs in a worker thread (argon2-cffi releases the
    GIL), at most ``concurrency`` at once — each takes a core and 64 MiB; the rest wait their
    turn without blocking anything else (20 logins on the loop took health from 3 ms to 2.6 s)."""

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)

    async def verify(self, stored_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(verify_password, stored_hash, password)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(hash_password, password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


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
        """INSERT INTO console_sessions (token_hash, username, csrf_token, created_at, expires_at, ip, user_agent)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        _token_hash(token), username, csrf, now, expires, ip[:64], user_agent[:300],
    )
    # housekeeping: expired sessions of this user go when a new one starts
    await conn.execute("DELETE FROM console_sessions WHERE username = $1 AND expires_at < $2", username, now)
    return token, csrf, expires


async def end_session(conn: Any, token: str) -> None:
    await conn.execute("DELETE FROM console_sessions WHERE token_hash = $1", _token_hash(token))


@dataclass(frozen=True)
class LoginLimits:
    """Login throttle (issue 17 item 12).

    ``per_user`` wrong passwords per (account, source address) and ``per_ip`` per source address
    over all accounts, within ``window_s``, lock that key for ``lock_s`` · 2^(locks so far),
    at most ``max_lock_s``; a success clears the (account, source) streak and its backoff; a
    key quiet for ``forget_s`` starts over. ``ok_per_user`` successful logins per account within
    ``window_s`` (each costs an argon2 check and a session) — the next attempt waits.
    (:func:`check_login_allowed` / :func:`record_login` read ``per_user``/``per_ip``/``window_s``
    as plain sliding-window counts, for callers such as the SMS short-link page.)"""

    per_user: int = 5
    per_ip: int = 30
    window_s: int = 15 * 60
    lock_s: int = 60
    max_lock_s: int = 3600
    forget_s: int = 24 * 3600
    ok_per_user: int = 20
    #: a taken attempt whose check never finished (process killed) stops counting after this
    pending_s: int = 60


_SOURCE_KEY = "*"


def login_source(ip: str) -> str:
    """The source a failure is counted against: the address; IPv6 by its /64 (one host holds
    a whole /64, so single addresses would be free to rotate)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


class LoginRefused(HazmonError):
    """An attempt that may not be tried now; ``detail`` is for users (Chinese first)."""

    def __init__(self, retry_after: int, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.detail = detail
        self.reason = reason


def _lock_duration(limits: LoginLimits, lockouts: int) -> timedelta:
    """The ``lockouts``-th lock (1-based): lock_s, 2·lock_s, 4·lock_s, … up to max_lock_s."""
    return timedelta(seconds=min(limits.max_lock_s, limits.lock_s * 2 ** min(max(lockouts - 1, 0), 30)))


def _secs(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))


async def take_login_attempt(conn: Any, username: str, source: str, *, now: datetime, limits: LoginLimits) -> None:
    """Take one attempt for (username, source) before its password is checked, or raise
    :class:`LoginRefused`. Both throttle rows are locked (in a fixed order: no deadlock) for
    the check-and-count, so N concurrent attempts take at most the limit between them."""
    keys = sorted({username, _SOURCE_KEY})  # '*' sorts first
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO console_login_throttle (username, source, window_start, last_at)
               VALUES ($1, $2, $3, $3) ON CONFLICT DO NOTHING""",
            [(k, source, now) for k in keys],
        )
        rows = await conn.fetch(
            """SELECT * FROM console_login_throttle WHERE source = $1 AND username = ANY($2::text[])
               ORDER BY username FOR UPDATE""",
            source, keys,
        )
        state = {r["username"]: dict(r) for r in rows}
        for key, limit in ((username, limits.per_user), (_SOURCE_KEY, limits.per_ip)):
            st = state[key]
            if st["last_at"] <= now - timedelta(seconds=limits.forget_s):  # long quiet: start over
                st.update(failures=0, lockouts=0, locked_until=None, window_start=now, pending=0)
            if st["last_at"] <= now - timedelta(seconds=limits.pending_s):
                st["pending"] = 0  # checks that never reported back (process gone)
            if st["window_start"] <= now - timedelta(seconds=limits.window_s):
                st.update(failures=0, window_start=now)
            locked = st["locked_until"] is not None and st["locked_until"] > now
            who = "该账号在本地址" if key != _SOURCE_KEY else "本地址"
            if locked or st["failures"] >= limit:
                wait = st["locked_until"] - now if locked else _lock_duration(limits, st["lockouts"] + 1)
                raise LoginRefused(
                    _secs(wait),
                    f"{who}登录失败次数过多，请在 {_secs(wait)} 秒后重试 "
                    f"(too many failed logins; retry in {_secs(wait)} s)",
                    "failures" if key != _SOURCE_KEY else "source",
                )
            if st["failures"] + st["pending"] >= limit:  # the checks in flight could use up the limit
                raise LoginRefused(
                    2,
                    f"{who}同时进行的登录过多，请稍后重试 (too many logins in progress; retry in 2 s)",
                    "in_progress",
                )
        oks = await conn.fetchval(
            "SELECT count(*) FROM console_login_attempts WHERE username = $1 AND ok AND at > $2",
            username, now - timedelta(seconds=limits.window_s),
        )
        if oks >= limits.ok_per_user:
            first = await conn.fetchval(
                """SELECT at FROM console_login_attempts WHERE username = $1 AND ok AND at > $2
                   ORDER BY at DESC OFFSET $3 LIMIT 1""",
                username, now - timedelta(seconds=limits.window_s), limits.ok_per_user - 1,
            )
            wait = (first or now) + timedelta(seconds=limits.window_s) - now
            raise LoginRefused(
                _secs(wait),
                f"登录过于频繁（{limits.window_s // 60} 分钟内已成功登录 {oks} 次），请在 {_secs(wait)} 秒后重试 "
                f"(too many logins; retry in {_secs(wait)} s)",
                "successes",
            )
        for key in keys:
            st = state[key]
            await conn.execute(
                """UPDATE console_login_throttle
                   SET failures = $3, pending = $4 + 1, window_start = $5, locked_until = $6, lockouts = $7, last_at = $8
                   WHERE username = $1 AND source = $2""",
                key, source, st["failures"], st["pending"], st["window_start"], st["locked_until"], st["lockouts"], now,
            )


async def finish_login_attempt(
    conn: Any, username: str, source: str, ip: str, ok: bool, *, now: datetime, limits: LoginLimits
) -> None:
    """Report a taken attempt: on record in ``console_login_attempts``; a failure counts (and
    may lock with backoff), a success clears the (account, source) streak."""
    keys = sorted({username, _SOURCE_KEY})
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO console_login_attempts (at, username, ip, ok) VALUES ($1, $2, $3, $4)",
            now, username[:64], ip[:64], ok,
        )
        rows = await conn.fetch(
            """SELECT * FROM console_login_throttle WHERE source = $1 AND username = ANY($2::text[])
               ORDER BY username FOR UPDATE""",
            source, keys,
        )
        for r in rows:
            st = dict(r)
            st["pending"] = max(0, st["pending"] - 1)
            limit = limits.per_ip if st["username"] == _SOURCE_KEY else limits.per_user
            if ok and st["username"] != _SOURCE_KEY:
                st.update(failures=0, lockouts=0, locked_until=None, window_start=now)
            elif not ok:
                st["failures"] += 1
                if st["failures"] >= limit:
                    st["lockouts"] += 1
                    st.update(failures=0, window_start=now, locked_until=now + _lock_duration(limits, st["lockouts"]))
                    log.warning("login locked %s", kv(
                        user=st["username"], source=source, lockouts=st["lockouts"],
                        seconds=_secs(st["locked_until"] - now)))
            await conn.execute(
                """UPDATE console_login_throttle
                   SET failures = $3, pending = $4, window_start = $5, locked_until = $6, lockouts = $7, last_at = $8
                   WHERE username = $1 AND source = $2""",
                st["username"], source, st["failures"], st["pending"], st["window_start"], st["locked_until"],
                st["lockouts"], now,
            )
        if secrets.randbelow(100) == 0:  # housekeeping: keys quiet for forget_s go
            await conn.execute(
                """DELETE FROM console_login_throttle
                   WHERE last_at < $1 AND (locked_until IS NULL OR locked_until < $2)""",
                now - timedelta(seconds=limits.forget_s), now,
            )


async def check_login_allowed(conn: Any, username: str, ip: str, *, now: datetime, limits: LoginLimits) -> int:
    """Plain sliding-window limit (failures per key and per address): 0 when an attempt may
    proceed, else the seconds to wait (→ 429 Retry-After). The console login uses
    :func:`take_login_attempt` instead."""
    since = now - timedelta(seconds=limits.window_s)
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE username = $1) AS by_user,
                  min(at) FILTER (WHERE username = $1) AS first_user,
                  count(*) FILTER (WHERE ip = $2) AS by_ip,
                  min(at) FILTER (WHERE ip = $2) AS first_ip
           FROM console_login_attempts
           WHERE NOT ok AND at > $3 AND (username = $1 OR ip = $2)""",
        username, ip, since,
    )
    waits = []
    if row["by_user"] >= limits.per_user:
        waits.append(row["first_user"] + timedelta(seconds=limits.window_s) - now)
    if row["by_ip"] >= limits.per_ip:
        waits.append(row["first_ip"] + timedelta(seconds=limits.window_s) - now)
    if not waits:
        return 0
    return max(1, int(max(waits).total_seconds()) + 1)


async def record_login(conn: Any, username: str, ip: str, ok: bool, *, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO console_login_attempts (at, username, ip, ok) VALUES ($1, $2, $3, $4)",
        now, username[:64], ip[:64], ok,
    )
    if ok:  # a success clears this account's failure streak
        await conn.execute(
            "DELETE FROM console_login_attempts WHERE username = $1 AND NOT ok AND at <= $2", username, now
        )


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


def _same_origin(request: Request) -> bool:
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
        raise HTTPException(401, "session expired or unknown (会话已过期，请重新登录)", headers={"WWW-Authenticate": "Bearer"})
    principal = _principal_from_row(row, via)
    request.state.session_hash = _token_hash(token)
    if via == "cookie" and request.method in _UNSAFE:
        if not _same_origin(request):
            raise HTTPException(403, "跨站请求被拒绝 (cross-origin request refused, CSRF)")
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not secrets.compare_digest(sent, principal.csrf_token):
            raise HTTPException(403, f"缺少或错误的 {CSRF_HEADER} 请求头，请刷新页面 (missing or wrong {CSRF_HEADER} header, CSRF)")
    request.state.principal = principal
    return principal


class _Guard:
    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in self.roles:
            log.info("access denied %s", kv(user=principal.username, role=principal.role, path=request.url.path))
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
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
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
