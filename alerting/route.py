"""The route tree and the alerting configuration file (``data/routes.yaml``).

Routing reads like Alertmanager's: a tree of routes, each with label matchers; an alert walks
down from the root, taking the first child that matches (all matching children when a child
says ``continue: true``), and is handled by the deepest routes it reaches. A route names a
receiver (which roles of the responsibility matrix are told, on which channels) and its
grouping: ``group_by`` labels, ``group_wait`` (collect the burst: twenty smoke detectors on one
panel → one message), ``group_interval`` (wait before telling about additions to a group that
already notified) and ``repeat_interval`` (remind while it keeps firing). Settings are
inherited from the parent unless a child overrides them.

The same file holds inhibition rules, the escalation ladder per severity (四单), the key-period
calendar (重点时段) and the centre's duty operator. :func:`load_config` validates everything at
load and reports *every* problem as ``file: path: problem`` (:class:`RouteConfigError`);
problems that do not stop the service (a route that can never be reached) come back as
warnings for the operator.

Alert labels available to matchers and ``group_by`` (set by the service from the event and the
registry): ``domain severity kind state device_id site_id township_id village_id industry panel
component zone critical`` plus any label the detector put on the event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from alerting.errors import RouteConfigError
from alerting.escalation import EscalationPolicy, EscalationStep, KeyPeriod
from alerting.inhibit import InhibitRule
from alerting.labels import LABEL_NAME, Matcher, matches_all, parse_matcher, parse_matchers
from hazmon.contracts import NoticeLevel, Recipient, RecipientRole, Severity

__all__ = [
    "STANDARD_LABELS",
    "Receiver",
    "Route",
    "AlertingConfig",
    "parse_duration",
    "load_config",
    "parse_config",
    "group_key",
    "group_labels",
    "GROUP_BY_ALL",
]

STANDARD_LABELS = frozenset({
    "domain", "severity", "kind", "state", "device_id", "site_id", "township_id", "village_id", "industry",
    "panel", "component", "zone", "critical", "hub",
})
_CHANNELS = ("sms", "webhook", "console")
_DUR = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
# Alertmanager's (Prometheus') <duration>: units in this order, each at most once, e.g. 1h30m
_AM_DUR = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_duration(value: Any) -> timedelta:
    """Alertmanager's ``<duration>`` (``30s``, ``5m``, ``1h30m``, ``1d``, ``1w``; ``0``), and
    hazmon's extensions: one decimal unit (``1.5h``) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration like 30s, 5m or 4h is expected")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    text = str(value).strip()
    if text == "0":
        return timedelta(0)
    m = _DUR.match(text)
    if m:
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    am = _AM_DUR.match(text) if text else None
    if am is None or not any(am.groups()):
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 1h30m, 4h, 1d)")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in zip(am.groups(), ("y", "w", "d", "h", "m", "s", "ms"),
                                                                     strict=True) if n))


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
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def routes_for(self, labels: Mapping[str, str]) -> list[Route]:
        return self.route.match(labels)

    @property
    def has_continue(self) -> bool:
        """Whether an alert can reach more than one route (some route says ``continue: true``)."""
        return any(r.continue_ for r in self.route.walk())

    def later_route_ids(self) -> frozenset[str]:
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

        visit(self.route, False)
        return frozenset(out)

    def later_groups(self, labels: Mapping[str, str]) -> list[tuple[Route, str]]:
        """The routes after the first an alert reaches (``continue: true``) with its group key on
        each: the alert is in those groups too, besides its own (``alerts.group_key``)."""
        return [(r, group_key(r, labels)) for r in self.routes_for(labels)[1:]] if self.has_continue else []

    def policy(self, severity: Severity | str) -> EscalationPolicy:
        sev = Severity(severity)
        return self.escalation.get(sev) or EscalationPolicy(sev)


class _Problems:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    def err(self, path: str, problem: str) -> None:
        self.errors.append((path, problem))


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
    pr = _Problems()
    if not isinstance(raw, Mapping):
        raise RouteConfigError(file, [("", "the file must be a mapping with route, receivers, ...")])
    known_top = {"route", "receivers", "inhibit_rules", "escalation", "key_periods", "duty_operator", "sms"}
    for k in raw:
        if k not in known_top:
            pr.err(str(k), f"unknown key (expected one of {', '.join(sorted(known_top))})")

    receivers = _receivers(raw.get("receivers"), pr)
    duty = _duty(raw.get("duty_operator"), pr)
    root_raw = raw.get("route")
    route: Route | None = None
    if not isinstance(root_raw, Mapping):
        pr.err("route", "missing: the root route is required")
    else:
        defaults = {
            "receiver": None, "group_by": ("site_id", "panel", "kind"), "group_wait": timedelta(seconds=30),
            "group_interval": timedelta(minutes=5), "repeat_interval": timedelta(hours=4),
        }
        route = _route(root_raw, "route", defaults, receivers, pr, is_root=True, ids=set())
    inhibit = _inhibit(raw.get("inhibit_rules", []), pr)
    escalation = _escalation(raw.get("escalation", {}), pr)
    periods = _key_periods(raw.get("key_periods", []), pr)
    sms = raw.get("sms", {}) or {}
    max_seg = 3
    if not isinstance(sms, Mapping):
        pr.err("sms", "must be a mapping")
    else:
        max_seg = sms.get("max_segments", 3)
        if not isinstance(max_seg, int) or not 1 <= max_seg <= 10:
            pr.err("sms.max_segments", "must be an integer 1..10")
            max_seg = 3
    if pr.errors or route is None or duty is None:
        raise RouteConfigError(file, pr.errors or [("", "invalid configuration")])
    for sev in Severity:
        if sev not in escalation:
            pr.warnings.append(f"{file}: escalation.{sev.value}: no ladder; {sev.zh}色 alarms never escalate")
    return AlertingConfig(file, route, receivers, inhibit, escalation, periods, duty, max_seg,
                          tuple(pr.warnings))


def _strs(value: Any, path: str, pr: _Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        pr.err(path, "must be a list of strings")
        return ()
    return tuple(value)


def _rewrite(spec: Any, op: str) -> str:
    """``match: {domain: gas}`` written the supported way, for the error message."""
    if not isinstance(spec, Mapping):
        return "matchers: ['name=\"value\"']"
    def one(k: Any, v: Any) -> str:
        try:
            return repr(str(Matcher(str(k), op, str(v))))  # type: ignore[arg-type]
        except ValueError:
            return repr(f'{k}{op}"..."')

    return f"matchers: [{', '.join(one(k, v) for k, v in spec.items())}]"


def _deprecated(raw: Mapping[str, Any], path: str, pr: _Problems, new: str, prefix: str = "") -> None:
    """Alertmanager's DEPRECATED ``match``/``match_re`` forms: refused, with the rewrite."""
    for key, op in ((f"{prefix}match", "="), (f"{prefix}match_re", "=~")):
        if key in raw:
            fix = _rewrite(raw[key], op).replace("matchers:", f"{new}:", 1)
            pr.err(f"{path}.{key}", f"the deprecated Alertmanager form is not supported; write {fix}")


def _matchers(value: Any, path: str, pr: _Problems) -> tuple[Matcher, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        pr.err(path, 'must be a list of matchers like [\'severity="red"\'] (as Alertmanager\'s matchers)')
        return ()
    out = []
    for i, spec in enumerate(value):
        try:
            got = parse_matchers(spec) if isinstance(spec, str) else (parse_matcher(spec),)
        except ValueError as exc:
            pr.err(f"{path}[{i}]", str(exc))
            continue
        for m in got:
            _check_matcher(m, f"{path}[{i}]", pr)
            out.append(m)
    return tuple(out)


def _check_matcher(m: Matcher, path: str, pr: _Problems) -> None:
    if m.name == "severity" and m.op == "=" and m.value not in {s.value for s in Severity}:
        pr.err(path, f"severity {m.value!r} matches nothing (use red, orange, yellow or blue)")
    if m.name not in STANDARD_LABELS:
        pr.warnings.append(f"{path}: label {m.name!r} is not a standard alert label; it matches only "
                           "if a detector sets it")


def _dur(value: Any, path: str, pr: _Problems, default: timedelta) -> timedelta:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        pr.err(path, str(exc))
        return default


def _receivers(raw: Any, pr: _Problems) -> dict[str, Receiver]:
    out: dict[str, Receiver] = {}
    if not isinstance(raw, Mapping) or not raw:
        pr.err("receivers", "missing: name at least one receiver (roles and channels)")
        return out
    for name, spec in raw.items():
        path = f"receivers.{name}"
        if not isinstance(spec, Mapping):
            pr.err(path, "must be a mapping with roles and channels")
            continue
        roles = []
        for i, r in enumerate(_strs(spec.get("roles"), f"{path}.roles", pr)):
            try:
                roles.append(RecipientRole(r))
            except ValueError:
                pr.err(f"{path}.roles[{i}]", f"unknown role {r!r} (use {', '.join(x.value for x in RecipientRole)})")
        if not roles:
            pr.err(f"{path}.roles", "a receiver needs at least one role")
        channels = _strs(spec.get("channels", ["sms", "console"]), f"{path}.channels", pr)
        for i, c in enumerate(channels):
            if c not in _CHANNELS:
                pr.err(f"{path}.channels[{i}]", f"unknown channel {c!r} (use {', '.join(_CHANNELS)})")
        url = spec.get("webhook_url", "")
        if "webhook" in channels and not url:
            pr.err(f"{path}.webhook_url", "the webhook channel needs a URL")
        extra = set(spec) - {"roles", "channels", "send_resolved", "webhook_url"}
        for k in sorted(extra):
            pr.err(f"{path}.{k}", "unknown key")
        out[str(name)] = Receiver(str(name), tuple(roles), channels, bool(spec.get("send_resolved", False)), url)
    return out


def _duty(raw: Any, pr: _Problems) -> Recipient | None:
    from alerting.matrix import DUTY_RULE, normalize_phone

    if not isinstance(raw, Mapping):
        pr.err("duty_operator", "missing: the centre's duty operator (name, phone) receives what nobody else does")
        return None
    phone = raw.get("phone")
    norm = normalize_phone(str(phone)) if phone else None
    if phone and norm is None:
        pr.err("duty_operator.phone", f"{phone!r} is not a valid mainland mobile number")
    return Recipient(role=RecipientRole.DUTY_OPERATOR, name=str(raw.get("name", "中心值班员")),
                     unit=str(raw.get("unit", "区应急指挥中心")), phone=norm, rule=DUTY_RULE)


def _route(raw: Mapping[str, Any], path: str, parent: Mapping[str, Any], receivers: Mapping[str, Receiver],
           pr: _Problems, *, is_root: bool, ids: set[str]) -> Route:
    allowed = {"name", "matchers", "receiver", "group_by", "group_wait", "group_interval", "repeat_interval",
               "continue", "routes"}
    _deprecated(raw, path, pr, "matchers")
    for k in raw:
        if k not in allowed and k not in ("match", "match_re"):
            pr.err(f"{path}.{k}", f"unknown key (expected one of {', '.join(sorted(allowed))})")
    matchers = _matchers(raw.get("matchers"), f"{path}.matchers", pr)
    if is_root and matchers:
        pr.err(f"{path}.matchers", "the root route must match every alert (no matchers)")
    cont = raw.get("continue", False)
    if not isinstance(cont, bool):
        pr.err(f"{path}.continue", "must be true or false")
        cont = False
    if is_root and cont:
        pr.err(f"{path}.continue", "the root route cannot have continue (it has no siblings)")
    receiver = raw.get("receiver", parent["receiver"])
    if receiver is None:
        pr.err(f"{path}.receiver", "missing (the root route must name a receiver)")
    elif receiver not in receivers:
        pr.err(f"{path}.receiver", f"unknown receiver {receiver!r}")
    group_by = _strs(raw.get("group_by"), f"{path}.group_by", pr) if "group_by" in raw else parent["group_by"]
    if "group_by" in raw:
        if GROUP_BY_ALL in group_by and len(group_by) > 1:
            pr.err(f"{path}.group_by", "'...' (group by every label) must be the only entry")
            group_by = (GROUP_BY_ALL,)
        seen_by: set[str] = set()
        for i, n in enumerate(group_by):
            if n == GROUP_BY_ALL:
                continue
            if not LABEL_NAME.fullmatch(n):
                pr.err(f"{path}.group_by[{i}]", f"invalid label name {n!r}")
            elif n in seen_by:
                pr.err(f"{path}.group_by[{i}]", f"duplicate label {n!r}")
            elif n not in STANDARD_LABELS:
                pr.warnings.append(f"{path}.group_by[{i}]: {n!r} is not a standard alert label")
            seen_by.add(n)
    gw = _dur(raw.get("group_wait"), f"{path}.group_wait", pr, parent["group_wait"])
    gi = _dur(raw.get("group_interval"), f"{path}.group_interval", pr, parent["group_interval"])
    ri = _dur(raw.get("repeat_interval"), f"{path}.repeat_interval", pr, parent["repeat_interval"])
    if gi <= timedelta(0):
        pr.err(f"{path}.group_interval", "cannot be zero (must be positive)")
    if ri <= timedelta(0):
        pr.err(f"{path}.repeat_interval", "cannot be zero (must be positive)")
    elif ri < gi:
        pr.err(f"{path}.repeat_interval", "must not be shorter than group_interval (Alertmanager only warns; "
                                          "hazmon refuses: the reminder would silently come at group_interval)")
    rid = str(raw.get("name") or path)
    if rid in ids:
        pr.err(f"{path}.name", f"duplicate route name {rid!r}")
    ids.add(rid)
    here = {"receiver": receiver, "group_by": group_by, "group_wait": gw, "group_interval": gi, "repeat_interval": ri}
    children: list[Route] = []
    kids = raw.get("routes", []) or []
    if not isinstance(kids, list):
        pr.err(f"{path}.routes", "must be a list of routes")
        kids = []
    catch_all_at: int | None = None
    for i, child in enumerate(kids):
        cpath = f"{path}.routes[{i}]"
        if not isinstance(child, Mapping):
            pr.err(cpath, "must be a mapping")
            continue
        if catch_all_at is not None:
            pr.err(cpath, f"never reached: routes[{catch_all_at}] before it matches every alert and has no "
                          "continue: true (this route matches nothing)")
        r = _route(child, cpath, here, receivers, pr, is_root=False, ids=ids)
        if not r.matchers and not r.continue_ and catch_all_at is None:
            catch_all_at = i
        children.append(r)
    return Route(rid, matchers, str(receiver or ""), group_by, gw, gi, ri, cont, tuple(children))


def _inhibit(raw: Any, pr: _Problems) -> tuple[InhibitRule, ...]:
    if not isinstance(raw, list):
        pr.err("inhibit_rules", "must be a list")
        return ()
    out = []
    for i, spec in enumerate(raw):
        path = f"inhibit_rules[{i}]"
        if not isinstance(spec, Mapping):
            pr.err(path, "must be a mapping with source_matchers, target_matchers, equal")
            continue
        _deprecated(spec, path, pr, "source_matchers", "source_")
        _deprecated(spec, path, pr, "target_matchers", "target_")
        allowed = {"name", "source_matchers", "target_matchers", "equal", "source_match", "source_match_re",
                   "target_match", "target_match_re"}
        for k in spec:
            if k not in allowed:
                pr.err(f"{path}.{k}", "unknown key (expected name, source_matchers, target_matchers, equal)")
        src = _matchers(spec.get("source_matchers"), f"{path}.source_matchers", pr)
        tgt = _matchers(spec.get("target_matchers"), f"{path}.target_matchers", pr)
        equal = _strs(spec.get("equal"), f"{path}.equal", pr)
        for j, n in enumerate(equal):
            if not LABEL_NAME.fullmatch(n):
                pr.err(f"{path}.equal[{j}]", f"invalid label name {n!r}")
        if not src:
            pr.err(f"{path}.source_matchers", "required (which alerts are the cause)")
        if not tgt:
            pr.err(f"{path}.target_matchers", "required (which alerts they mute)")
        if not equal:
            pr.err(f"{path}.equal", "required: without equal labels one alarm anywhere would mute alarms everywhere")
        out.append(InhibitRule(str(spec.get("name", path)), src, tgt, equal))
    return tuple(out)


_LEVEL_ALIASES = {lvl.zh: lvl for lvl in NoticeLevel}


def _escalation(raw: Any, pr: _Problems) -> dict[Severity, EscalationPolicy]:
    out: dict[Severity, EscalationPolicy] = {}
    if not isinstance(raw, Mapping):
        pr.err("escalation", "must map a severity (red, orange, yellow, blue) to a list of steps")
        return out
    for sev_name, steps_raw in raw.items():
        path = f"escalation.{sev_name}"
        try:
            sev = Severity(sev_name)
        except ValueError:
            pr.err(path, f"unknown severity {sev_name!r} (use red, orange, yellow, blue)")
            continue
        if not isinstance(steps_raw, list):
            pr.err(path, "must be a list of steps")
            continue
        steps: list[EscalationStep] = []
        for i, s in enumerate(steps_raw):
            spath = f"{path}[{i}]"
            if not isinstance(s, Mapping):
                pr.err(spath, "must be a mapping with level, after, roles")
                continue
            lvl_raw = s.get("level")
            level = _LEVEL_ALIASES.get(str(lvl_raw))
            if level is None:
                try:
                    level = NoticeLevel(str(lvl_raw))
                except ValueError:
                    pr.err(f"{spath}.level", f"unknown notice level {lvl_raw!r} (reminder, warning, supervision, "
                                             "accountability / 工作提醒单 …)")
                    continue
            if "after" not in s:
                pr.err(f"{spath}.after", "required")
            after = _dur(s.get("after"), f"{spath}.after", pr, timedelta(0))
            roles = []
            for j, r in enumerate(_strs(s.get("roles"), f"{spath}.roles", pr)):
                try:
                    roles.append(RecipientRole(r))
                except ValueError:
                    pr.err(f"{spath}.roles[{j}]", f"unknown role {r!r}")
            if not roles:
                pr.err(f"{spath}.roles", "a notice needs at least one role")
            stop = s.get("stop_when", "acknowledged")
            if stop not in ("acknowledged", "handling", "closed"):
                pr.err(f"{spath}.stop_when", "must be acknowledged, handling or closed")
                stop = "acknowledged"
            deadline = _dur(s["deadline"], f"{spath}.deadline", pr, timedelta(0)) if "deadline" in s else None
            if steps:
                if after <= steps[-1].after:
                    pr.err(f"{spath}.after", "steps must come later than the step before")
                if level.step <= steps[-1].level.step:
                    pr.err(f"{spath}.level", "levels must climb: 工作提醒单 → 风险警示单 → 问题督办单 → 问责建议单")
            steps.append(EscalationStep(level, after, tuple(roles), stop, deadline))
        out[sev] = EscalationPolicy(sev, tuple(steps))
    return out


def _ts(value: Any, path: str, pr: _Problems) -> datetime | None:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            pr.err(path, f"{value!r} is not an ISO 8601 timestamp")
            return None
    if dt.tzinfo is None:
        pr.err(path, "needs a UTC offset, e.g. 2027-02-05T00:00:00+08:00")
        return None
    return dt


def _key_periods(raw: Any, pr: _Problems) -> tuple[KeyPeriod, ...]:
    if not isinstance(raw, list):
        pr.err("key_periods", "must be a list")
        return ()
    out = []
    seen: set[str] = set()
    for i, spec in enumerate(raw):
        path = f"key_periods[{i}]"
        if not isinstance(spec, Mapping):
            pr.err(path, "must be a mapping with id, name, starts_at, ends_at")
            continue
        pid, name = str(spec.get("id", "")), str(spec.get("name", ""))
        if not pid or not name:
            pr.err(path, "id and name are required")
        if pid in seen:
            pr.err(f"{path}.id", f"duplicate id {pid!r}")
        seen.add(pid)
        s, e = _ts(spec.get("starts_at"), f"{path}.starts_at", pr), _ts(spec.get("ends_at"), f"{path}.ends_at", pr)
        if s and e and e <= s:
            pr.err(f"{path}.ends_at", "must be after starts_at")
        factor = spec.get("timer_factor", 0.5)
        if not isinstance(factor, int | float) or not 0 < factor <= 1:
            pr.err(f"{path}.timer_factor", "must be a number in (0, 1]: key periods tighten timers")
            factor = 1.0
        if s and e:
            out.append(KeyPeriod(pid, name, s, e, float(factor), str(spec.get("kind", "other")),
                                 _strs(spec.get("domains"), f"{path}.domains", pr),
                                 _strs(spec.get("township_ids"), f"{path}.township_ids", pr)))
    return tuple(out)
