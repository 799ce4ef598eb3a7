"""Label matchers shared by routes, inhibition rules and silences.

An alert's labels are a flat ``str → str`` mapping (domain, severity, kind, site_id,
township_id, device_id, panel, industry, ...). Matchers are written as Alertmanager's
*classic matchers* (its docs/configuration.md, "Label matchers"): a label name, one of ``=``,
``!=``, ``=~``, ``!~``, and a value that may be enclosed in double quotes, with the OpenMetrics
escapes ``\\"``, ``\\n`` and ``\\\\`` inside (any other backslash is literal). Several matchers
may be written in one string as a comma list, optionally in braces:
``{domain="gas", severity=~"red|orange"}``.

Semantics as Alertmanager's: regexes are fully anchored (``^(?:re)$``) and use RE2's syntax
(Python-only constructs — lookaround, backreferences, atomic groups, possessive quantifiers —
are refused, so a file that loads here would load there); a missing label matches as the empty
string, so ``zone=""`` matches an alert without ``zone`` and ``zone!=""`` requires one.

Refused on purpose where Alertmanager's classic parser would accept something else than was
meant (docs/alerting.md, "Differences from Alertmanager"): single-quoted values (Alertmanager
keeps the quotes as part of the value) and label names with ``:`` (alert labels never have one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Op", "Matcher", "parse_matcher", "parse_matchers", "matches_all", "LABEL_NAME", "STANDARD_LABELS"]

#: the labels the service puts on every alert, from the event and the registry (``panel`` = the
#: device's parent or the device itself; ``hub`` = "true" for a gateway or a fire panel; ``risk_grade``
#: = the site's 企业风险分级 red/orange/yellow/blue, alerting/risk.py); a matcher or ``group_by``
#: naming another label is only warned about: a detector may set it
STANDARD_LABELS = frozenset({
    "domain", "severity", "kind", "state", "device_id", "site_id", "township_id", "village_id", "industry",
    "panel", "component", "zone", "critical", "hub", "risk_grade",
})

Op = Literal["=", "!=", "=~", "!~"]
_OPS: tuple[Op, ...] = ("=~", "!~", "!=", "=")
#: a Prometheus label name (what Alertmanager's classic parser accepts, minus ':')
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# name, operator ('=~' before '=' so the '~' is not taken for the value), raw value
_TEXT = re.compile(r"^\s*([^\s=!~]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
# RE2 has none of these; Python's re would accept them (checked outside character classes)
_NOT_RE2 = (
    (re.compile(r"\(\?<?[=!]"), "lookahead/lookbehind"),
    (re.compile(r"\(\?P="), "named backreferences"),
    (re.compile(r"\(\?>"), "atomic groups"),
    (re.compile(r"\(\?\("), "conditional groups"),
    (re.compile(r"(?:[*+?}])\+"), "possessive quantifiers"),
)


def _outside_classes(rx: str) -> tuple[str, bool]:
    """``rx`` with character classes and escaped characters blanked, and whether it holds a
    numeric backreference (``\\1``…``\\9``)."""
    out, backref, i, in_class = [], False, 0, False
    while i < len(rx):
        c = rx[i]
        if c == "\\" and i + 1 < len(rx):
            if not in_class and rx[i + 1] in "123456789":
                backref = True
            out.append("  ")
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(" ")
        elif c == "[":
            in_class = True
            out.append(" ")
            if rx[i + 1:i + 2] == "^":
                i += 1
                out.append(" ")
            if rx[i + 1:i + 2] == "]":  # a ']' first in a class is literal
                i += 1
                out.append(" ")
        else:
            out.append(c)
        i += 1
    return "".join(out), backref


def _compile(value: str) -> re.Pattern[str]:
    plain, backref = _outside_classes(value)
    if backref:
        raise ValueError(f"bad regex {value!r}: backreferences are not supported by RE2 (Alertmanager's regex engine)")
    for rx, what in _NOT_RE2:
        if rx.search(plain):
            raise ValueError(f"bad regex {value!r}: {what} are not supported by RE2 (Alertmanager's regex engine)")
    try:
        # fullmatch = Go's ^(?:re)$; ASCII: RE2's \d \w \s \b are ASCII-only
        return re.compile(value, re.ASCII)
    except re.error as exc:
        raise ValueError(f"bad regex {value!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: Op
    value: str
    _rx: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.name):
            raise ValueError(f"bad label name {self.name!r} (a label name is [A-Za-z_][A-Za-z0-9_]*)")
        if self.op not in _OPS:
            raise ValueError(f"bad operator {self.op!r} (use =, !=, =~ or !~)")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_rx", _compile(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        assert self._rx is not None
        hit = self._rx.fullmatch(got) is not None
        return hit if self.op == "=~" else not hit

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        v = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{v}"'


def _unquote(raw: str, text: str) -> str:
    """The value token: optional surrounding double quotes, OpenMetrics escapes inside."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    if not quoted and len(raw) >= 2 and raw[0] == raw[-1] == "'":
        raise ValueError(f"single quotes do not quote a matcher value (Alertmanager would keep them as part of "
                         f"the value): write {raw[1:-1]!r} in double quotes, in {text!r}")
    out: list[str] = []
    i, closed = 0, False
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        if c == '"':
            if quoted and i == len(body) - 1:
                closed = True
                break
            raise ValueError(f"unescaped double quote in the value of {text!r} (write \\\" inside quotes)")
        out.append(c)
        i += 1
    if quoted and not closed:
        raise ValueError(f"missing closing double quote in {text!r}")
    return "".join(out)


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
    if not LABEL_NAME.fullmatch(name):
        raise ValueError(f"bad label name {name!r} in {spec!r} (a label name is [A-Za-z_][A-Za-z0-9_]*)")
    return Matcher(name, op, _unquote(raw, spec))  # type: ignore[arg-type]


def _split(text: str) -> list[str]:
    """Split a comma list at commas outside double quotes (a ``\\"`` does not open or close)."""
    parts: list[str] = []
    cur: list[str] = []
    inside, escaped = False, False
    for c in text:
        if c == "," and not inside:
            parts.append("".join(cur))
            cur = []
            continue
        if c == '"' and not escaped:
            inside = not inside
        escaped = c == "\\" and not escaped
        cur.append(c)
    parts.append("".join(cur))
    return parts


def parse_matchers(specs: str | Iterable[Any]) -> tuple[Matcher, ...]:
    """Matchers from one string — ``{a="1", b=~"2|3"}``, braces optional (both or neither), one
    trailing comma allowed — or from an iterable of matchers, each of which may itself be such
    a string."""
    if not isinstance(specs, str):
        return tuple(m for s in specs for m in (parse_matchers(s) if isinstance(s, str) else (parse_matcher(s),)))
    text = specs.strip()
    opens, closes = text.startswith("{"), text.endswith("}")
    if opens != closes:
        raise ValueError(f"unbalanced brace in {specs!r}: write both {{ and }} or neither")
    if opens:
        text = text[1:-1].strip()
        if text.startswith("{") or text.endswith("}"):
            raise ValueError(f"duplicate brace in {specs!r}")
    if not text:
        return ()
    parts = _split(text)
    if not parts[-1].strip() and len(parts) > 1:
        parts.pop()  # one trailing comma
    if any(not p.strip() for p in parts):
        raise ValueError(f"empty matcher between commas in {specs!r}")
    return tuple(parse_matcher(p) for p in parts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
