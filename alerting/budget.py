"""Per-number SMS budgets: never send into a provider's frequency limit (频率限制) blindly.

The cloud providers refuse a message over their per-number limits, and a refused fire alarm is
one that did not arrive. So before a batch goes out, :func:`decide` says for each of its SMS:
send now, wait until the window frees, or — a red alarm or a 四单 notice (``priority > 0``) that a
daily budget would refuse — do not send it but mark it 未送达 with the reason, so the outbox tells
the centre's duty operator (alerting/reach.py ``duty_note``), who phones the recipient.

The limits, from the providers' published frequency-limit pages (their defaults; each can be
changed in the provider's console, so they are settings: hazmon/settings_budget.py):

* 阿里云 短信服务, 发送频率限制 / 流控 (notification SMS): one signature and one template to one
  number at most 50 in 24 h, a rolling window; answered ``isv.BUSINESS_LIMIT_CONTROL``.
* 腾讯云 短信, 国内短信 频率限制 (defaults): the same content to one number at most once in 30 s
  (``LimitExceeded.PhoneNumberThirtySecondLimit``); at most 10 messages to one number in a
  natural day, Beijing time (``LimitExceeded.PhoneNumberDailyLimit``).
* The webhook gateway (our own): none.

Besides, an ordinary message (``priority ≤ 0``) waits when its phone already had
``per_phone_per_hour`` ordinary messages in the last hour, whatever the provider (the outbox's
own limit: priority messages are exempt and not counted).

A priority message is never held long: the 30 s same-text rule makes it wait at most that; a
daily budget refuses it (loudly) rather than delay it to the next day. Ordinary messages stop
``priority_reserve`` short of a daily budget, leaving the last ones for alarms. Rows of the batch
count against the budgets as they are let through, in the order given (highest priority first).

Pure: no I/O, the clock is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from hazmon.settings_budget import SmsBudgetSettings

__all__ = ["CST", "PROVIDER_ZH", "PROVIDER_LIMITED", "SentSms", "QueuedSms", "Send", "Defer", "Refuse",
           "Decision", "decide", "refusal_code", "beijing_midnight_after"]

#: Beijing time (腾讯云's natural day)
CST = timezone(timedelta(hours=8), "Asia/Shanghai")
PROVIDER_ZH = {"aliyun": "阿里云", "tencent": "腾讯云", "webhook": "短信网关"}
_DAY, _HOUR = timedelta(hours=24), timedelta(hours=1)
#: the providers with per-number budgets (the webhook gateway, our own, has none)
PROVIDER_LIMITED = frozenset({"aliyun", "tencent"})
#: the providers' answers to a message over a daily budget (alerting/notify/sms_aliyun.py,
#: sms_tencent.py put them in the error): a priority row refused so once is not tried again
_DAILY_CODES = {"tencent": ("LimitExceeded.PhoneNumberDailyLimit",
                            "LimitExceeded.PhoneNumberSameContentDailyLimit"),
                "aliyun": ("isv.BUSINESS_LIMIT_CONTROL: 触发天级流控",)}


@dataclass(frozen=True, slots=True)
class SentSms:
    """An SMS already sent to ``phone`` (or let through earlier in this batch)."""

    phone: str
    at: datetime
    provider: str
    #: the registered template (阿里云 counts per signature and template)
    template: str
    body: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class QueuedSms:
    """A row of this batch. ``last_error``: its previous attempt's error (a provider's refusal)."""

    id: str
    phone: str
    template: str
    body: str
    priority: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Send:
    """Send it now."""


@dataclass(frozen=True, slots=True)
class Defer:
    """Leave it ``pending`` until the window frees."""

    until: datetime
    #: for the attempt row and the console (Chinese: which limit, until when)
    reason: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """Do not send it (a priority row over a daily budget): 未送达, the duty operator told."""

    #: 未送达's reason, e.g. 已达腾讯云单号码当日发送上限（10条），未发送
    reason: str


Decision = Send | Defer | Refuse


def beijing_midnight_after(at: datetime) -> datetime:
    """The next 00:00 Beijing time after ``at``: when 腾讯云's daily count starts again."""
    local = at.astimezone(CST)
    return datetime.combine(local.date() + timedelta(days=1), time(0), CST)


def _when(at: datetime, now: datetime) -> str:
    """``at`` in Beijing time as an operator reads it: 09:00:30 today, else 12月8日00:00."""
    local, today = at.astimezone(CST), now.astimezone(CST).date()
    if local.date() == today:
        return local.strftime("%H:%M:%S") if local.second else local.strftime("%H:%M")
    return f"{local.month}月{local.day}日{local:%H:%M}"


def refusal_code(provider: str, last_error: str) -> str:
    """The daily-limit code in a previous attempt's error, or ''."""
    return next((c for c in _DAILY_CODES.get(provider, ()) if c in last_error), "")


def _free_at(times: Sequence[datetime], limit: int, window: timedelta) -> datetime:
    """When a window holding ``times`` (sorted) has room for one more under ``limit``."""
    return times[len(times) - limit] + window


@dataclass(frozen=True, slots=True)
class _Rule:
    """A limit a candidate is over: free again at ``until``; ``refuse``: a daily budget's 未送达
    reason (a priority row is refused, not delayed to the next window)."""

    until: datetime
    why: str
    refuse: str = ""


def _provider_rules(provider: str, s: SmsBudgetSettings, past: Sequence[SentSms], c: QueuedSms,
                    now: datetime) -> list[_Rule]:
    mine = [p for p in past if p.provider == provider]
    reserve = 0 if c.priority > 0 else s.priority_reserve
    kept = f"，留{reserve}条给红色报警和四单" if reserve else ""
    out: list[_Rule] = []
    if provider == "tencent":
        if s.tencent_same_text_s > 0:
            gap = timedelta(seconds=s.tencent_same_text_s)
            same = [p.at for p in mine if p.body == c.body and p.at > now - gap]
            if same:
                out.append(_Rule(max(same) + gap, f"腾讯云同一内容{s.tencent_same_text_s:g}秒内限发1条"))
        midnight = beijing_midnight_after(now)
        today = [p.at for p in mine if p.at >= midnight - _DAY]
        if len(today) >= s.tencent_per_day - reserve:
            name = f"腾讯云单号码当日发送上限（{s.tencent_per_day}条"
            out.append(_Rule(midnight, f"已达{name}{kept}）", f"已达{name}），未发送"))
    elif provider == "aliyun":
        limit = s.aliyun_per_template_per_day - reserve
        window = sorted(p.at for p in mine if p.template == c.template and p.at > now - _DAY)
        if len(window) >= limit:
            name = f"阿里云同模板单号码24小时上限（{s.aliyun_per_template_per_day}条"
            out.append(_Rule(_free_at(window, limit, _DAY), f"已达{name}{kept}）", f"已达{name}），未发送"))
    code = refusal_code(provider, c.last_error)
    if code and not any(r.refuse for r in out):  # the provider counted sends we do not know of
        until = beijing_midnight_after(now) if provider == "tencent" else now + _HOUR
        what = f"{PROVIDER_ZH[provider]}已按单号码当日上限拒收"
        out.append(_Rule(until, what, f"{what}，未发送"))
    return out


def _decide_one(provider: str, s: SmsBudgetSettings, per_hour: int, past: Sequence[SentSms], c: QueuedSms,
                now: datetime) -> Decision:
    rules = _provider_rules(provider, s, past, c, now) if s.enabled and provider in PROVIDER_LIMITED else []
    if c.priority <= 0:
        hour = sorted(p.at for p in past if p.priority <= 0 and p.at > now - _HOUR)
        if len(hour) >= per_hour:
            rules.append(_Rule(_free_at(hour, per_hour, _HOUR), f"已达单号码每小时普通短信上限（{per_hour}条）"))
    if not rules:
        return Send()
    refused = [r.refuse for r in rules if r.refuse]
    if c.priority > 0 and refused:  # never into a certain refusal, never to tomorrow: 未送达, loudly
        return Refuse(refused[0])
    worst = max(rules, key=lambda r: r.until)
    return Defer(worst.until, f"{worst.why}，顺延至{_when(worst.until, now)}")


def decide(provider: str, settings: SmsBudgetSettings, per_phone_per_hour: int, sent: Iterable[SentSms],
           candidates: Sequence[QueuedSms], now: datetime) -> dict[str, Decision]:
    """Each candidate's :data:`Decision`, by id, in order: a candidate let through counts against
    its phone's budgets for the ones after it. ``sent``: the phones' SMS of the last 24 h (any
    provider: only ``provider``'s count against its budget; the hourly limit counts them all)."""
    history: dict[str, list[SentSms]] = {}
    for p in sent:
        history.setdefault(p.phone, []).append(p)
    out: dict[str, Decision] = {}
    for c in candidates:
        past = history.setdefault(c.phone, [])
        d = _decide_one(provider, settings, per_phone_per_hour, past, c, now)
        if isinstance(d, Send):
            past.append(SentSms(c.phone, now, provider, c.template, c.body, c.priority))
        out[c.id] = d
    return out
