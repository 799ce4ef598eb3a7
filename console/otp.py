"""Sign-in by phone number and one-time SMS code (手机号 + 短信验证码), for the field roles.

Who may: a number that belongs to an active 网格员 or 维保单位 account (``console_users.phone``),
or — the first time — a registry contact that maps to one: a village's ``grid_member_phone``
(网格员 of those villages) or a maintainer's ``duty_mobile``/``duty_phone`` (that 维保单位). Such
an account is made at its first sign-in (``source`` 'registry', username ``gm<phone>`` or
``wb<phone>``, no password) and its scope re-read from the registry at every sign-in; an account
the admin deactivated is never made again from the registry. Every other number gets the same
answer and nothing is sent (no enumeration).

The code: 6 digits from :mod:`secrets`, kept only as its argon2id hash (the password hasher, off
the event loop), valid :data:`CODE_TTL` (5 min), single use, :attr:`OtpLimits.per_code` wrong
tries, and only the number's latest code counts. Requests are limited per number (one a
``resend_s``, ``per_phone`` a ``window_s``) and per client address (``per_source``), counted in
``console_login_codes`` under a transaction lock per number; wrong codes go through the
password login's throttle (console/login_throttle.py ``take_login_attempt``, key ``otp:<phone>``), so
they lock with the same backoff. Every refusal is in ``console_audit`` (``otp.refused``) with
its Chinese message; the SMS is sent by alerting's outbox (alerting/login_code.py).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerting.acks import mask_phone
from alerting.login_code import send_login_code
from alerting.matrix import normalize_phone
from console.scope import Role
from hazmon.contracts import RecipientRole
from hazmon.errors import HazmonError

__all__ = ["CODE_TTL", "SENT_TEXT", "OtpLimits", "OtpRefused", "FieldAccount", "SmsConfig", "new_code",
           "parse_phone", "resolve", "take_request", "record_request", "send", "latest_code", "check_usable",
           "spend_attempt", "claim_code", "ensure_account", "audit"]

CODE_TTL = timedelta(minutes=5)  # alerting/templates/catalogue.py login_code says 5分钟
#: the one answer to every accepted request, known number or not
SENT_TEXT = "如该号码已登记为网格员或维保单位联系人，验证码短信已发送，5分钟内有效。"


@dataclass(frozen=True)
class OtpLimits:
    per_phone: int = 5  # codes asked for one number within window_s
    per_source: int = 20  # codes asked for from one client address within window_s
    window_s: int = 3600
    resend_s: int = 60  # between two codes for one number
    per_code: int = 5  # wrong tries that spend a code


class OtpRefused(HazmonError):
    """A request or a sign-in refused: ``status`` (400/401/429), ``detail`` in Chinese, ``reason``
    the audit's code, ``retry_after`` for 429."""

    def __init__(self, status: int, detail: str, reason: str, retry_after: int = 0) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason, self.retry_after = status, detail, reason, retry_after


@dataclass(frozen=True)
class FieldAccount:
    """The account a number signs in to (existing, or to be made from the registry)."""

    username: str
    role: Role
    display_name: str
    unit: str = ""
    village_ids: tuple[str, ...] = ()
    maintainer_id: str | None = None
    exists: bool = False


@dataclass(frozen=True)
class SmsConfig:
    sign_name: str
    provider: str
    duty_phone: str


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def parse_phone(value: str) -> str:
    phone = normalize_phone(value)
    if phone is None:
        raise OtpRefused(400, "手机号码格式不正确，请输入11位手机号码", "bad_phone")
    return phone


async def resolve(conn: Any, phone: str) -> FieldAccount | None:
    """The field account of ``phone``, or None (also for an admin-deactivated one)."""
    rows = await conn.fetch(
        "SELECT username, role, display_name, village_ids, maintainer_id, active, source FROM console_users"
        " WHERE phone = $1 ORDER BY active DESC",
        phone,
    )
    for r in rows:
        if r["active"] and r["role"] in (Role.GRID_MEMBER, Role.MAINTAINER):
            if r["source"] == "registry":  # its scope is the registry's: read it again
                fresh = await _from_registry(conn, phone)
                if fresh is None or fresh.role != r["role"]:
                    return None
                return FieldAccount(r["username"], fresh.role, fresh.display_name, fresh.unit,
                                    fresh.village_ids, fresh.maintainer_id, exists=True)
            return FieldAccount(r["username"], Role(r["role"]), r["display_name"], r["display_name"],
                                tuple(r["village_ids"] or ()), r["maintainer_id"], exists=True)
    if rows:  # an account holds the number: another role, or deactivated — never made again
        return None
    return await _from_registry(conn, phone)


async def _from_registry(conn: Any, phone: str) -> FieldAccount | None:
    villages = await conn.fetch(
        "SELECT id, name, grid_member FROM villages WHERE grid_member_phone = $1 ORDER BY id", phone)
    if villages:
        name = villages[0]["grid_member"] or "网格员"
        unit = "、".join(v["name"] for v in villages)
        return FieldAccount(f"gm{phone}", Role.GRID_MEMBER, f"{name}（{unit}）", unit,
                            village_ids=tuple(v["id"] for v in villages))
    m = await conn.fetchrow(
        "SELECT id, name, duty_name FROM maintainers WHERE duty_mobile = $1 OR duty_phone = $1"
        " ORDER BY id LIMIT 1", phone)
    if m:
        who = f"{m['duty_name']}（{m['name']}）" if m["duty_name"] else m["name"]
        return FieldAccount(f"wb{phone}", Role.MAINTAINER, who, m["name"], maintainer_id=m["id"])
    return None


async def audit(conn: Any, action: str, phone: str, *, now: datetime, **detail: Any) -> None:
    """A ``console_audit`` row; the number masked (138****5678), and of what was typed only what a
    text column holds (a NUL from a form would fail the insert)."""
    shown = mask_phone("".join(c for c in phone if c.isprintable()))
    await conn.execute(
        "INSERT INTO console_audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
        now, f"phone:{shown}", action, shown, json.dumps(detail, ensure_ascii=False),
    )


def _secs(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))


async def take_request(conn: Any, phone: str, source: str, *, now: datetime, limits: OtpLimits) -> None:
    """Within the caller's transaction: lock the number, refuse (:class:`OtpRefused` 429) what
    is over a limit."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('console_otp:' || $1))", phone)
    since = now - timedelta(seconds=limits.window_s)
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE phone = $1) AS by_phone,
                  max(created_at) FILTER (WHERE phone = $1) AS last,
                  min(created_at) FILTER (WHERE phone = $1) AS first_phone,
                  count(*) FILTER (WHERE source = $2) AS by_source,
                  min(created_at) FILTER (WHERE source = $2) AS first_source
             FROM console_login_codes WHERE created_at > $3 AND (phone = $1 OR source = $2)""",
        phone, source, since,
    )
    window = timedelta(seconds=limits.window_s)
    if row["last"] is not None and row["last"] > now - timedelta(seconds=limits.resend_s):
        wait = _secs(row["last"] + timedelta(seconds=limits.resend_s) - now)
        raise OtpRefused(429, f"获取验证码过于频繁，请在 {wait} 秒后重试", "resend", wait)
    if row["by_phone"] >= limits.per_phone:
        wait = _secs(row["first_phone"] + window - now)
        raise OtpRefused(429, f"该号码获取验证码次数过多（{limits.window_s // 60} 分钟内 "
                              f"{limits.per_phone} 次），请在 {wait} 秒后重试", "per_phone", wait)
    if row["by_source"] >= limits.per_source:
        wait = _secs(row["first_source"] + window - now)
        raise OtpRefused(429, f"本地址获取验证码次数过多，请在 {wait} 秒后重试", "per_source", wait)


async def record_request(conn: Any, phone: str, source: str, account: FieldAccount | None, code_hash: str,
                         *, now: datetime) -> int:
    """The request's row (a known number's with its code's hash); only the latest one counts."""
    rid = await conn.fetchval(
        """INSERT INTO console_login_codes (phone, source, username, code_hash, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        phone, source, account.username if account else None, code_hash if account else None, now,
        now + CODE_TTL,
    )
    return int(rid)


async def send(conn: Any, rid: int, phone: str, code: str, account: FieldAccount, *, now: datetime,
               sms: SmsConfig) -> str:
    """Queue the code's SMS (alerting's outbox) and note its row on the request."""
    role = RecipientRole.GRID_MEMBER if account.role is Role.GRID_MEMBER else RecipientRole.MAINTAINER
    nid = await send_login_code(conn, request_key=str(rid), phone=phone, code=code, role=role,
                                name=account.display_name, unit=account.unit, now=now,
                                sign_name=sms.sign_name, provider=sms.provider, duty_phone=sms.duty_phone)
    await conn.execute("UPDATE console_login_codes SET notification_id = $2 WHERE id = $1", rid, nid)
    return nid


async def latest_code(conn: Any, phone: str) -> Any:
    """The number's latest code request (known number or not), or None."""
    return await conn.fetchrow(
        "SELECT * FROM console_login_codes WHERE phone = $1 ORDER BY created_at DESC, id DESC LIMIT 1", phone)


def check_usable(row: Any, *, now: datetime) -> None:
    """Refuse a code that is not there, used, spent or expired — the same for unknown numbers."""
    if row is None:
        raise OtpRefused(401, "验证码错误，请检查后重试", "no_code")
    if row["used_at"] is not None:
        raise OtpRefused(401, "验证码已使用或已失效，请重新获取", "used")
    if row["expires_at"] <= now:
        raise OtpRefused(401, "验证码已过期（5分钟内有效），请重新获取", "expired")


async def spend_attempt(conn: Any, rid: int, *, now: datetime, limits: OtpLimits) -> OtpRefused:
    """A wrong code: count it on its request; the last allowed try spends the code."""
    tries = await conn.fetchval(
        """UPDATE console_login_codes SET attempts = attempts + 1,
                  used_at = CASE WHEN attempts + 1 >= $2 THEN $3 ELSE used_at END
            WHERE id = $1 RETURNING attempts""",
        rid, limits.per_code, now,
    )
    if tries is not None and tries >= limits.per_code:
        return OtpRefused(401, "验证码错误次数过多，该验证码已失效，请重新获取", "too_many_tries")
    return OtpRefused(401, "验证码错误，请检查后重试", "wrong_code")


async def claim_code(conn: Any, rid: int, *, now: datetime) -> bool:
    """Use the code once: of two sign-ins with it at the same moment, one gets it."""
    return bool(await conn.fetchval(
        "UPDATE console_login_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL RETURNING id",
        rid, now))


async def ensure_account(conn: Any, account: FieldAccount, phone: str, *, now: datetime) -> None:
    """Make the registry's account at its first sign-in, or bring its scope up to the registry."""
    if account.exists:
        await conn.execute(
            """UPDATE console_users SET display_name = $2, village_ids = $3, maintainer_id = $4
                WHERE username = $1 AND source = 'registry'""",
            account.username, account.display_name, list(account.village_ids), account.maintainer_id,
        )
        return
    await conn.execute(
        """INSERT INTO console_users (username, display_name, role, password_hash, village_ids, maintainer_id,
                                      phone, source)
           VALUES ($1, $2, $3, '!sms-code-only', $4, $5, $6, 'registry')""",
        account.username, account.display_name, account.role.value, list(account.village_ids),
        account.maintainer_id, phone,
    )
    await audit(conn, "user.create", phone, now=now, username=account.username, role=account.role.value,
                source="registry")
