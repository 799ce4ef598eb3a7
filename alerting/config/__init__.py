"""The alerting configuration file (``data/routes.yaml``) as pydantic models, checked at load.

As Alertmanager's ``config/``: the file is parsed and validated once, at start-up or by
``hazmon routes check``, into the runtime objects the pure decisions take — the route tree
(:class:`alerting.route.Route`), receivers, inhibition rules, the escalation ladder per severity
(四单), the key-period calendar (重点时段) and the centre's duty operator. :func:`load_config`
reports *every* problem as ``file: path: problem`` (:class:`RouteConfigError`, worded by
:mod:`hazmon.datafile` like the other data files); problems that do not stop the service (a
label no detector sets) come back as warnings for the operator.

The file's sections are pydantic models (``_file.py``, :class:`RoutesFile`), written in the
values of ``_values.py`` (durations, matchers, roles…); the route tree is built node by node
(``_tree.py``), because inheritance, receiver references and reachability need the whole tree
and one bad route must not hide the problems of its siblings. Where hazmon reads the file
differently from Alertmanager it says so at load (docs/alerting.md, "Differences from
Alertmanager").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from alerting.config._file import (
    DutyOperatorSpec,
    InhibitRuleSpec,
    KeyPeriodSpec,
    ReceiverSpec,
    RoutesFile,
    RouteSpec,
    SmsSpec,
    StepSpec,
)
from alerting.config._tree import ROOT_DEFAULTS, TreeBuilder, label_warnings
from alerting.config._values import CHANNELS, flat, parse_duration
from alerting.errors import RouteConfigError
from alerting.escalation import EscalationPolicy, EscalationStep, KeyPeriod
from alerting.inhibit import InhibitRule
from alerting.matrix import DUTY_RULE
from alerting.route import Route, group_key, later_route_ids
from hazmon.contracts import Recipient, RecipientRole, Severity
from hazmon.datafile import Problem, problems

__all__ = [
    "CHANNELS",
    "Receiver",
    "AlertingConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "RoutesFile",
    "RouteSpec",
    "ReceiverSpec",
    "DutyOperatorSpec",
    "InhibitRuleSpec",
    "StepSpec",
    "KeyPeriodSpec",
    "SmsSpec",
]


@dataclass(frozen=True, slots=True)
class Receiver:
    """Who is told first and how: matrix roles × channels. ``send_resolved`` also tells them
    when the alarm clears (off by default for SMS: clearing is on the console)."""

    name: str
    roles: tuple[RecipientRole, ...]
    channels: tuple[str, ...] = ("sms", "console")
    send_resolved: bool = False
    webhook_url: str = ""


@dataclass(frozen=True)
class AlertingConfig:
    file: str
    route: Route
    receivers: Mapping[str, Receiver]
    inhibit_rules: tuple[InhibitRule, ...]
    escalation: Mapping[Severity, EscalationPolicy]
    key_periods: tuple[KeyPeriod, ...]
    duty_operator: Recipient
    sms_max_segments: int = 3
    #: in whose name the 四单 are issued (``notice_issuer``, default 区安委办)
    notice_issuer: str = "区安委办"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def routes_for(self, labels: Mapping[str, str]) -> list[Route]:
        return self.route.match(labels)

    @property
    def has_continue(self) -> bool:
        """Whether an alert can reach more than one route (some route says ``continue: true``)."""
        return any(r.continue_ for r in self.route.walk())

    def later_route_ids(self) -> frozenset[str]:
        """Routes an alert can reach *after* another (see :func:`alerting.route.later_route_ids`)."""
        return later_route_ids(self.route)

    def later_groups(self, labels: Mapping[str, str]) -> list[tuple[Route, str]]:
        """The routes after the first an alert reaches (``continue: true``) with its group key on
        each: the alert is in those groups too, besides its own (``alerts.group_key``)."""
        return [(r, group_key(r, labels)) for r in self.routes_for(labels)[1:]] if self.has_continue else []

    def policy(self, severity: Severity | str) -> EscalationPolicy:
        sev = Severity(severity)
        return self.escalation.get(sev) or EscalationPolicy(sev)


def load_config(path: Path | str) -> AlertingConfig:
    """Read and validate ``routes.yaml``; raises :class:`RouteConfigError` listing every problem."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RouteConfigError(str(p), [("", "no such file")]) from None
    except yaml.YAMLError as exc:
        raise RouteConfigError(str(p), [("", f"not valid YAML: {exc}")]) from None
    return parse_config(raw, file=str(p))


def parse_config(raw: Any, *, file: str = "<routes>") -> AlertingConfig:
    """Validate a parsed ``routes.yaml``; raises :class:`RouteConfigError` listing every problem,
    in the order of the file's sections."""
    if not isinstance(raw, Mapping):
        raise RouteConfigError(file, [("", "the file must be a mapping with route, receivers, ...")])
    found: list[Problem] = []
    spec: RoutesFile | None = None
    try:
        spec = RoutesFile.model_validate(raw)
    except ValidationError as exc:
        found += problems(exc, model=RoutesFile)
    receivers = raw.get("receivers")
    tree = TreeBuilder(set(receivers) if isinstance(receivers, Mapping) else set())
    root: Route | None = None
    if isinstance(raw.get("route"), Mapping):
        root, _ = tree.build(raw["route"], "route", ROOT_DEFAULTS, root=True)
    else:
        found.append(("route", "missing: the root route is required"))
    found += tree.problems
    if found or spec is None or root is None:
        order = {str(k): i for i, k in enumerate(raw)}
        found.sort(key=lambda p: order.get(re.split(r"[.\[]", p[0], maxsplit=1)[0], -1))
        raise RouteConfigError(file, found or [("", "invalid configuration")])
    return _runtime(spec, root, file, tree.warnings)


def _runtime(spec: RoutesFile, root: Route, file: str, warnings: list[str]) -> AlertingConfig:
    """The runtime objects of a valid file."""
    inhibit = []
    for i, r in enumerate(spec.inhibit_rules):
        path = f"inhibit_rules[{i}]"
        warnings += label_warnings(r.source_matchers, f"{path}.source_matchers")
        warnings += label_warnings(r.target_matchers, f"{path}.target_matchers")
        inhibit.append(InhibitRule(r.name or path, flat(r.source_matchers), flat(r.target_matchers), r.equal))
    escalation = {
        sev: EscalationPolicy(sev, tuple(EscalationStep(s.level, s.after, s.roles, s.stop_when, s.deadline)
                                         for s in steps))
        for sev, steps in spec.escalation.items()
    }
    warnings += [f"{file}: escalation.{sev.value}: no ladder; {sev.zh}色 alarms never escalate"
                 for sev in Severity if sev not in escalation]
    duty = spec.duty_operator
    return AlertingConfig(
        file=file,
        route=root,
        receivers={name: Receiver(name, r.roles, r.channels, r.send_resolved, r.webhook_url)
                   for name, r in spec.receivers.items()},
        inhibit_rules=tuple(inhibit),
        escalation=escalation,
        key_periods=tuple(KeyPeriod(p.id, p.name, p.starts_at, p.ends_at, p.timer_factor, p.kind, p.domains,
                                    p.township_ids) for p in spec.key_periods),
        duty_operator=Recipient(role=RecipientRole.DUTY_OPERATOR, name=duty.name, unit=duty.unit,
                                phone=duty.phone, rule=DUTY_RULE),
        sms_max_segments=spec.sms.max_segments,
        notice_issuer=spec.notice_issuer,
        warnings=tuple(warnings),
    )
