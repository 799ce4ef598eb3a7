"""短信验证码登录 (sign-in by phone and one-time SMS code) for 网格员 and 维保单位: the API, and
the two steps the phone pages (console/routes/otp_pages.py) share with it. Who may and the rules
of a code: console/otp.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from alerting.login_code import scrub
from console.auth import PUBLIC, SESSION_COOKIE, access, client_address, new_session, same_origin
from console.login_throttle import LoginRefused, finish_login_attempt, login_source, take_login_attempt
from console.otp import (
    CODE_TTL,
    SENT_TEXT,
    FieldAccount,
    OtpLimits,
    OtpRefused,
    SmsConfig,
    audit,
    check_usable,
    claim_code,
    ensure_account,
    latest_code,
    new_code,
    parse_phone,
    record_request,
    resolve,
    send,
    spend_attempt,
    take_request,
)
from console.passwords import DUMMY_HASH
from console.pool import acquire
from hazmon.logs import kv

__all__ = ["router", "SignedIn", "client_ip", "request_code", "sign_in", "set_session_cookie",
           "refuse_request"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth/otp", tags=["auth"])

Phone = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9+()\- ]+$")]


class CodeRequestBody(BaseModel):
    phone: Phone


class CodeLoginBody(BaseModel):
    phone: Phone
    code: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[^\x00-\x1f\x7f]+$")]


@dataclass(frozen=True)
class SignedIn:
    token: str
    csrf: str
    expires: datetime
    account: FieldAccount
    phone: str


def client_ip(request: Request) -> str:
    peer = request.client.host if request.client else ""
    return client_address(peer, request.headers.get("x-forwarded-for", ""), request.app.state.trusted_proxies)


def _limits(app: Any) -> OtpLimits:
    return getattr(app.state, "otp_limits", None) or OtpLimits()


async def _audit_refusal(conn: Any, phone: str, exc: OtpRefused, *, step: str, ip: str,
                         now: datetime) -> None:
    await audit(conn, "otp.refused", phone, now=now, step=step, reason=exc.reason, message=exc.detail, ip=ip)
    log.info("otp refused %s", kv(step=step, reason=exc.reason, ip=ip))


async def _refused(app: Any, phone: str, exc: OtpRefused, *, step: str, ip: str, now: datetime) -> None:
    async with acquire(app) as conn:
        await _audit_refusal(conn, phone, exc, step=step, ip=ip, now=now)


async def _phone(app: Any, raw_phone: str, *, step: str, ip: str, now: datetime) -> str:
    """The number as 11 digits, or :class:`OtpRefused` (audited) for anything else."""
    try:
        return parse_phone(raw_phone)
    except OtpRefused as exc:
        await _refused(app, raw_phone[:32], exc, step=step, ip=ip, now=now)
        raise


async def refuse_request(app: Any, step: str, ip: str, phone: str = "") -> OtpRefused:
    """A request refused before its number is looked at (cross-site, not a form): audited."""
    exc = OtpRefused(403 if step.endswith("cross_site") else 400, "请求无效，请重新打开登录页面",
                     step.rsplit(":", 1)[-1])
    await _refused(app, phone[:32], exc, step=step.split(":", 1)[0], ip=ip, now=app.state.clock())
    return exc


async def request_code(app: Any, raw_phone: str, ip: str) -> None:
    """Queue a code for a field user's number; the same for any other number, which gets none.
    :class:`OtpRefused` (audited) for a malformed number or a limit."""
    now = app.state.clock()
    source = login_source(ip)
    phone = await _phone(app, raw_phone, step="request", ip=ip, now=now)
    code = new_code()
    code_hash = await app.state.password_checks.hash(code)  # unknown numbers cost the same
    sms = app.state.settings.sms
    async with acquire(app) as conn:
        try:
            async with conn.transaction():
                await take_request(conn, phone, source, now=now, limits=_limits(app))
                account = await resolve(conn, phone)
                rid = await record_request(conn, phone, source, account, code_hash, now=now)
                if account is not None:
                    await send(conn, rid, phone, code, account, now=now,
                               sms=SmsConfig(sms.sign_name, sms.provider, sms.duty_phone))
        except OtpRefused as exc:
            await _audit_refusal(conn, phone, exc, step="request", ip=ip, now=now)
            raise
        await audit(conn, "otp.request", phone, now=now, ip=ip, sent=account is not None)
        await scrub(conn, before=now - CODE_TTL)
    log.info("otp requested %s", kv(ip=ip, sent=account is not None))


async def sign_in(app: Any, raw_phone: str, code: str, ip: str, user_agent: str) -> SignedIn:
    """Check the number's latest code and start a session; :class:`OtpRefused` (audited) for a
    wrong, expired, used or throttled one."""
    now = app.state.clock()
    source = login_source(ip)
    phone = await _phone(app, raw_phone, step="login", ip=ip, now=now)
    key, limits = f"otp:{phone}", app.state.login_limits
    async with acquire(app) as conn:
        try:
            await take_login_attempt(conn, key, source, now=now, limits=limits)
        except LoginRefused as exc:
            refused = OtpRefused(429, f"验证码错误次数过多，请在 {exc.retry_after} 秒后重试",
                                 f"throttled:{exc.reason}", exc.retry_after)
            await _audit_refusal(conn, phone, refused, step="login", ip=ip, now=now)
            raise refused from None
        row = await latest_code(conn, phone)
    ok = False
    try:
        check_usable(row, now=now)
        digits = code.strip()
        right = await app.state.password_checks.verify(row["code_hash"] or DUMMY_HASH, digits)
        async with acquire(app) as conn:
            if not right or row["code_hash"] is None or not (len(digits) == 6 and digits.isdigit()):
                raise await spend_attempt(conn, row["id"], now=now, limits=_limits(app))
            async with conn.transaction():
                if not await claim_code(conn, row["id"], now=now):
                    raise OtpRefused(401, "验证码已使用或已失效，请重新获取", "used")
                account = await resolve(conn, phone)
                if account is None:
                    raise OtpRefused(401, "该号码未开通登录，请联系区应急指挥中心", "no_account")
                await ensure_account(conn, account, phone, now=now)
                token, csrf, expires = await new_session(conn, account.username, now=now, ip=ip,
                                                         ttl_s=app.state.settings.console.session_ttl_s,
                                                         user_agent=user_agent)
                await audit(conn, "otp.login", phone, now=now, ip=ip, username=account.username,
                            role=account.role.value)
            await scrub(conn, before=now - CODE_TTL, ids=(str(row["notification_id"] or ""),))
        ok = True
        log.info("otp login %s", kv(user=account.username, role=account.role.value, ip=ip))
    except OtpRefused as exc:
        await _refused(app, phone, exc, step="login", ip=ip, now=now)
        raise
    finally:
        async with acquire(app) as conn:
            await finish_login_attempt(conn, key, source, ip, ok, now=now, limits=limits)
    return SignedIn(token, csrf, expires, account, phone)


def set_session_cookie(app: Any, response: Response, token: str) -> None:
    console = app.state.settings.console
    response.set_cookie(SESSION_COOKIE, token, max_age=console.session_ttl_s, httponly=True,
                        samesite="strict", secure=console.secure_cookies, path="/")


async def _same_site(request: Request, step: str, phone: str, refusal: str) -> None:
    """403 ``refusal`` (audited ``cross_site``) for a request from another site's page."""
    if not same_origin(request):
        await refuse_request(request.app, f"{step}:cross_site", client_ip(request), phone)
        raise HTTPException(403, refusal)


def _http(exc: OtpRefused) -> HTTPException:
    headers = {"Retry-After": str(exc.retry_after)} if exc.status == 429 else None
    return HTTPException(exc.status, exc.detail, headers=headers)


@router.post("/request", summary="获取短信验证码 (网格员、维保单位; same answer for any number)",
             responses={429: {"description": "获取验证码过于频繁 (Retry-After)"}}, **access(PUBLIC))
async def request_route(body: CodeRequestBody, request: Request) -> dict:
    await _same_site(request, "request", body.phone, "跨站请求被拒绝")
    try:
        await request_code(request.app, body.phone, client_ip(request))
    except OtpRefused as exc:
        raise _http(exc) from None
    return {"ok": True, "detail": SENT_TEXT, "expires_in_s": int(CODE_TTL.total_seconds())}


@router.post("/login", summary="验证码登录 (phone + code → session cookie + bearer token)",
             responses={429: {"description": "验证码错误次数过多 (Retry-After)"}}, **access(PUBLIC))
async def login_route(body: CodeLoginBody, request: Request, response: Response) -> dict:
    await _same_site(request, "login", body.phone, "跨站登录请求被拒绝")
    try:
        s = await sign_in(request.app, body.phone, body.code, client_ip(request),
                          request.headers.get("user-agent", ""))
    except OtpRefused as exc:
        raise _http(exc) from None
    set_session_cookie(request.app, response, s.token)
    return {"token": s.token, "csrf_token": s.csrf, "expires_at": s.expires.isoformat(),
            "user": {"username": s.account.username, "role": s.account.role.value,
                     "display_name": s.account.display_name}}
