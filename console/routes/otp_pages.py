"""手机验证码登录 pages: phone-sized, no script, self-contained like the SMS link's page.

``/login/sms`` asks for the number, sends the code (console/routes/otp.py ``request_code``) and
asks for it; a right code sets the session cookie and lands on the console — on the alarm of
an SMS link (``?ack=<token>``, offered as 登录查看报警详情 by console/routes/ack.py) when the
number signed in is the one that link was sent to and the alarm is in the user's scope, else
a refusal in Chinese (audited ``ack.login_refused``). The token only chooses where to land: the
sign-in itself is the code's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerting import queries
from alerting.acks import token_hash
from alerting.store.acks import grant_by_token_hash
from console.auth import PUBLIC, access, authenticate, same_origin
from console.otp import SENT_TEXT, OtpRefused, audit
from console.pool import acquire
from console.routes.ack import LINK_CSP
from console.routes.otp import SignedIn, client_ip, refuse_request, request_code, set_session_cookie, sign_in
from console.scope import Principal, build_scope

__all__ = ["router"]

router = APIRouter(tags=["auth"])
#: same-origin, not the console's no-referrer: under no-referrer a browser sends ``Origin: null``
#: with a form's POST, and the pages' cross-site check (console.auth.same_origin) needs the origin
_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": LINK_CSP,
            "Referrer-Policy": "same-origin"}
_TOKEN = re.compile(r"[0-9A-Za-z_-]{16,64}")
_MAX_FORM = 2048

_STYLE = """body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
padding:24px 16px;background:#f5f6f8;color:#1f2329}main{max-width:480px;margin:0 auto;background:#fff;
border-radius:12px;padding:24px}h1{font-size:1.3rem;margin-top:0}label{display:block;margin:16px 0 6px}
input{box-sizing:border-box;width:100%;font-size:1.3rem;padding:12px;border:1px solid #c9cdd4;
border-radius:8px;letter-spacing:.08em}button{width:100%;font-size:1.2rem;padding:16px;margin-top:20px;border:0;border-radius:8px;
background:#1456f0;color:#fff}.hint{color:#646a73;font-size:.9rem}.error{color:#d4380d;font-weight:600}
.ok{color:#2f7d32}a{color:#1456f0}
button.again{width:auto;margin:0;padding:6px 12px;font-size:.9rem;background:#eef1f6;color:#1456f0}"""


def _page(title: str, inner: str, status: int = 200) -> HTMLResponse:
    text = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body><main><h1>{html.escape(title)}</h1>{inner}</main></body></html>"""
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def _ack_field(ack: str) -> str:
    return f'<input type="hidden" name="ack" value="{html.escape(ack)}">' if ack else ""


def _phone_form(ack: str, phone: str = "", message: str = "", status: int = 200) -> HTMLResponse:
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return _page("手机验证码登录", f"""{note}<form method="post" action="/login/sms">{_ack_field(ack)}
<label for="phone">手机号码</label><input id="phone" name="phone" type="tel" inputmode="numeric"
autocomplete="tel" maxlength="20" required value="{html.escape(phone)}" placeholder="11位手机号码">
<button type="submit">获取验证码</button></form>
<p class="hint">供网格员、维保单位登录，验证码将以短信发送到登记的手机号码。</p>
<p class="hint"><a href="/">使用账号密码登录</a></p>""", status)


def _code_form(ack: str, phone: str, message: str = "", *, error: bool = False, status: int = 200
               ) -> HTMLResponse:
    note = (f'<p class="{"error" if error else "ok"}" role="{"alert" if error else "status"}">'
            f'{html.escape(message)}</p>') if message else ""
    return _page("输入短信验证码", f"""{note}<form method="post" action="/login/sms/verify">{_ack_field(ack)}
<input type="hidden" name="phone" value="{html.escape(phone)}">
<p>验证码已发往 {html.escape(phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else phone)}</p>
<label for="code">短信验证码</label><input id="code" name="code" inputmode="numeric"
autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required placeholder="6位数字">
<button type="submit">登录</button></form>
<form method="post" action="/login/sms">{_ack_field(ack)}<input type="hidden" name="phone"
value="{html.escape(phone)}"><p class="hint">没有收到？<button type="submit" class="again">重新获取</button>
</p></form>""", status)


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, or None when too large or not a form."""
    raw = await request.body()
    if len(raw) > _MAX_FORM:
        return None
    try:
        parsed = parse_qs(raw.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in parsed.items() if v}


def _clean_ack(value: str | None) -> str:
    return value if value and _TOKEN.fullmatch(value) else ""


@router.get("/login/sms", summary="手机验证码登录 page", response_class=HTMLResponse, **access(PUBLIC))
async def login_page(request: Request, ack: str | None = Query(None, max_length=2048)) -> Response:
    # any ack but a link token is dropped (_clean_ack): the page, not a JSON 422, for a mangled link
    token = _clean_ack(ack)
    if token:  # already signed in as the link's recipient (its page's link is same-site: the cookie
        # comes along): straight to the alarm, no second code
        try:
            principal = await authenticate(request)
        except HTTPException:
            principal = None
        if principal is not None and principal.phone:
            async with acquire(request.app) as conn:
                alert_id = await _recipients_alarm(conn, principal, principal.phone, token)
            if alert_id:
                return RedirectResponse(f"/#/alert/{quote(alert_id)}", status_code=303, headers=_HEADERS)
    return _phone_form(token)


async def _recipients_alarm(conn: Any, principal: Principal, phone: str, ack: str) -> str | None:
    """The alarm of the SMS link ``ack`` when ``phone`` is the number it was sent to and the alarm
    is in ``principal``'s scope, else None."""
    g = await grant_by_token_hash(conn, token_hash(ack))
    if g is None or str(g["phone"]) != phone:
        return None
    alert_id = str(g["alert_id"])
    found = await queries.alert_detail(conn, await build_scope(conn, principal), alert_id)
    return alert_id if found is not None else None


def _form_route(**fields: dict[str, Any]) -> dict[str, Any]:
    """``access(PUBLIC)`` and the form's fields in the spec (for its readers and the fuzzer): the
    route reads the form itself (:func:`_form`), so a malformed one gets the page's refusal."""
    rule = access(PUBLIC)
    body = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": fields, "required": ["phone"]}}}}
    return {**rule, "openapi_extra": {**rule["openapi_extra"], "requestBody": body}}


_PHONE = {"type": "string", "maxLength": 32, "description": "手机号码"}
_ACK = {"type": "string", "maxLength": 64, "description": "报警短信链接的令牌（可无）"}


_Step = Callable[[str, str, dict[str, str]], Awaitable[Response]]


async def _form_step(request: Request, step: str, act: _Step,
                     refused: Callable[[str, str, OtpRefused], HTMLResponse]) -> Response:
    """A form's POST: ``act(ack, phone, form)``, or ``refused(ack, phone, exc)`` for its
    :class:`OtpRefused`. A form too large or not one, or from another site, is refused (audited
    ``otp.refused`` ``bad_form`` / ``cross_site`` at ``step``) with the number page: nothing is
    sent or checked."""
    form = await _form(request)
    if form is None or not same_origin(request):
        why = "bad_form" if form is None else "cross_site"
        exc = await refuse_request(request.app, f"{step}:{why}", client_ip(request),
                                   (form or {}).get("phone", ""))
        return _phone_form("", message=exc.detail, status=400)
    ack, phone = _clean_ack(form.get("ack")), form.get("phone", "").strip()[:32]
    try:
        return await act(ack, phone, form)
    except OtpRefused as exc:
        return refused(ack, phone, exc)


@router.post("/login/sms", summary="手机验证码登录: send the code (form)", response_class=HTMLResponse,
             **_form_route(phone=_PHONE, ack=_ACK))
async def send_code(request: Request) -> Response:
    async def act(ack: str, phone: str, form: dict[str, str]) -> Response:
        await request_code(request.app, phone, client_ip(request))
        return _code_form(ack, phone.replace(" ", ""), SENT_TEXT)

    return await _form_step(request, "request", act,
                            lambda ack, phone, exc: _phone_form(ack, phone, exc.detail, status=exc.status))


@router.post("/login/sms/verify", summary="手机验证码登录: sign in (form)", response_class=HTMLResponse,
             **_form_route(phone=_PHONE, ack=_ACK,
                           code={"type": "string", "maxLength": 16, "description": "短信验证码"}))
async def verify_code(request: Request) -> Response:
    async def act(ack: str, phone: str, form: dict[str, str]) -> Response:
        signed = await sign_in(request.app, phone, form.get("code", "")[:16], client_ip(request),
                               request.headers.get("user-agent", ""))
        landing = await _landing(request.app, signed, ack, client_ip(request))
        set_session_cookie(request.app, landing, signed.token)
        return landing

    return await _form_step(request, "login", act, lambda ack, phone, exc: _code_form(
        ack, phone, exc.detail, error=True, status=exc.status))


async def _landing(app: Any, s: SignedIn, ack: str, ip: str) -> Response:
    """Where a signed-in user lands: the SMS link's alarm when it is theirs to see."""
    if not ack:
        return RedirectResponse("/", status_code=303, headers=_HEADERS)
    now = app.state.clock()
    async with acquire(app) as conn:
        g = await grant_by_token_hash(conn, token_hash(ack))
        if g is None:
            return RedirectResponse("/", status_code=303, headers=_HEADERS)
        alert_id = str(g["alert_id"])
        a = s.account
        if str(g["phone"]) != s.phone:
            reason, text = "other_recipient", "该报警短信不是发给本号码的，请用收到短信的手机号码登录。"
        else:
            principal = Principal(a.username, a.role, a.display_name, village_ids=a.village_ids,
                                  maintainer_id=a.maintainer_id, phone=s.phone)
            row = await queries.alert_detail(conn, await build_scope(conn, principal), alert_id)
            if row is not None:
                return RedirectResponse(f"/#/alert/{quote(alert_id)}", status_code=303, headers=_HEADERS)
            reason, text = "out_of_scope", "该报警不在您的负责范围内，无法查看详情。"
        await audit(conn, "ack.login_refused", s.phone, now=now, username=a.username, alert_id=alert_id,
                    reason=reason, message=text, ip=ip)
    return _page("无法查看该报警", f'<p class="error" role="alert">{html.escape(text)}</p>'
                                  '<p>您已登录，可<a href="/">进入监测平台</a>查看您负责范围内的报警。</p>',
                 403)
