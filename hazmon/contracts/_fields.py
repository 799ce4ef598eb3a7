"""What every contract is made of: the schema version, the field types, and what PostgreSQL
(and every stage after ingest) can take — checked here, once, so every adapter and every
consumer of a contract gets the same answer."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "SCHEMA_VERSION", "KNOWN_DOMAINS", "utcnow", "INT64_MIN", "INT64_MAX", "JSON_MAX_DEPTH",
    "JSON_MAX_NODES", "JSON_MAX_STRING", "text_problem", "json_problem", "safe_text", "Label", "Text",
    "Int64", "UtcDatetime", "DeviceId", "Domain", "Ident",
]

SCHEMA_VERSION: Final = 1

#: The domains shipped today. The set is open: a new domain is configuration plus a detector
#: module (DOMAIN.md: 重大危险源 online monitoring), so contracts accept any well-formed name.
KNOWN_DOMAINS: frozenset[str] = frozenset({"gas", "elevator", "fire"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (UTC expected)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 has no UTC time
        raise ValueError("timestamp out of range once converted to UTC") from None


# --- what PostgreSQL (and every stage after ingest) can take --------------------------------
# The rules bad input broke (issue 17): PostgreSQL refuses U+0000 in text and jsonb, Python
# cannot encode a lone surrogate to UTF-8, ``bigint`` ends at 2⁶³−1, jsonb has no NaN/Infinity,
# and json.dumps refuses integers of more than 4300 digits. Checked here, once, so every
# adapter and every consumer of a contract gets the same answer.

#: PostgreSQL ``bigint`` (readings.seq)
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
#: a name, code or label: no control character at all (C0, DEL, C1), no lone surrogate
_NOT_LABEL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: free text: tab, newline and carriage return allowed
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: a JSON object from a device (DeviceEvent.detail): bounded, so jsonb and every reader take it
JSON_MAX_DEPTH: Final = 8
JSON_MAX_NODES: Final = 2000
JSON_MAX_STRING: Final = 2000


def text_problem(value: str, *, free_text: bool = False) -> str | None:
    """What makes ``value`` unstorable (a control character or a lone surrogate), or None."""
    m = (_NOT_TEXT if free_text else _NOT_LABEL).search(value)
    if m is None:
        return None
    return f"holds control character U+{ord(m.group()):04X} at position {m.start()}"


def json_problem(value: Any, where: str = "detail") -> str | None:
    """What makes a decoded JSON value unstorable as jsonb, or None: text with a control
    character, an integer beyond 64 bits, NaN/±inf, more than ``JSON_MAX_DEPTH`` levels or
    ``JSON_MAX_NODES`` values, a string longer than ``JSON_MAX_STRING``."""
    nodes = 0
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        v, path, depth = stack.pop()
        nodes += 1
        if nodes > JSON_MAX_NODES:
            return f"{where}: more than {JSON_MAX_NODES} values"
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not INT64_MIN <= v <= INT64_MAX:
                return f"{path}: integer out of 64-bit range"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return f"{path}: {v} is not a finite number"
        elif isinstance(v, str):
            if len(v) > JSON_MAX_STRING:
                return f"{path}: string longer than {JSON_MAX_STRING}"
            p = text_problem(v, free_text=True)
            if p:
                return f"{path}: {p}"
        elif isinstance(v, dict | list | tuple):
            if depth >= JSON_MAX_DEPTH:
                return f"{path}: nested deeper than {JSON_MAX_DEPTH} levels"
            if isinstance(v, dict):
                for k, item in v.items():
                    if not isinstance(k, str):
                        return f"{path}: key {k!r} is not a string"
                    p = text_problem(k) if len(k) <= 64 else "key longer than 64"
                    if p:
                        return f"{path}: key {k[:64]!r}: {p}"
                    stack.append((item, f"{path}.{k[:64]}", depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(v))
        else:
            return f"{path}: {type(v).__name__} is not a JSON value"
    return None


def _label(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _text(value: str) -> str:
    problem = text_problem(value, free_text=True)
    if problem:
        raise ValueError(problem)
    return value


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


_ESCAPE = re.compile(r"[\x00\ud800-\udfff]")


def safe_text(value: str) -> str:
    """``value`` with what PostgreSQL or UTF-8 cannot take (U+0000, lone surrogates) written as
    ``\\uXXXX``: for the places that must take anything (dead letters, logs of bad input)."""
    if _ESCAPE.search(value) is None:
        return value
    return _ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


#: a name, code, unit or label (no control characters)
Label = Annotated[str, AfterValidator(_label)]
#: free text (tab and newline allowed, no other control character)
Text = Annotated[str, AfterValidator(_text)]
#: what a PostgreSQL ``bigint`` holds
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]

UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]
DeviceId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
Domain = Annotated[str, StringConstraints(min_length=2, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_label)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = SCHEMA_VERSION
