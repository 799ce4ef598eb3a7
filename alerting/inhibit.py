"""Inhibition (抑制): a root-cause alarm mutes the symptoms it explains.

As in Alertmanager, a rule has source matchers (the cause), target matchers (the symptoms)
and ``equal`` labels that must have the same value on both. The district's rules
(``data/routes.yaml``):

* a gateway/panel offline or a site power loss inhibits its devices' offline alarms (the
  detectors behind a dead gateway all go silent at once — one alarm, not twenty);
* a panel's fire alarm inhibits fault signals from the same panel (a detector in a fire
  often reports a fault as it burns; the fire is what matters).

Semantics as Alertmanager's (docs/configuration.md, ``<inhibit_rule>``): a source must be
firing; a label missing on both sides counts as equal (missing = empty); and an alert that
matches *both* the source and the target side of a rule cannot be inhibited by an alert for
which the same is true (including itself) — so two such alerts never mute each other. When
every rule's ``equal`` names ``site_id`` the sources are searched among the firing alerts of the
target's site only (:func:`site_local`); a rule equal on a label shared across sites (e.g.
``township_id``) makes the service search all firing alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerting.labels import Matcher, matches_all

__all__ = ["InhibitRule", "Candidate", "inhibitor", "site_local"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def inhibits(self, source_labels: Mapping[str, str], target_labels: Mapping[str, str]) -> bool:
        if not (matches_all(self.target, target_labels) and matches_all(self.source, source_labels)):
            return False
        if not all(source_labels.get(n, "") == target_labels.get(n, "") for n in self.equal):
            return False
        # a target matching both sides is not muted by a source matching both sides
        return not (matches_all(self.source, target_labels) and matches_all(self.target, source_labels))


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


def site_local(rules: Iterable[InhibitRule]) -> bool:
    """Whether every rule needs source and target at the same site (``equal`` names
    ``site_id``), so sources can be looked for among the target's site's alerts only."""
    return all("site_id" in r.equal for r in rules)
