"""短链接确认: the link in an SMS (``{sms.ack_base_url}/{token}``), one token per recipient.

The one web acknowledgement of hazmon (the flow, as a recipient sees it: docs/delivery.md,
*Acknowledgement*). GET shows a page with a 确认收到 button and nothing about the site
(link-preview bots fetch GET; the token alone must not tell anyone where the alarm is); only the
POST acknowledges, as the recipient the token was sent to. Tokens are 128 random bits: an
unknown token counts as a failure of the client address (429 after ``inbound.per_ip_failures``),
but a valid token is never refused for its address, so users behind one carrier NAT are not
locked out by someone else's guessing; every alert takes ``inbound.per_alert_attempts`` per
window. The rules and their audit are alerting/acks.py's, the pages alerting/ack_link.py's.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from alerting.ack_link import confirm_link, link_page, link_result_page, view_link
from alerting.acks import AckLimits
from console.auth import PUBLIC, access, client_address
from console.routes._common import Conn

__all__ = ["router"]

router = APIRouter(tags=["ack"])
#: any shape is answered with the Chinese page (a link cut short by an SMS app is "链接无效", not a
#: JSON error); alerting.ack_link refuses what is not a token's shape before looking it up
Token = Annotated[str, Path(max_length=128, description="the recipient's link token from the SMS")]


def _limits(request: Request) -> AckLimits:
    return AckLimits.from_settings(request.app.state.settings.inbound)


def _ip(request: Request) -> str:
    """The client: from a trusted proxy (``console.trusted_proxies``) the forwarded address."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    return client_address(peer, forwarded, request.app.state.trusted_proxies)


def _login_href(token: str) -> str:
    """登录查看报警详情: the SMS-code sign-in (console/routes/otp_pages.py), landing on this
    token's alarm for its recipient; a token of another shape is not carried along."""
    return f"/login/sms?ack={quote(token)}" if _TOKEN_SHAPE.fullmatch(token) else "/login/sms"


_TOKEN_SHAPE = re.compile(r"[0-9A-Za-z_-]{16,64}")
#: the link page is self-contained (its style inline, no script): the console's CSP blocks inline
#: style, which left a phone with a tiny unstyled button
LINK_CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'")
#: never cached: each answer is about this token now
_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": LINK_CSP}


@router.get("/ack/{token}", summary="短链接确认 page (does not acknowledge)", response_class=HTMLResponse,
            **access(PUBLIC))
async def ack_page(token: Token, request: Request, conn: Conn) -> HTMLResponse:
    await view_link(conn, token, now=request.app.state.clock(), ip=_ip(request))
    text, status = link_page("确认收到报警短信", "请点击下方按钮确认您已收到报警短信。", button=True,
                             login_href=_login_href(token))
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


@router.post("/ack/{token}", summary="短链接确认 (acknowledge as the token's recipient)",
             response_class=HTMLResponse, **access(PUBLIC))
async def ack(token: Token, request: Request, conn: Conn) -> HTMLResponse:
    limits = _limits(request)
    out = await confirm_link(conn, token, now=request.app.state.clock(), ip=_ip(request), limits=limits)
    text, status = link_result_page(out, login_href=_login_href(token))
    retry = {"Retry-After": str(limits.window_s)} if status == 429 else {}
    return HTMLResponse(text, status_code=status, headers={**_HEADERS, **retry})
