"""The rules of 企业风险分级 红橙黄蓝 (data/risk_rules.yaml) as a pydantic model, validated at load.

A rule file names the window of the dynamic factors (``window_days``), the score at which each
grade begins (``grades``: red > orange > yellow; below yellow a site is 蓝 低风险) and the
factors. A factor reads one field of a site (:data:`TEXT_FIELDS`, :data:`BOOL_FIELDS`,
:data:`COUNT_FIELDS`) or combines other factors (``all_of``: it scores when every one of them
scored, e.g. 重点场所且使用燃气); its ``reason`` is the Chinese sentence shown beside the grade,
with ``{value}``, ``{n}`` and ``{days}`` filled in. A factor may also set a floor
(``min_grade``: an open 重大隐患 makes a site at least 橙).

Refused, every problem at once, with :mod:`hazmon.datafile`'s ``file: path: problem`` wording:
unknown keys, a field the grading does not know, a factor of the wrong shape for its field,
``all_of`` naming an unknown factor or factors naming each other in a cycle, thresholds out of
order. A refused file changes nothing: the pass keeps the rules it had.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hazmon.datafile import Loc, format_problems, problems, refuse
from hazmon.errors import ConfigError

__all__ = ["Grade", "GRADES", "GRADE_ZH", "GRADE_NAME_ZH", "TEXT_FIELDS", "BOOL_FIELDS", "COUNT_FIELDS",
           "Factor", "RiskRules", "RiskRulesError", "load_rules", "parse_rules", "DEFAULT_RULES"]

Grade = Literal["red", "orange", "yellow", "blue"]
#: highest first
GRADES: tuple[Grade, ...] = ("red", "orange", "yellow", "blue")
GRADE_ZH: dict[str, str] = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}
#: 重大/较大/一般/低风险 (seed 002: 企业风险等级由高到低划分为“红橙黄蓝”四级)
GRADE_NAME_ZH: dict[str, str] = {"red": "重大风险", "orange": "较大风险", "yellow": "一般风险", "blue": "低风险"}

#: a site's text fields (a factor gives ``values``: points per value)
TEXT_FIELDS = frozenset({"industry", "site_class", "density_class"})
#: a site's yes/no fields (a factor gives ``points``); gas_use = gas_alarm_required or a gas device
BOOL_FIELDS = frozenset({"critical", "gas_alarm_required", "gas_use"})
#: counts: gas devices; over the window alarms (测试 left out) and those judged 真实/误报/故障;
#: now: hazards not struck off, 重大 among them, overdue (alerting/hazard_overdue.py's meaning)
COUNT_FIELDS = frozenset({"gas_devices", "alarms", "real_alarms", "false_alarms", "fault_alarms",
                          "open_hazards", "major_hazards", "overdue_hazards"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_RULES = Path(__file__).resolve().parent.parent / "data" / "risk_rules.yaml"


class RiskRulesError(ConfigError):
    """data/risk_rules.yaml is invalid; ``problems`` lists every ``(path, problem)``."""

    def __init__(self, file: str, found: list[tuple[str, str]]) -> None:
        self.file, self.problems = file, found
        super().__init__(format_problems(file, found))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GradeThresholds(_Model):
    """The score at which 红/橙/黄 begin (a site below ``yellow`` is 蓝)."""

    red: int = Field(gt=0)
    orange: int = Field(gt=0)
    yellow: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> GradeThresholds:
        if not self.red > self.orange > self.yellow:
            raise ValueError(f"orange: must lie between yellow ({self.yellow}) and red ({self.red}), "
                             f"got {self.orange} (thresholds must fall: red > orange > yellow)")
        return self


class Factor(_Model):
    reason: str = Field(min_length=1, max_length=60)
    field: str | None = None
    all_of: list[str] | None = None
    #: points when it scores: a yes field true, a count at least ``at_least``, every ``all_of``
    points: int | None = Field(default=None, ge=-100, le=100)
    #: a text field: points per value (values not listed score nothing)
    values: dict[str, int] | None = None
    #: a count: points per unit (``max`` caps them)
    per: int | None = Field(default=None, ge=1, le=100)
    max: int | None = Field(default=None, ge=1, le=200)
    at_least: int = Field(default=1, ge=1)
    #: the grade a site has at least when this factor scores
    min_grade: Grade | None = None

    @model_validator(mode="after")
    def _shape(self) -> Factor:
        if (self.field is None) == (self.all_of is None):
            raise ValueError("field: give either field (a site's figure) or all_of (other factors), not both")
        f = self.field
        if f is not None and f not in TEXT_FIELDS | BOOL_FIELDS | COUNT_FIELDS:
            known = ", ".join(sorted(TEXT_FIELDS | BOOL_FIELDS | COUNT_FIELDS))
            raise ValueError(f"field: unknown field {f!r} (expected one of {known})")
        if f in TEXT_FIELDS and (self.values is None or self.points is not None or self.per is not None):
            raise ValueError(f"values: required for the text field {f!r} (points per value), "
                             "without points or per")
        if f in BOOL_FIELDS and (self.points is None or self.values is not None or self.per is not None):
            raise ValueError(f"points: required for the yes/no field {f!r}, without values or per")
        if f in COUNT_FIELDS and ((self.points is None) == (self.per is None) or self.values is not None):
            raise ValueError(f"per: give per (points per unit) or points (when at least at_least) for the "
                             f"count {f!r}, not both, and no values")
        if self.all_of is not None and (self.points is None or self.values or self.per):
            raise ValueError("points: required for all_of (points when every factor named scored)")
        if self.max is not None and self.per is None:
            raise ValueError("max: only with per")
        return self


class RiskRules(_Model):
    window_days: int = Field(default=30, ge=1, le=366)
    grades: GradeThresholds
    factors: dict[str, Factor] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> RiskRules:
        found: list[tuple[Loc, str]] = []
        for name, f in self.factors.items():
            if not _NAME.match(name):
                found.append((("factors", name), "a factor's name is lower-case letters, digits and _"))
            for i, other in enumerate(f.all_of or ()):
                if other not in self.factors:
                    found.append((("factors", name, "all_of", i), f"unknown factor {other!r}"))
        if not found:
            cycle = _cycle({n: tuple(f.all_of or ()) for n, f in self.factors.items()})
            if cycle:
                found.append((("factors", cycle[0], "all_of"),
                              "factors refer to each other in a cycle: " + " → ".join(cycle)))
        refuse(found)
        return self

    def order(self) -> list[str]:
        """The factors, each after those it combines (the file's order otherwise)."""
        done: list[str] = []

        def visit(n: str) -> None:
            if n in done:
                return
            for m in self.factors[n].all_of or ():
                visit(m)
            done.append(n)

        for n in self.factors:
            visit(n)
        return done

    def grade_of(self, score: int) -> Grade:
        g = self.grades
        return "red" if score >= g.red else "orange" if score >= g.orange else "yellow" \
            if score >= g.yellow else "blue"


def _cycle(edges: dict[str, tuple[str, ...]]) -> list[str]:
    """A cycle of ``edges`` as ``[a, b, …, a]``, or ``[]``."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        path.append(n)
        for m in edges.get(n, ()):
            if state.get(m) == 1:
                return [*path[path.index(m):], m]
            if m not in state:
                got = visit(m)
                if got:
                    return got
        state[n] = 2
        path.pop()
        return []

    for n in edges:
        if n not in state:
            got = visit(n)
            if got:
                return got
    return []


def _raw_references(factors: Any) -> list[tuple[str, str]]:
    """``all_of`` naming unknown factors, and cycles, in the file as written."""
    if not isinstance(factors, dict):
        return []
    edges: dict[str, tuple[str, ...]] = {}
    out: list[tuple[str, str]] = []
    for name, f in factors.items():
        refs = f.get("all_of") if isinstance(f, dict) else None
        if not isinstance(refs, list):
            continue
        edges[str(name)] = tuple(str(r) for r in refs)
        out += [(f"factors.{name}.all_of[{i}]", f"unknown factor {r!r}") for i, r in enumerate(refs)
                if r not in factors]
    cycle = _cycle({n: tuple(m for m in e if m in factors) for n, e in edges.items()})
    if cycle:
        out.append((f"factors.{cycle[0]}.all_of",
                    "factors refer to each other in a cycle: " + " → ".join(cycle)))
    return out


def parse_rules(raw: Any, *, file: str = "<risk_rules>") -> tuple[RiskRules, str]:
    """Validate a parsed file: ``(rules, digest)``; :class:`RiskRulesError` lists every problem."""
    if not isinstance(raw, dict):
        raise RiskRulesError(file, [("", "the file must be a mapping with window_days, grades and factors")])
    try:
        rules = RiskRules.model_validate(raw)
    except ValidationError as exc:
        found = problems(exc, model=RiskRules)
        # a malformed factor stops pydantic before the references are checked: check them here
        # too, so every mistake of the file is said in one round
        found += [p for p in _raw_references(raw.get("factors")) if p not in found]
        raise RiskRulesError(file, found) from None
    digest = hashlib.sha256(rules.model_dump_json().encode()).hexdigest()[:12]
    return rules, digest


def load_rules(path: Path | str = DEFAULT_RULES) -> tuple[RiskRules, str]:
    """Read and validate ``data/risk_rules.yaml``."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RiskRulesError(str(p), [("", "no such file")]) from None
    except yaml.YAMLError as exc:
        raise RiskRulesError(str(p), [("", f"not valid YAML: {exc}")]) from None
    return parse_rules(raw, file=str(p))
