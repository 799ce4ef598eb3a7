"""The values ``routes.yaml`` is written in: durations, matchers, roles, channels, label names…

Each parser takes what YAML produced and returns the runtime value or raises ``ValueError``
with what is wrong, worded for the operator; :mod:`hazmon.datafile` puts the path in front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator

from alerting.escalation import StopWhen
from alerting.labels import LABEL_NAME, Matcher, parse_matcher, parse_matchers
from alerting.matrix import normalize_phone
from alerting.route import GROUP_BY_ALL
from hazmon.contracts import NoticeLevel, RecipientRole, Severity
from hazmon.datafile import refuse

__all__ = [
    "CHANNELS",
    "parse_duration",
    "list_of",
    "mapping_or_empty",
    "flat",
    "rewrite",
    "Duration",
    "Texts",
    "Roles",
    "Channels",
    "MatcherList",
    "LabelNames",
    "GroupBy",
    "Level",
    "StopWhenValue",
    "StrictBool",
    "Phone",
    "Timestamp",
    "TimerFactor",
    "SeverityName",
]

CHANNELS = ("sms", "webhook", "console")
_DUR = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
# Alertmanager's (Prometheus') <duration>: units in this order, each at most once, e.g. 1h30m
_AM_DUR = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_duration(value: Any) -> timedelta:
    """Alertmanager's ``<duration>`` (``30s``, ``5m``, ``1h30m``, ``1d``, ``1w``; ``0``), and
    hazmon's extensions: one decimal unit (``1.5h``) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration like 30s, 5m or 4h is expected")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    text = str(value).strip()
    if text == "0":
        return timedelta(0)
    m = _DUR.match(text)
    if m:
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    am = _AM_DUR.match(text) if text else None
    if am is None or not any(am.groups()):
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 1h30m, 4h, 1d)")
    units = ("y", "w", "d", "h", "m", "s", "ms")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in zip(am.groups(), units, strict=True) if n))


# --- values ---------------------------------------------------------------------------------------

def list_of(what: str, *, null: bool = True) -> BeforeValidator:
    """A YAML list (``null`` = empty unless ``null=False``), else "must be a list of …"."""
    def check(value: Any) -> Any:
        if value is None and null:
            return []
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be a list of {what}")
        return value

    return BeforeValidator(check)


def _matcher_entry(spec: Any) -> tuple[Matcher, ...]:
    """One entry of a ``matchers`` list: ``'kind="x"'`` or a comma list ``'{a="1", b="2"}'``."""
    got = parse_matchers(spec) if isinstance(spec, str) else (parse_matcher(spec),)
    for m in got:
        if m.name == "severity" and m.op == "=" and m.value not in {s.value for s in Severity}:
            raise ValueError(f"severity {m.value!r} matches nothing (use red, orange, yellow or blue)")
    return got


def _label(value: Any) -> str:
    if not (isinstance(value, str) and LABEL_NAME.fullmatch(value)):
        raise ValueError(f"invalid label name {value!r}")
    return value


def _role(value: Any) -> RecipientRole:
    try:
        return RecipientRole(value)
    except ValueError:
        roles = ", ".join(r.value for r in RecipientRole)
        raise ValueError(f"unknown role {value!r} (use {roles})") from None


def _channel(value: Any) -> str:
    if value not in CHANNELS:
        raise ValueError(f"unknown channel {value!r} (use {', '.join(CHANNELS)})")
    return str(value)


def _severity(value: Any) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise ValueError(f"unknown severity {value!r} (use red, orange, yellow, blue)") from None


_LEVEL_ALIASES = {lvl.zh: lvl for lvl in NoticeLevel}


def _level(value: Any) -> NoticeLevel:
    try:
        return _LEVEL_ALIASES.get(str(value)) or NoticeLevel(str(value))
    except ValueError:
        raise ValueError(f"unknown notice level {value!r} (reminder, warning, supervision, accountability / "
                         "工作提醒单 …)") from None


def _stop_when(value: Any) -> StopWhen:
    if value not in ("acknowledged", "handling", "closed"):
        raise ValueError("must be acknowledged, handling or closed")
    return value  # type: ignore[no-any-return]


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _phone(value: Any) -> str | None:
    if not value:
        return None
    phone = normalize_phone(str(value))
    if phone is None:
        raise ValueError(f"{value!r} is not a valid mainland mobile number")
    return phone


def _timestamp(value: Any) -> datetime:
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    if dt.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2027-02-05T00:00:00+08:00")
    return dt


def _factor(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError("must be a number in (0, 1]: key periods tighten timers")
    return float(value)


def _group_by(names: list[Any]) -> tuple[str, ...]:
    if GROUP_BY_ALL in names and len(names) > 1:
        raise ValueError("'...' (group by every label) must be the only entry")
    found: list[tuple[Any, str]] = []
    for i, n in enumerate(names):
        if n != GROUP_BY_ALL and not (isinstance(n, str) and LABEL_NAME.fullmatch(n)):
            found.append((i, f"invalid label name {n!r}"))
        elif n in names[:i]:
            found.append((i, f"duplicate label {n!r}"))
    refuse(found)
    return tuple(names)


def mapping_or_empty(what: str) -> BeforeValidator:
    """A YAML mapping (``null`` = empty), else ``what``."""
    def check(value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(what)
        return value

    return BeforeValidator(check)


Duration = Annotated[timedelta, PlainValidator(parse_duration)]
Texts = Annotated[tuple[str, ...], list_of("strings")]
Roles = Annotated[tuple[Annotated[RecipientRole, PlainValidator(_role)], ...], list_of("roles")]
#: each entry as written (one YAML string may hold several matchers); :func:`_flat` joins them
MatcherList = Annotated[
    tuple[Annotated[tuple[Matcher, ...], PlainValidator(_matcher_entry)], ...],
    list_of("matchers like ['severity=\"red\"'] (as Alertmanager's matchers)"),
]
LabelNames = Annotated[tuple[Annotated[str, PlainValidator(_label)], ...], list_of("label names")]
GroupBy = Annotated[tuple[str, ...], PlainValidator(_group_by), list_of("label names")]


def flat(entries: Iterable[tuple[Matcher, ...]]) -> tuple[Matcher, ...]:
    return tuple(m for entry in entries for m in entry)


def rewrite(spec: Any, op: str, key: str) -> str:
    """``match: {domain: gas}`` written the supported way, for the error message."""
    if not isinstance(spec, Mapping):
        return f"{key}: ['name=\"value\"']"

    def one(k: Any, v: Any) -> str:
        try:
            return repr(str(Matcher(str(k), op, str(v))))  # type: ignore[arg-type]
        except ValueError:
            return repr(f'{k}{op}"..."')

    return f"{key}: [{', '.join(one(k, v) for k, v in spec.items())}]"
Channels = Annotated[tuple[Annotated[str, PlainValidator(_channel)], ...], list_of("channels")]
Level = Annotated[NoticeLevel, PlainValidator(_level)]
StopWhenValue = Annotated[StopWhen, PlainValidator(_stop_when)]
StrictBool = Annotated[bool, PlainValidator(_strict_bool)]
Phone = Annotated[str | None, PlainValidator(_phone)]
Timestamp = Annotated[datetime, PlainValidator(_timestamp)]
TimerFactor = Annotated[float, PlainValidator(_factor)]
SeverityName = Annotated[Severity, PlainValidator(_severity)]
