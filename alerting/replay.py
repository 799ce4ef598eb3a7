"""What-if replay (阈值/路由模拟回放): the stored readings of a period through changed thresholds
(a ``detectors.yaml``) and/or changed routes (a ``routes.yaml``), against the live configuration
replayed the same way — without touching live state.

* read: one ``READ ONLY`` repeatable-read transaction (alerting/replay_data.py): the readings,
  device events and status of the period, the registry, the live alerts' 研判 verdicts;
* detect: two fresh in-memory detector engines, live and proposed thresholds
  (alerting/replay_detect.py);
* notify: the route tree, inhibition, grouping and the 责任矩阵 in memory, the outbox never
  written (alerting/replay_notify.py);
* report (:class:`ReplayResult`): alerts added and removed (device, site, kind, start), outbox
  rows and SMS per role (企业/网格员/镇街/部门/责任领导/包保领导…), and beside them the period's
  误报率 from the live alerts' verdicts — how many of the removed alerts had been judged false.

Bad input changes nothing and says what is wrong: a period longer than ``replay.max_days`` or
with more than ``replay.max_readings`` readings, one not yet begun or with no readings
(:class:`~alerting.errors.InvalidAction`), a thresholds or routes file that fails validation
(the loaders' own ``file: path: problem``, :class:`~hazmon.errors.ConfigError`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from alerting.compose import ComposeContext
from alerting.config import AlertingConfig, parse_config
from alerting.config import load_config as load_routes
from alerting.errors import InvalidAction, RouteConfigError
from alerting.reach import ROLE_ZH
from alerting.replay_data import LiveAlert, ReplayScope, count_records, handling, live_alerts, scope_names
from alerting.replay_detect import detect
from alerting.replay_notices import escalate
from alerting.replay_notify import Planned, plan_notifications
from alerting.replay_text import CST, render_text
from alerting.templates import KIND_ZH
from detectors.config import DetectorConfig, load_config
from detectors.warmup import registry_meta
from hazmon.contracts import Event, EventState, NoticeLevel, RecipientRole, Severity
from hazmon.errors import ConfigError
from hazmon.registry import Registry, load_registry
from hazmon.settings_replay import ReplaySettings

__all__ = [
    "Proposal",
    "AlertDiff",
    "RoleRow",
    "ModelRow",
    "ReplayResult",
    "replay",
    "detectors_from_text",
    "routes_from_text",
    "CST",
]

_ROLES = [r.value for r in RecipientRole]


def detectors_from_text(text: str, name: str = "detectors.yaml") -> DetectorConfig:
    """A pasted or uploaded thresholds file, validated as :func:`detectors.config.load_config` does."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: top level must be a mapping")
    return DetectorConfig(raw, source=name)


def routes_from_text(text: str, name: str = "routes.yaml") -> AlertingConfig:
    """A pasted or uploaded routes file, validated as :func:`alerting.config.load_config` does."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RouteConfigError(name, [("", f"not valid YAML: {exc}")]) from None
    return parse_config(raw, file=name)


@dataclass(frozen=True)
class Proposal:
    """What a replay compares: the live files and the proposed ones (None: the live one)."""

    live_detectors: DetectorConfig
    live_routes: AlertingConfig
    detectors: DetectorConfig | None = None
    routes: AlertingConfig | None = None

    @classmethod
    def from_files(
        cls,
        live_detectors: Path | str,
        live_routes: Path | str,
        detectors: Path | str | None = None,
        routes: Path | str | None = None,
    ) -> Proposal:
        def other(
            path: Path | str | None, live: Path | str
        ) -> Path | None:  # the live file again: no second run
            return Path(path) if path and Path(path).resolve() != Path(live).resolve() else None

        d, r = other(detectors, live_detectors), other(routes, live_routes)
        return cls(
            load_config(live_detectors),
            load_routes(live_routes),
            load_config(d) if d else None,
            load_routes(r) if r else None,
        )


@dataclass(frozen=True, slots=True)
class AlertDiff:
    """An alert one side has and the other does not (``verdict``: the live alert's 研判, if any)."""

    id: str
    device_id: str
    model: str
    site_id: str
    site_name: str
    component: str
    kind: str
    kind_zh: str
    severity: str
    severity_zh: str
    starts_at: datetime
    ends_at: datetime | None
    verdict: str | None
    roles_zh: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoleRow:
    """Notifications of one role: outbox rows (every channel) and SMS, live and proposed."""

    role: str
    role_zh: str
    live: int
    proposed: int
    sms_live: int
    sms_proposed: int
    undeliverable_live: int = 0
    undeliverable_proposed: int = 0
    #: SMS and calls held for the morning digest (夜间免扰), not counted in ``sms_*``
    held_live: int = 0
    held_proposed: int = 0


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One vendor model: its alerts live and proposed, and its 误报率 in the period (stored alerts)."""

    model: str
    vendor: str
    live: int
    proposed: int
    stored: int
    judged: int
    false_alarms: int

    @property
    def false_alarm_rate(self) -> float | None:
        return self.false_alarms / self.judged if self.judged else None


@dataclass(frozen=True)
class ReplayResult:
    start: datetime
    end: datetime
    model: str
    vendor: str
    detectors_file: str
    routes_file: str
    live_detectors_file: str
    live_routes_file: str
    records: int
    #: stored rows read: readings, device events, status reports
    rows: int
    live_alerts: int
    proposed_alerts: int
    added: tuple[AlertDiff, ...]
    removed: tuple[AlertDiff, ...]
    roles: tuple[RoleRow, ...]
    sms_live: int
    sms_proposed: int
    messages_live: int
    messages_proposed: int
    #: 四单 issued by level (reminder, warning, supervision, accountability), live and proposed
    notices_live: dict[str, int]
    notices_proposed: dict[str, int]
    #: the stored (live) alerts of the period: how many, judged (研判), judged false (误报)
    stored_alerts: int
    judged: int
    false_alarms: int
    #: of the removed alerts: how many are stored alerts that had been judged, and judged false
    removed_judged: int
    removed_false: int
    #: how many of the live-config replay's alerts are stored alerts (the replay's fidelity)
    live_in_store: int
    #: per vendor model: alerts live and proposed beside its 误报率
    models: tuple[ModelRow, ...] = ()

    @property
    def false_alarm_rate(self) -> float | None:
        """误报率 of the period: judged false ÷ judged (None: nothing judged)."""
        return self.false_alarms / self.judged if self.judged else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["false_alarm_rate"] = self.false_alarm_rate
        for row, m in zip(out["models"], self.models, strict=True):
            row["false_alarm_rate"] = m.false_alarm_rate
        return _jsonable(out)

    def text(self) -> str:
        return render_text(self)


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def _alerts(events: list[Event]) -> dict[str, tuple[Event, datetime | None]]:
    """The episodes of a replay: each alert's firing event and its end (None: still firing)."""
    out: dict[str, tuple[Event, datetime | None]] = {}
    for ev in events:
        if ev.state == EventState.FIRING:
            out.setdefault(ev.id, (ev, None))
        elif ev.id in out:
            out[ev.id] = (out[ev.id][0], ev.ends_at)
    return out


def _diff(
    ids: list[str],
    side: dict[str, tuple[Event, datetime | None]],
    registry: Registry,
    stored: dict[str, LiveAlert],
    planned: Planned,
) -> tuple[AlertDiff, ...]:
    rows = []
    for i in ids:
        ev, ends = side[i]
        site = registry.sites.get(ev.site_id)
        dev = registry.devices.get(ev.device_id)
        live = stored.get(i)
        sev = Severity(ev.severity)
        rows.append(
            AlertDiff(
                i,
                ev.device_id,
                dev.model if dev else "",
                ev.site_id,
                site.name if site else ev.site_id,
                ev.component,
                ev.kind,
                KIND_ZH.get(ev.kind, ev.kind),
                sev.value,
                sev.zh,
                ev.starts_at,
                ends,
                live.verdict if live else None,
                tuple(ROLE_ZH.get(r, r) for r in _ROLES if r in planned.reached.get(i, ())),
            )
        )
    return tuple(sorted(rows, key=lambda d: (d.starts_at, d.device_id, d.kind, d.component)))


def _models(
    registry: Registry, live: dict[str, Any], new: dict[str, Any], stored: dict[str, LiveAlert]
) -> tuple[ModelRow, ...]:
    """Alerts per vendor model (the registry's; an unregistered device under ''), live and proposed,
    with the model's stored alerts and their verdicts."""

    def key(device_id: str) -> tuple[str, str]:
        dev = registry.devices.get(device_id)
        if dev is None:
            return "", ""
        vendor = registry.vendors.get(dev.vendor_id)
        return dev.model, vendor.name if vendor else dev.vendor_id

    count: dict[tuple[str, str], list[int]] = {}
    for i, side in enumerate((live, new)):
        for ev, _end in side.values():
            count.setdefault(key(ev.device_id), [0] * 5)[i] += 1
    for a in stored.values():
        c = count.setdefault(key(a.device_id), [0] * 5)
        c[2] += 1
        c[3] += bool(a.verdict)
        c[4] += a.verdict == "false"
    return tuple(
        ModelRow(m, v, *c) for (m, v), c in sorted(count.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    )


def _check_period(start: datetime, end: datetime, now: datetime, limits: ReplaySettings) -> None:
    if end <= start:
        raise InvalidAction("结束时间须晚于开始时间")
    if start >= now:
        raise InvalidAction("所选时段尚未开始")
    days = (end - start) / timedelta(days=1)
    if days > limits.max_days:
        raise InvalidAction(
            f"回放时段超过上限：所选 {days:g} 天，上限 {limits.max_days:g} 天"
            "（设置 replay.max_days，HAZMON_REPLAY__MAX_DAYS）"
        )


async def replay(
    conn: asyncpg.Connection,
    proposal: Proposal,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    scope: ReplayScope | None = None,
    limits: ReplaySettings | None = None,
) -> ReplayResult:
    """Replay ``[start, end)`` under the live and the proposed configuration and compare them.
    Only reads: everything runs in one read-only transaction on ``conn``."""
    limits = limits or ReplaySettings()
    scope = scope or ReplayScope()
    _check_period(start, end, now, limits)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if (scope.model or scope.vendor) and not await scope_names(conn, scope):
            what = "、".join(
                x
                for x in (
                    f"型号 {scope.model}" if scope.model else "",
                    f"厂商 {scope.vendor}" if scope.vendor else "",
                )
                if x
            )
            raise InvalidAction(f"登记册中没有{what}的设备")
        n = await count_records(conn, start, end, scope)
        if n == 0:
            raise InvalidAction("所选时段内没有任何监测数据（没有可回放的读数、设备事件或状态上报）")
        if n > limits.max_readings:
            raise InvalidAction(
                f"回放数据超过上限：所选时段有 {n} 条读数和设备上报，上限 {limits.max_readings} 条"
                "（设置 replay.max_readings）；请缩短时段或按厂商、型号回放"
            )
        registry = await load_registry(conn)
        meta = await registry_meta(conn)
        configs = [proposal.live_detectors]
        if proposal.detectors is not None:
            configs.append(proposal.detectors)
        until = min(end, now)
        found = await detect(conn, start, end, scope, configs, meta, until=until)
        stored = {a.id: a for a in await live_alerts(conn, start, end, scope)}
        hand = await handling(conn, list(stored))
    live_events = found[0].events
    new_events = found[1].events if len(found) > 1 else live_events
    routes = proposal.routes or proposal.live_routes
    ctx_live, ctx_new = ComposeContext(registry, proposal.live_routes), ComposeContext(registry, routes)
    p_live = plan_notifications(live_events, registry, proposal.live_routes, end=until, ctx=ctx_live)
    p_new = plan_notifications(new_events, registry, routes, end=until, ctx=ctx_new)
    escalate(p_live, hand, ctx_live, until)  # the 四单, by what people did to the stored alerts
    escalate(p_new, hand, ctx_new, until)
    a_live, a_new = _alerts(live_events), _alerts(new_events)
    added = _diff([i for i in a_new if i not in a_live], a_new, registry, stored, p_new)
    removed = _diff([i for i in a_live if i not in a_new], a_live, registry, stored, p_live)
    roles = tuple(
        RoleRow(
            r,
            ROLE_ZH.get(r, r),
            sum(c for (rr, _ch), c in p_live.rows.items() if rr == r),
            sum(c for (rr, _ch), c in p_new.rows.items() if rr == r),
            p_live.sms[r],
            p_new.sms[r],
            p_live.undeliverable[r],
            p_new.undeliverable[r],
            p_live.held[r],
            p_new.held[r],
        )
        for r in _ROLES
    )
    judged = [a for a in stored.values() if a.verdict]
    return ReplayResult(
        start=start,
        end=end,
        model=scope.model,
        vendor=scope.vendor,
        detectors_file=proposal.detectors.source if proposal.detectors else "",
        routes_file=proposal.routes.file if proposal.routes else "",
        live_detectors_file=proposal.live_detectors.source,
        live_routes_file=proposal.live_routes.file,
        records=found[0].records,
        rows=n,
        live_alerts=len(a_live),
        proposed_alerts=len(a_new),
        added=added,
        removed=removed,
        roles=roles,
        sms_live=p_live.sms_total,
        sms_proposed=p_new.sms_total,
        messages_live=p_live.messages,
        messages_proposed=p_new.messages,
        notices_live={lv.value: p_live.notices[lv.value] for lv in NoticeLevel},
        notices_proposed={lv.value: p_new.notices[lv.value] for lv in NoticeLevel},
        stored_alerts=len(stored),
        judged=len(judged),
        false_alarms=sum(a.verdict == "false" for a in judged),
        removed_judged=sum(1 for d in removed if d.verdict),
        removed_false=sum(d.verdict == "false" for d in removed),
        live_in_store=sum(1 for i in a_live if i in stored),
        models=_models(registry, a_live, a_new, stored),
    )
