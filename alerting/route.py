"""The route tree: which routes handle an alert, and the aggregation group it joins on each.

Routing reads like Alertmanager's (``dispatch/route.go``): a tree of routes, each with label
matchers; an alert walks down from the root, taking the first child that matches (all matching
children when a child says ``continue: true``), and is handled by the deepest routes it reaches.
A route names a receiver (which roles of the responsibility matrix are told, on which channels)
and its grouping: ``group_by`` labels, ``group_wait`` (collect the burst: twenty smoke detectors
on one panel → one message), ``group_interval`` (wait before telling about additions to a group
that already notified) and ``repeat_interval`` (remind while it keeps firing). Each node holds
its settings already inherited from its parent: the tree is built, and ``routes.yaml``
validated, by :mod:`alerting.config`.

Alert labels available to matchers and ``group_by`` (set by the service from the event and the
registry): :data:`alerting.labels.STANDARD_LABELS` plus any label the detector put on the event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

from alerting.labels import STANDARD_LABELS, Matcher, matches_all
from alerting.quiet import QuietHours

__all__ = [
    "Route",
    "group_key",
    "group_labels",
    "later_route_ids",
    "GROUP_BY_ALL",
    "STANDARD_LABELS",
]


@dataclass(frozen=True)
class Route:
    id: str
    matchers: tuple[Matcher, ...]
    receiver: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool = False
    routes: tuple[Route, ...] = ()
    #: a red alarm of this route not acknowledged this long after it started is called by
    #: voice (routes.yaml ``voice_after``; alerting/notices.py voice_escalate_due); None: never
    voice_after: timedelta | None = None
    #: whom an acknowledgement stops the reminders to: recipient | unit | all (routes.yaml
    #: ``ack_stops``, inherited; alerting/ack_stops.py)
    ack_stops: str = "unit"
    #: 夜间免扰 (routes.yaml ``quiet_hours``, inherited; alerting/quiet.py); None: none
    quiet_hours: QuietHours | None = None

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes handling an alert with ``labels`` (depth-first, Alertmanager order)."""
        if not matches_all(self.matchers, labels):
            return []
        out: list[Route] = []
        for child in self.routes:
            got = child.match(labels)
            if got:
                out += got
                if not child.continue_:
                    break
        return out or [self]

    def walk(self) -> Iterator[Route]:
        yield self
        for c in self.routes:
            yield from c.walk()


#: ``group_by: ['...']``: group by every label (Alertmanager's wildcard)
GROUP_BY_ALL = "..."


def _q(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def group_labels(route: Route, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels that make an alert's group on ``route`` (its ``group_by`` values; every
    label with ``group_by: ['...']``)."""
    if route.group_by == (GROUP_BY_ALL,):
        return {n: v for n, v in sorted(labels.items()) if v != ""}
    return {n: labels.get(n, "") for n in route.group_by}


def group_key(route: Route, labels: Mapping[str, str]) -> str:
    """The aggregation group of an alert on a route: route id + the ``group_by`` values
    (quoted, so no value can pass for another label); with ``group_by: ['...']`` every label
    the alert has, sorted by name."""
    parts = ",".join(f'{n}="{_q(v)}"' for n, v in group_labels(route, labels).items())
    return f"{route.id}:{{{parts}}}"


def later_route_ids(root: Route) -> frozenset[str]:
    """Routes an alert can reach *after* another (after a ``continue: true`` sibling of theirs
    or of an ancestor): only their groups can have members whose own group is elsewhere."""
    out: set[str] = set()

    def visit(r: Route, later: bool) -> None:
        if later:
            out.add(r.id)
        after_continue = False
        for c in r.routes:
            visit(c, later or after_continue)
            after_continue = after_continue or c.continue_

    visit(root, False)
    return frozenset(out)
