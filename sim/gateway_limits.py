"""The SMS simulator's per-number frequency limits (频率限制), as the providers' APIs enforce them.

Their published defaults (each changeable in the provider's console, so the simulator's are
settings, :class:`sim.gateway.SimulatorConfig`; off unless ``enforce_limits``):

* 阿里云 短信服务 (流控): one signature and one template to one number at most 50 in a rolling
  24 h; over it ``isv.BUSINESS_LIMIT_CONTROL`` with ``触发天级流控Permits:50``.
* 腾讯云 短信 (国内短信 频率限制): the same content to one number once in 30 s, else
  ``LimitExceeded.PhoneNumberThirtySecondLimit``; 10 to one number in a natural day (Beijing
  time), else ``LimitExceeded.PhoneNumberDailyLimit`` — in that number's ``SendStatus``.
* the webhook gateway: none.

hazmon keeps inside them (alerting/budget.py); the tests check it never meets these answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["ProviderLimits"]

_CST = timezone(timedelta(hours=8))


class _Config(Protocol):
    enforce_limits: bool
    aliyun_per_template_per_day: int
    tencent_per_day: int
    tencent_same_text_s: float


class ProviderLimits:
    """What was accepted, per provider and number, and the refusal of a send over a limit."""

    def __init__(self) -> None:
        #: (provider, phone, template key, content, at) of each accepted cloud send
        self._sent: list[tuple[str, str, str, str, datetime]] = []

    def clear(self) -> None:
        self._sent.clear()

    def over(self, c: _Config, provider: str, phone: str, key: str, content: str, now: datetime
             ) -> tuple[str, str] | None:
        """(code, message) the provider answers a send over its limit with, or None (then the
        send is counted). ``key``: 阿里云's signature and template; ``content``: 腾讯云's text."""
        if not c.enforce_limits:
            return None
        mine = [(k, t, at) for p, n, k, t, at in self._sent if p == provider and n == phone]
        if provider == "aliyun":
            recent = sum(1 for k, _, at in mine if k == key and at > now - timedelta(hours=24))
            if recent >= c.aliyun_per_template_per_day:
                return "isv.BUSINESS_LIMIT_CONTROL", f"触发天级流控Permits:{c.aliyun_per_template_per_day}"
        elif provider == "tencent":
            gap = timedelta(seconds=c.tencent_same_text_s)
            if c.tencent_same_text_s > 0 and any(t == content and at > now - gap for _, t, at in mine):
                return "LimitExceeded.PhoneNumberThirtySecondLimit", "单个手机号30秒内下发短信条数超过设定的上限"
            day = now.astimezone(_CST).date()
            if sum(1 for _, _, at in mine if at.astimezone(_CST).date() == day) >= c.tencent_per_day:
                return "LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限"
        self._sent.append((provider, phone, key, content, now))
        return None
