"""The short link's acknowledgement (短链接确认): ``{sms.ack_base_url}/{token}``, one token per
recipient, served by the console (console/routes/ack.py).

A GET shows a page with a 确认收到 button and nothing about the site (link-preview bots fetch
GET; the token alone must not tell anyone where the alarm is): audited ``get_no_ack``, nothing
acknowledged. The POST of the button acknowledges as the recipient the token was sent to
(:func:`alerting.acks.acknowledge_grant`: refused once the alert has recovered or is closed). An
unknown token counts against the client address; a valid one is never refused for its address.
The flow as a recipient sees it: docs/delivery.md, *Acknowledgement*.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

import asyncpg

from alerting.acks import (
    DEFAULT_LIMITS,
    AckLimits,
    AckOutcome,
    ack_outcome,
    acknowledge_grant,
    audit,
    count_failure,
    observe_time_to_ack,
    token_hash,
    who,
)
from alerting.store import acks as store

__all__ = ["LINK_TITLES", "view_link", "confirm_link", "link_page", "link_result_page"]


async def _grant_by_token(conn: asyncpg.Connection, token: str) -> asyncpg.Record | None:
    if not re.fullmatch(r"[0-9A-Za-z_-]{16,64}", token):
        return None
    return await store.grant_by_token_hash(conn, token_hash(token))


async def view_link(conn: asyncpg.Connection, token: str, *, now: datetime, ip: str = "") -> None:
    """A GET of the link: nothing is acknowledged (link previews fetch it); audited."""
    g = await _grant_by_token(conn, token)
    await audit(conn, at=now, channel="link", outcome="get_no_ack", ip=ip,
                recipient=str(g["recipient_id"]) if g else "", alert_id=str(g["alert_id"]) if g else None,
                detail={"known": g is not None})


async def confirm_link(conn: asyncpg.Connection, token: str, *, now: datetime, ip: str = "",
                       limits: AckLimits = DEFAULT_LIMITS) -> AckOutcome:
    """The POST of the link's button: acknowledge as the recipient the token was sent to."""
    g = await _grant_by_token(conn, token)
    if g is None:
        over = await count_failure(conn, f"ip:{ip}", limits.per_ip_failures, window_s=limits.window_s,
                                   now=now)
        out = ack_outcome("rate_limited" if over else "unknown_token")
        await audit(conn, at=now, channel="link", outcome=out.outcome, ip=ip,
                    detail={"token_chars": len(token)})
        return out
    out = await acknowledge_grant(conn, g, via="link", now=now, limits=limits, release=None,
                                  detail={"ip": ip, "recipient": who(g)})
    await audit(conn, at=now, channel="link", outcome=out.outcome, ip=ip, phone=str(g["phone"]),
                recipient=str(g["recipient_id"]), alert_id=out.alert_id)
    observe_time_to_ack(out)
    return out


def link_page(title: str, text: str = "", *, button: bool = False, status: int = 200,
              login_href: str = "") -> tuple[str, int]:
    """The link's page: Chinese, one column, large button, readable on a phone; self-contained
    (no script, no external style), so it works from any SMS app's browser. ``login_href``: the
    console's 登录查看报警详情 (sign-in by SMS code, then this recipient's alarm)."""
    form = ('<form method="post"><button type="submit">确认收到</button></form>'
            '<p class="hint">点击即表示您已收到报警短信，并将尽快处置。</p>') if button else ""
    if login_href:
        form += (f'<p><a class="login" href="{html.escape(login_href)}">登录查看报警详情</a></p>'
                 '<p class="hint">网格员、维保单位可用收到短信的手机号码登录，'
                 '查看报警位置、读数和处置要求。</p>')
    body = f"<p>{html.escape(text)}</p>" if text else ""
    return (f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{html.escape(title)}</title><style>
body{{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:24px;
background:#f5f6f8;color:#1f2329}}main{{max-width:480px;margin:0 auto;background:#fff;border-radius:12px;
padding:24px}}h1{{font-size:1.3rem}}button{{width:100%;font-size:1.2rem;padding:16px;border:0;border-radius:8px;
background:#d4380d;color:#fff}}.hint{{color:#646a73;font-size:.9rem}}a.login{{display:block;text-align:center;
padding:14px;border:1px solid #1456f0;border-radius:8px;color:#1456f0;text-decoration:none;font-size:1.1rem;
margin-top:20px}}</style></head>
<body><main><h1>{html.escape(title)}</h1>{body}{form}</main></body></html>""", status)


LINK_TITLES = {
    "acknowledged": "已确认收到，谢谢",
    "already_acknowledged": "该报警此前已确认",
    "unknown_token": "链接无效",
    "closed_alert": "该报警已办结",
    "resolved_alert": "该报警已恢复",
    "rate_limited": "尝试次数过多",
}


def link_result_page(out: AckOutcome, *, login_href: str = "") -> tuple[str, int]:
    """The page after the POST; the site and what happened only once acknowledged."""
    text = out.message
    if out.outcome in ("acknowledged", "already_acknowledged") and out.site:
        text = f"{out.site}：{out.summary}。{out.message}"
    known = out.outcome not in ("unknown_token", "rate_limited")
    return link_page(LINK_TITLES.get(out.outcome, "确认失败"), text, status=out.status,
                     login_href=login_href if known else "")
