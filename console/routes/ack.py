"""短链接确认: the link in a business's SMS (``{sms.ack_base_url}/{code}``).

GET shows what is being confirmed and a button; only the POST acknowledges (link preview
bots in messaging apps fetch GET and must not acknowledge). The 回复码 is the only secret, so
unknown codes count as failed attempts per client address and are rate-limited like logins.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse

from alerting import lifecycle
from console.auth import PUBLIC, LoginLimits, access, check_login_allowed, record_login
from console.routes._common import Conn

__all__ = ["router"]

router = APIRouter(tags=["ack"])
Code = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{4,16}$", description="回复码 from the SMS")]
_LIMITS = LoginLimits(per_user=10, per_ip=30, window_s=15 * 60)


def _page(title: str, body: str, *, button: bool = False) -> HTMLResponse:
    form = '<form method="post"><button type="submit">确认已收到</button></form>' if button else ""
    return HTMLResponse(
        f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main class="panel"><h2>{html.escape(title)}</h2><p>{html.escape(body)}</p>{form}</main></body></html>"""
    )


async def _alert_for(request: Request, conn: Conn, code: str) -> dict:
    ip = request.client.host if request.client else ""
    key = f"ack:{ip}"
    now = request.app.state.clock()
    wait = await check_login_allowed(conn, key, ip, now=now, limits=_LIMITS)
    if wait:
        raise HTTPException(429, f"too many unknown codes; retry in {wait} s", headers={"Retry-After": str(wait)})
    row = await conn.fetchrow(
        """SELECT a.id, a.summary, a.phase, a.acked_at, coalesce(s.name, a.site_id) AS site_name
           FROM alerts a LEFT JOIN sites s ON s.id = a.site_id WHERE a.ack_code = $1""",
        code,
    )
    if row is None:
        await record_login(conn, key, ip, False, now=now)
        raise HTTPException(404, f"no alarm has code {code}")
    return dict(row)


@router.get("/ack/{code}", summary="短链接确认 page (does not acknowledge)", response_class=HTMLResponse,
            **access(PUBLIC))
async def ack_page(code: Code, request: Request, conn: Conn) -> HTMLResponse:
    a = await _alert_for(request, conn, code)
    if a["acked_at"] is not None or a["phase"] == "closed":
        return _page("报警已确认", f"{a['site_name']}：{a['summary']}")
    return _page("请确认报警", f"{a['site_name']}：{a['summary']}", button=True)


@router.post("/ack/{code}", summary="短链接确认 (acknowledge by the SMS code)", response_class=HTMLResponse,
             **access(PUBLIC))
async def ack(code: Code, request: Request, conn: Conn) -> HTMLResponse:
    a = await _alert_for(request, conn, code)
    result = await lifecycle.acknowledge_by_code(conn, code, phone="link", now=request.app.state.clock(), via="link")
    if result is None:  # cannot happen after _alert_for, unless the alert vanished meanwhile
        raise HTTPException(404, f"no alarm has code {code}")
    title = "已确认，谢谢" if result.applied else "报警此前已确认"
    return _page(title, f"{a['site_name']}：{a['summary']}。请按短信提示尽快处置。")
