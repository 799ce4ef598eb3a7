"""The rules of the 三色区域预警 (``data/area_warnings.yaml``) as pydantic models, checked at load.

Seed 000: 结合"片、线、点"内各行业领域的事故隐患、安全监管以及事故发生等不同情况，及时启动"三色"预警.
The file names **measures** — what is counted for an area: alarms with their 研判 verdict in a
window, open hazards (overdue, 重大隐患), accidents (事故, their deaths and injuries), the 点
warnings inside a 片 or 线, or a weighted sum of other measures — and, per scope (``township``
片, ``industry`` 线, ``site`` 点), the conditions of each colour: a list of mappings
``measure: at least``, all keys of one mapping together (且), any mapping of the list (或).
The highest colour with a condition met is the area's warning.

Every problem is reported at once as ``file: path: problem`` (:mod:`hazmon.datafile`): an
unknown key, a condition naming an unknown measure, a sum whose terms come back to itself
(a cycle), a 点 condition counting 点 warnings (the warning would decide itself). A file with
problems changes nothing: the pass keeps the last good rules and the CLI exits with the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerting.config import parse_duration
from hazmon.datafile import Problem, format_problems, problems
from hazmon.errors import ConfigError

__all__ = [
    "AreaWarningRules",
    "MeasureSpec",
    "LEVELS",
    "SCOPES",
    "RulesFileError",
    "load_rules",
    "parse_rules",
    "DEFAULT_RULES_FILE",
    "depends_on_sites",
]

#: the colours, highest first (三色: 红 > 橙 > 黄)
LEVELS = ("red", "orange", "yellow")
#: 片 (镇街), 线 (行业领域), 点 (企业/场所); 点 first: 片 and 线 may count their 点 warnings
SCOPES = ("site", "township", "industry")
DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "area_warnings.yaml"

_FIELDS_OF: dict[str, frozenset[str]] = {  # which keys each kind of measure reads
    "alarms": frozenset({"days", "verdicts", "severities"}),
    "hazards": frozenset({"overdue", "grade"}),
    "accidents": frozenset({"days", "accident_levels", "count"}),
    "site_warnings": frozenset({"level"}),
    "sum": frozenset({"terms"}),
}
_OPTIONAL = frozenset().union(*_FIELDS_OF.values())
Name = Annotated[str, Field(min_length=1, max_length=20)]


class RulesFileError(ConfigError):
    """``data/area_warnings.yaml`` has problems; the message lists them all (file: path: problem)."""

    def __init__(self, file: str, found: list[Problem]) -> None:
        self.file, self.problems = file, found
        super().__init__(format_problems(file, found))


class MeasureSpec(BaseModel):
    """One figure counted per area (片/线/点)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Name  # as a person reads it: 近30天真实报警
    unit: Annotated[str, Field(min_length=1, max_length=4)] = "项"
    source: Literal["alarms", "hazards", "accidents", "site_warnings", "sum"] = Field(alias="from")
    days: int | None = Field(default=None, ge=1, le=3660)  # alarms, accidents: the window
    verdicts: tuple[Literal["real", "false", "test", "fault", "none"], ...] | None = None  # none: 未研判
    severities: tuple[Literal["red", "orange", "yellow", "blue"], ...] | None = None
    overdue: bool | None = None  # hazards: past the 整改期限
    grade: Literal["general", "major"] | None = None  # hazards: 一般/重大隐患
    accident_levels: tuple[Literal["general", "larger", "major", "especially_major"], ...] | None = None
    count: Literal["accidents", "deaths", "injuries"] | None = None  # accidents: what is summed
    level: Literal["red", "orange", "yellow"] | None = None  # site_warnings: at least this colour
    terms: dict[str, float] | None = None  # sum: measure → weight

    @model_validator(mode="after")
    def _fits_source(self) -> MeasureSpec:
        allowed = _FIELDS_OF[self.source]
        for key in sorted(_OPTIONAL - allowed):
            if getattr(self, key) is not None:
                raise ValueError(
                    f"{key}: not read by a measure from {self.source} (it reads {', '.join(sorted(allowed))})"
                )
        if self.source == "sum" and not self.terms:
            raise ValueError("terms: required for a measure from sum")
        return self


Conditions = tuple[dict[str, float], ...]


class ScopeLevels(BaseModel):
    """The conditions of each colour of one scope."""

    model_config = ConfigDict(extra="forbid")

    red: Conditions = ()
    orange: Conditions = ()
    yellow: Conditions = ()


class AreaWarningRulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every: str = "10m"  # how often alerting's timers evaluate
    measures: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")], MeasureSpec]
    levels: dict[Literal["township", "industry", "site"], ScopeLevels]


@dataclass(frozen=True, slots=True)
class AreaWarningRules:
    """The validated rules: ``every`` in seconds, the measures in evaluation order (terms first)."""

    every_s: float
    measures: Mapping[str, MeasureSpec]
    order: tuple[str, ...]
    levels: Mapping[str, Mapping[str, Conditions]]  # scope → colour → conditions

    def used(self, scope: str) -> set[str]:
        """The measures a scope's conditions need, with the terms of its sums."""
        out: set[str] = set()
        todo = [m for conds in self.levels.get(scope, {}).values() for c in conds for m in c]
        while todo:
            m = todo.pop()
            if m not in out:
                out.add(m)
                todo += list(self.measures[m].terms or ())
        return out


def depends_on_sites(
    measures: Mapping[str, MeasureSpec], name: str, seen: frozenset[str] = frozenset()
) -> bool:
    m = measures.get(name)
    if m is None or name in seen:
        return False
    return m.source == "site_warnings" or any(
        depends_on_sites(measures, t, seen | {name}) for t in m.terms or ()
    )


def _order(measures: Mapping[str, MeasureSpec], found: list[Problem]) -> tuple[str, ...]:
    """Measures with their terms before them; an unknown term or a cycle is a problem."""
    out: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :] + [name]
            found.append((f"measures.{cycle[0]}.terms.{cycle[1]}", f"cycle: {' → '.join(cycle)}"))
            return
        state[name] = 1
        for term in measures[name].terms or ():
            if term not in measures:
                found.append(
                    (
                        f"measures.{name}.terms.{term}",
                        f"unknown measure (expected one of {', '.join(sorted(measures))})",
                    )
                )
            else:
                visit(term, [*path, name])
        state[name] = 2
        out.append(name)

    for name in measures:
        visit(name, [])
    return tuple(out)


def parse_rules(raw: Any, *, file: str = "<area_warnings>") -> AreaWarningRules:
    """Validate a parsed file; raises :class:`RulesFileError` listing every problem."""
    if not isinstance(raw, Mapping):
        raise RulesFileError(file, [("", "the file must be a mapping with every, measures, levels")])
    try:
        spec = AreaWarningRulesFile.model_validate(raw)
    except ValidationError as exc:
        raise RulesFileError(file, problems(exc, model=AreaWarningRulesFile)) from None
    found: list[Problem] = []
    try:
        every = parse_duration(spec.every).total_seconds()
        if every < 60:
            found.append(("every", "at least 1m (the pass reads a month of alarms)"))
    except (ValueError, TypeError) as exc:
        every = 600.0
        found.append(("every", str(exc)))
    order = _order(spec.measures, found)
    levels: dict[str, dict[str, Conditions]] = {}
    for scope, lv in spec.levels.items():
        levels[scope] = {}
        for colour in LEVELS:
            conds: Conditions = getattr(lv, colour)
            for i, cond in enumerate(conds):
                if not cond:
                    found.append(
                        (f"levels.{scope}.{colour}[{i}]", "an empty condition (name a measure: at least)")
                    )
                for name, least in cond.items():
                    at = f"levels.{scope}.{colour}[{i}].{name}"
                    if name not in spec.measures:
                        found.append(
                            (at, f"unknown measure (expected one of {', '.join(sorted(spec.measures))})")
                        )
                    elif scope == "site" and depends_on_sites(spec.measures, name):
                        found.append(
                            (at, f"cycle: the 点 warnings that {name} counts are decided by this rule")
                        )
                    if least <= 0:
                        found.append((at, "the threshold must be above 0"))
            levels[scope][colour] = conds
    if found:
        raise RulesFileError(file, found)
    return AreaWarningRules(every, dict(spec.measures), order, levels)


def load_rules(path: Path | str = DEFAULT_RULES_FILE) -> AreaWarningRules:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesFileError(str(p), [("", "no such file")]) from None
    except yaml.YAMLError as exc:
        raise RulesFileError(str(p), [("", f"not valid YAML: {exc}")]) from None
    return parse_rules(raw, file=str(p))
