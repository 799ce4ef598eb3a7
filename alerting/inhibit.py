"""Inhibition (抑制): a root-cause alarm mutes the symptoms it explains.

As in Alertmanager, a rule has source matchers (the cause), target matchers (the symptoms)
and ``equal`` labels that must have the same value on both. The district's rules
(``data/routes.yaml``):

* a gateway/panel offline or a site power loss inhibits its devices' offline alarms (the
  detectors behind a dead gateway all go silent at once — one alarm, not twenty);
* a panel's fire alarm inhibits fault signals from the same panel (a detector in a fire
  often reports a fault as it burns; the fire is what matters).

A source must be firing and must not be the target itself. Sources are searched among the
firing alerts of the target's site (every rule here is site-local: ``equal`` always names
``site_id`` or a finer label such as ``panel``), which keeps the check to a handful of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerting.labels import Matcher, matches_all

__all__ = ["InhibitRule", "Candidate", "inhibitor"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def inhibits(self, source_labels: Mapping[str, str], target_labels: Mapping[str, str]) -> bool:
        return (
            matches_all(self.target, target_labels)
            and matches_all(self.source, source_labels)
            and all(source_labels.get(n, "") == target_labels.get(n, "") for n in self.equal)
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A firing alert that may act as a source."""

    id: str
    labels: Mapping[str, str]


def inhibitor(
    target_id: str, target_labels: Mapping[str, str], sources: Iterable[Candidate], rules: Iterable[InhibitRule]
) -> tuple[str, str] | None:
    """``(rule name, source alert id)`` of the first rule and firing source muting the target,
    or None. ``sources`` are the firing alerts that may be causes (the target excluded)."""
    pool = [s for s in sources if s.id != target_id]
    for rule in rules:
        if not matches_all(rule.target, target_labels):
            continue
        for s in pool:
            if rule.inhibits(s.labels, target_labels):
                return rule.name, s.id
    return None
