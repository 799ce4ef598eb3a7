"""考核目标 (data/targets.yaml): the floor or ceiling of each figure below which a unit is named
in the 通报's 存在问题, validated at load in the data files' one wording (``file: path: problem``,
hazmon/datafile.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from hazmon.datafile import format_problems, problems
from hazmon.errors import ConfigError

__all__ = ["TARGET_FIELDS", "TargetRule", "Targets", "TargetsError", "load_targets", "parse_targets",
           "DEFAULT_TARGETS"]

DEFAULT_TARGETS = Path(__file__).resolve().parents[2] / "data" / "targets.yaml"
#: the figures a target may name: rates (fractions 0–1) and 逾期 counts
RATES = ("coverage_rate", "online_rate", "closure_rate", "false_alarm_rate", "rectification_rate")
COUNTS = ("overdue_alerts", "overdue_orders", "overdue_hazards")
TARGET_FIELDS = RATES + COUNTS


class TargetsError(ConfigError):
    """data/targets.yaml is invalid; ``problems`` lists every ``(path, problem)``."""

    def __init__(self, file: str, found: list[tuple[str, str]]) -> None:
        self.problems = found
        super().__init__(format_problems(file, found))


class TargetRule(BaseModel):
    """One figure's target: ``min`` (not below) or ``max`` (not above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> TargetRule:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min or max")
        return self

    @property
    def bound(self) -> float:
        return self.min if self.min is not None else self.max  # type: ignore[return-value]

    def missed(self, value: float | None) -> bool:
        """True when ``value`` is below the floor or above the ceiling (None: not measured)."""
        if value is None:
            return False
        return value < self.min if self.min is not None else value > self.bound


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dimensions: tuple[Literal["township", "department", "domain"], ...] = ("township", "department", "domain")
    targets: dict[str, TargetRule]

    @model_validator(mode="after")
    def _fields(self) -> Targets:
        from hazmon.datafile import refuse

        found: list[tuple[tuple[str | int, ...], str]] = []
        for name, rule in self.targets.items():
            if name not in TARGET_FIELDS:
                found.append((("targets", name), f"unknown figure (expected one of {', '.join(TARGET_FIELDS)})"))
            elif name in RATES and not 0.0 <= rule.bound <= 1.0:
                found.append((("targets", name, "min" if rule.min is not None else "max"),
                              "a rate is a fraction between 0 and 1"))
            elif name in COUNTS and (rule.min is not None or rule.bound < 0):
                found.append((("targets", name), "a 逾期 count takes max, 0 or more"))
        refuse(found)
        return self


def parse_targets(raw: object, file: str = "data/targets.yaml") -> Targets:
    if not isinstance(raw, dict):
        raise TargetsError(file, [("", "must be a mapping with targets:")])
    try:
        return Targets.model_validate(raw)
    except ValidationError as exc:
        raise TargetsError(file, problems(exc, model=Targets)) from None


def load_targets(path: Path | str = DEFAULT_TARGETS) -> Targets:
    """Read and validate ``data/targets.yaml``."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetsError(str(p), [("", "no such file")]) from None
    except yaml.YAMLError as exc:
        raise TargetsError(str(p), [("", f"not valid YAML: {exc}")]) from None
    return parse_targets(raw, str(p))
