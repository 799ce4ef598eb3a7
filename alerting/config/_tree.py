"""The route tree built from ``routes.yaml``, node by node, top-down.

Each node is validated on its own (:class:`RouteSpec`, its children kept raw) and takes from its
parent what it does not set; then the rules that need the tree are checked: the root matches
every alert and names a receiver, receivers exist, timers are positive and a reminder is not
more frequent than a group's flushes, names are unique, and no route sits after a catch-all
sibling without ``continue``. A key that does not parse is reported and left out, so the node
inherits instead and its children are still checked: one bad route does not hide the problems
of the others.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from alerting.config._file import RouteSpec
from alerting.config._values import flat
from alerting.labels import STANDARD_LABELS, Matcher
from alerting.quiet import QuietHours
from alerting.route import GROUP_BY_ALL, Route
from hazmon.datafile import Problem, problems

__all__ = ["ROOT_DEFAULTS", "Inherited", "TreeBuilder", "label_warnings"]


@dataclass(frozen=True, slots=True)
class Inherited:
    """What a route takes from its parent unless it says otherwise (not ``continue``)."""

    receiver: str | None
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    ack_stops: str = "unit"  # alerting/ack_stops.py
    quiet_hours: QuietHours | None = None  # alerting/quiet.py


#: the root route's defaults (Alertmanager's root group_by is none; see docs/alerting.md)
ROOT_DEFAULTS = Inherited(
    None, ("site_id", "panel", "kind"), timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=4)
)


def label_warnings(entries: tuple[tuple[Matcher, ...], ...], path: str) -> list[str]:
    return [f"{path}[{i}]: label {m.name!r} is not a standard alert label; it matches only if a detector "
            "sets it" for i, entry in enumerate(entries) for m in entry if m.name not in STANDARD_LABELS]


class TreeBuilder:
    """Builds :class:`Route` nodes top-down from raw mappings, collecting every problem."""

    def __init__(self, receivers: Collection[str]) -> None:
        self.receivers = receivers
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self._ids: set[str] = set()

    def _err(self, path: str, problem: str) -> None:
        self.problems.append((path, problem))

    def _spec(self, raw: Any, path: str) -> tuple[RouteSpec | None, frozenset[str]]:
        """The node's spec and the keys that failed (left out, so the node inherits instead and
        its children are still checked)."""
        try:
            return RouteSpec.model_validate(raw), frozenset()
        except ValidationError as exc:
            self.problems += problems(exc, model=RouteSpec, at=path)
            if not isinstance(raw, Mapping):
                return None, frozenset()
            failed = frozenset(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            try:
                return RouteSpec.model_validate({k: v for k, v in raw.items() if k not in failed}), failed
            except ValidationError:
                return None, failed

    def build(self, raw: Any, path: str, parent: Inherited, *, root: bool) -> tuple[Route | None, bool]:
        """The route at ``path`` and whether it catches every alert its later siblings could get."""
        spec, failed = self._spec(raw, path)
        if spec is None:
            return None, False
        matchers = flat(spec.matchers)
        self.warnings += label_warnings(spec.matchers, f"{path}.matchers")
        if root and matchers:
            self._err(f"{path}.matchers", "the root route must match every alert (no matchers)")
        if root and spec.continue_:
            self._err(f"{path}.continue", "the root route cannot have continue (it has no siblings)")
        receiver = parent.receiver if spec.receiver is None else spec.receiver
        if "receiver" not in failed:
            if receiver is None:
                self._err(f"{path}.receiver", "missing (the root route must name a receiver)")
            elif receiver not in self.receivers:
                self._err(f"{path}.receiver", f"unknown receiver {receiver!r}")
        group_by = parent.group_by if spec.group_by is None else spec.group_by
        if root and spec.group_by is None:
            # Alertmanager's root groups every alert of a route together when group_by is left out
            self.warnings.append(f"{path}.group_by: not given; hazmon groups by {list(group_by)} (Alertmanager "
                                 "would put every alert of a route in one group: write group_by: [] for that)")
        self.warnings += [f"{path}.group_by[{i}]: {n!r} is not a standard alert label"
                          for i, n in enumerate(spec.group_by or ())
                          if n != GROUP_BY_ALL and n not in STANDARD_LABELS]
        gw = parent.group_wait if spec.group_wait is None else spec.group_wait
        gi = parent.group_interval if spec.group_interval is None else spec.group_interval
        ri = parent.repeat_interval if spec.repeat_interval is None else spec.repeat_interval
        if gi <= timedelta(0):
            self._err(f"{path}.group_interval", "cannot be zero (must be positive)")
        if ri <= timedelta(0):
            self._err(f"{path}.repeat_interval", "cannot be zero (must be positive)")
        elif ri < gi:
            self._err(f"{path}.repeat_interval", "must not be shorter than group_interval (Alertmanager only "
                                                 "warns; hazmon refuses: the reminder would silently come at "
                                                 "group_interval)")
        if spec.voice_after is not None and spec.voice_after <= timedelta(0):
            self._err(f"{path}.voice_after", "must be positive (the time a red alarm may stay unacknowledged "
                                             "before its recipients are called)")
        rid = spec.name or path
        if rid in self._ids:
            self._err(f"{path}.name", f"duplicate route name {rid!r}")
        self._ids.add(rid)
        stops = parent.ack_stops if spec.ack_stops is None else spec.ack_stops
        quiet = parent.quiet_hours if spec.quiet_hours is None else None if spec.quiet_hours is False else \
            QuietHours(spec.quiet_hours.start, spec.quiet_hours.end,
                       frozenset(s.value for s in spec.quiet_hours.keep))
        here = Inherited(receiver, group_by, gw, gi, ri, stops, quiet)
        children: list[Route] = []
        catch_all_at: int | None = None
        for i, child in enumerate(spec.routes):
            cpath = f"{path}.routes[{i}]"
            if catch_all_at is not None and isinstance(child, Mapping):
                self._err(cpath, f"never reached: routes[{catch_all_at}] before it matches every alert and "
                                 "has no continue: true (this route matches nothing)")
            route, catches_all = self.build(child, cpath, here, root=False)
            if route is None:
                continue
            if catches_all and catch_all_at is None:
                catch_all_at = i
            children.append(route)
        # a node whose matchers or continue did not parse is not taken for a catch-all
        catches_all = not matchers and not spec.continue_ and not failed & {"matchers", "continue"}
        route = Route(rid, matchers, receiver or "", group_by, gw, gi, ri, spec.continue_, tuple(children),
                      voice_after=spec.voice_after, ack_stops=stops, quiet_hours=quiet)
        return route, catches_all
