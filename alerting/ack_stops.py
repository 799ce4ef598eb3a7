"""Whom a reminder (alarm_repeat, 再次提醒) still goes to once recipients acknowledged.

A recipient who acknowledged — by their 回复码, by 收到/确认/1, by the short link, or after a
colleague was first — is not reminded again of that alarm: their grants say so
(``alert_ack_grants.acked_at``, :func:`alerting.acks.acknowledge_grant`); a duty room called on
its landline that pressed 1 is known by its audited key press (``voice_key``). Per route
(routes.yaml ``ack_stops``, inherited down the tree), the acknowledgement also stops

* ``recipient`` — only the one who acknowledged;
* ``unit`` (default) — everyone of their unit: the recipients the same matrix rule chose
  (``site:S6:contact`` — every contact of that business; a township's or a department's duty
  room), as a duty room's colleague need not be told again what one of them confirmed;
* ``all`` — everybody: once the alarm is acknowledged at all (a recipient, an operator on the
  console, a call's key 1), no more reminders.

A group's reminder is about its firing alerts: an acknowledgement of any of them counts (one
group is one incident — twenty detectors of one fire —, one 回复码 answers its message). New
alarms joining a group are a new message to everyone, acknowledged or not. Voice redials of
one call stop as soon as the alert is acknowledged at all (alerting/voice_inbound.py). Pure:
:mod:`alerting.compose` filters with :func:`still_reminded`, the flush loads the acknowledgements
(:func:`alerting.acks.recipient_acks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from hazmon.contracts import Recipient

__all__ = ["AckStops", "ACK_STOPS", "DEFAULT_ACK_STOPS", "RecipientAck", "stopped_by", "still_reminded"]

AckStops = Literal["recipient", "unit", "all"]
ACK_STOPS: tuple[str, ...] = get_args(AckStops)
DEFAULT_ACK_STOPS: AckStops = "unit"


@dataclass(frozen=True, slots=True)
class RecipientAck:
    """One number's acknowledgement of one alert (from its grants)."""

    alert_id: str
    recipient_id: str  # the matrix rule(s) that chose the recipient, ``;``-joined
    role: str
    unit: str
    phone: str
    at: datetime
    via: str


def _rules(rule: str) -> frozenset[str]:
    return frozenset(p for p in rule.split(";") if p)


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


def _numbers(r: Recipient) -> frozenset[str]:
    """Every number of ``r``: its mobile and its channels' (a landline as dialled, digits only)."""
    out = {_digits(r.phone or "")} | {_digits(c.address) for c in r.channels if c.channel in ("sms", "voice")}
    return frozenset(n for n in out if n)


def stopped_by(r: Recipient, acks: Iterable[RecipientAck], policy: str, *, alert_acked: bool = False
               ) -> RecipientAck | str | None:
    """What stops reminders to ``r`` under ``policy``: an acknowledgement, ``"alert"`` (policy
    ``all`` and the alarm acknowledged otherwise), or None (``r`` is reminded)."""
    numbers = _numbers(r)
    for a in acks:
        if policy == "all" or _digits(a.phone) in numbers:
            return a
        if policy == "unit" and _rules(a.recipient_id) & _rules(r.rule):
            return a
    return "alert" if policy == "all" and alert_acked else None


def still_reminded(recipients: Sequence[Recipient], acks: Sequence[RecipientAck], policy: str, *,
                   alert_acked: bool = False) -> tuple[tuple[Recipient, ...], tuple[Recipient, ...]]:
    """``recipients`` split into those reminded and those an acknowledgement stops."""
    keep: list[Recipient] = []
    stop: list[Recipient] = []
    for r in recipients:
        (keep if stopped_by(r, acks, policy, alert_acked=alert_acked) is None else stop).append(r)
    return tuple(keep), tuple(stop)
