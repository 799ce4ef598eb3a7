"""Cell values of the registry's files, parsed one way: mobile and landline numbers (what the
notifier can reach), booleans (true/false, 是/否), dates (YYYY-MM-DD) and ``a;b`` lists.

Split out of :mod:`hazmon.registry._rows` (which re-exports them) to keep it under 450 lines."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

__all__ = ["normalize_mobile", "normalize_phone", "parse_bool", "parse_date", "split_list"]

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^(0\d{2,3})-?([2-9]\d{6,7})(?:-(\d{1,6}))?$")
_SEPARATORS = re.compile(r"[\s()\-]")


def normalize_mobile(value: str) -> str:
    """``139 0000 1234`` / ``+86-139-0000-1234`` → ``13900001234``; anything else is refused."""
    raw = str(value).strip()
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MOBILE.match(digits):
        raise ValueError(f"invalid mobile number {raw!r} (expected 11 digits 1[3-9]xxxxxxxxx)")
    return digits


def normalize_phone(value: str) -> str:
    """A mobile number, or a landline with its area code (``0571-87654321``, ``010 6512 3456``)."""
    raw = str(value).strip()
    try:
        return normalize_mobile(raw)
    except ValueError:
        pass
    compact = re.sub(r"\s", "", raw)
    m = _LANDLINE.match(compact)
    if m and "-" not in compact:
        # no separator: 010 and 02x are 3-digit area codes, the rest 4 digits
        n = 3 if compact.startswith(("010", "02")) else 4
        m = _LANDLINE.match(f"{compact[:n]}-{compact[n:]}")
    if not m:
        raise ValueError(
            f"invalid phone number {raw!r} (expected a mobile number or a landline such as 0571-87654321)"
        )
    return f"{m.group(1)}-{m.group(2)}" + (f"-{m.group(3)}" if m.group(3) else "")


_TRUE = {"true", "1", "yes", "y", "t", "是", "on"}
_FALSE = {"false", "0", "no", "n", "f", "否", "off"}


def parse_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"invalid boolean {value!r} (expected true/false, yes/no, 1/0, 是/否)")


def parse_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid date {text!r} (expected YYYY-MM-DD)") from None


def split_list(value: Any) -> Any:
    """CSV cells hold lists as ``a;b``; YAML may give a list or the same string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value
