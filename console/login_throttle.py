"""Login throttle (issue 17 item 12): wrong passwords — and wrong SMS codes, under the key
``otp:<phone>`` — per (account, source address) and per source address lock that key with growing
lock times; an attempt is taken under a row lock *before* its password is checked (no race past
the limit); successful logins per account are limited too. Counted in PostgreSQL
(``console_login_throttle``, ``console_login_attempts``) so it holds across processes and
restarts. Failures from one address never lock the owner out from another.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hazmon.errors import HazmonError
from hazmon.logs import kv

__all__ = ["LoginLimits", "LoginRefused", "login_source", "take_login_attempt", "finish_login_attempt",
           "check_login_allowed", "record_login"]

log = logging.getLogger(__name__)

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


async def take_login_attempt(conn: Any, username: str, source: str, *, now: datetime,
                             limits: LoginLimits) -> None:
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
                f"登录过于频繁（{limits.window_s // 60} 分钟内已成功登录 {oks} 次），"
                f"请在 {_secs(wait)} 秒后重试 "
                f"(too many logins; retry in {_secs(wait)} s)",
                "successes",
            )
        for key in keys:
            st = state[key]
            await conn.execute(
                """UPDATE console_login_throttle
                   SET failures = $3, pending = $4 + 1, window_start = $5, locked_until = $6,
                       lockouts = $7, last_at = $8
                   WHERE username = $1 AND source = $2""",
                key, source, st["failures"], st["pending"], st["window_start"], st["locked_until"],
                st["lockouts"], now,
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
                    st.update(failures=0, window_start=now,
                              locked_until=now + _lock_duration(limits, st["lockouts"]))
                    log.warning("login locked %s", kv(
                        user=st["username"], source=source, lockouts=st["lockouts"],
                        seconds=_secs(st["locked_until"] - now)))
            await conn.execute(
                """UPDATE console_login_throttle
                   SET failures = $3, pending = $4, window_start = $5, locked_until = $6,
                       lockouts = $7, last_at = $8
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


async def check_login_allowed(conn: Any, username: str, ip: str, *, now: datetime,
                              limits: LoginLimits) -> int:
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
