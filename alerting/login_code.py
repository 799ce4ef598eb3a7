"""登录验证码: the SMS of the console's sign-in by phone (console/otp.py), through the outbox.

The code goes the way every SMS goes — a row in ``notifications`` (no alarm: ``alert_id`` NULL),
sent by the outbox sender through the configured provider with the registered template
``login_code`` (one variable, the code; no link: 验证码 templates take nothing else) — so the
providers' limits, retries and receipts apply to it too. The console keeps only the code's hash;
the outbox row holds it in its text until it is sent, and :func:`scrub` blanks it there once the
code is used or has expired (a finished row needs its text no more than its receipt).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.store import login_code as store
from alerting.templates import TEMPLATES, Deployment, render
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole

__all__ = ["TEMPLATE", "RULE", "send_login_code", "scrub"]

TEMPLATE = "login_code"
#: the ``rule`` of its outbox row: no matrix rule chose this recipient, the person asked
RULE = "console:login_code"


async def send_login_code(conn: asyncpg.Connection, *, request_key: str, phone: str, code: str,
                          role: RecipientRole, name: str, unit: str, now: datetime, sign_name: str,
                          provider: str, duty_phone: str) -> str:
    """Queue the code for ``phone``; ``request_key`` (the code request's id) names the row.
    Returns the outbox row's id."""
    body, sent = render(TEMPLATE, {"code": code}, sign_name=sign_name, max_segments=3, provider=provider,
                        deployment=Deployment(duty_phone=duty_phone))
    r = Recipient(role=role, name=name, unit=unit, phone=phone, rule=RULE)
    req = NotificationRequest(id=notification_id(f"login:{request_key}", r, 0, TEMPLATE), alert_id="",
                              channel="sms", recipient=r, template=TEMPLATES[TEMPLATE].kind, body=body,
                              created_at=now)
    await enqueue(conn, [NewNotification(req, sent, priority=1)], now=now)
    return req.id


async def scrub(conn: asyncpg.Connection, *, before: datetime, ids: tuple[str, ...] = ()) -> int:
    """Blank the code in finished login-code rows created before ``before``, and in ``ids``
    (a code just used) once they are finished; returns the rows blanked."""
    return await store.blank_codes(conn, template=TEMPLATES[TEMPLATE].kind, before=before, ids=list(ids))
