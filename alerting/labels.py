"""Label matchers shared by routes, inhibition rules and silences.

An alert's labels are a flat ``str → str`` mapping (domain, severity, kind, site_id,
township_id, device_id, panel, industry, ...). A matcher is written as in Alertmanager:
``name="value"``, ``name!="value"``, ``name=~"regex"``, ``name!~"regex"``; regexes are
anchored (they must match the whole value). A missing label matches as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Op", "Matcher", "parse_matcher", "parse_matchers", "matches_all"]

Op = Literal["=", "!=", "=~", "!~"]
_OPS: tuple[Op, ...] = ("=~", "!~", "!=", "=")
_TEXT = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: Op
    value: str
    _rx: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(f"bad label name {self.name!r}")
        if self.op not in _OPS:
            raise ValueError(f"bad operator {self.op!r} (use =, !=, =~ or !~)")
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_rx", re.compile(f"(?:{self.value})\\Z"))
            except re.error as exc:
                raise ValueError(f"bad regex {self.value!r}: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        assert self._rx is not None
        hit = self._rx.match(got) is not None
        return hit if self.op == "=~" else not hit

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(spec: Any) -> Matcher:
    """A matcher from ``'site_id="S001"'`` or ``{"name":…, "op":…, "value":…}``.

    Raises ValueError with the problem, for the caller to prefix with file and path.
    """
    if isinstance(spec, Matcher):
        return spec
    if isinstance(spec, Mapping):
        try:
            return Matcher(str(spec["name"]), spec.get("op", "="), str(spec["value"]))
        except KeyError as exc:
            raise ValueError(f"matcher needs {exc.args[0]!r}") from None
    if not isinstance(spec, str):
        raise ValueError(f"matcher must be a string like name=\"value\", got {type(spec).__name__}")
    m = _TEXT.match(spec)
    if not m:
        raise ValueError(f'cannot parse matcher {spec!r} (expected name="value", name=~"regex", ...)')
    name, op, raw = m.groups()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    return Matcher(name, op, raw)  # type: ignore[arg-type]


def parse_matchers(specs: Iterable[Any]) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(s) for s in specs)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
