"""The Alertmanager-compatible endpoint: Prometheus's own alerts (``POST /api/v2/alerts``) into
alerting's normal path, so the operators' routes, silences, grouping and SMS apply to them.

Prometheus posts a JSON list of ``{labels, annotations, startsAt, endsAt, generatorURL}``
(Alertmanager's API v2 ``PostableAlerts``), one batch of up to 64 alerts per request, every
evaluation while an alert fires and for 15 min after it resolved. Each alert becomes an
:class:`~hazmon.contracts.Event` published on the ``events`` topic, where the consume loop takes
it like a detector's (dead letters, replays, routing, 值班员 fallback), by this convention:

* ``domain`` ``system``, ``device_id`` ``prometheus``, ``site_id`` the alert's ``site_id`` label
  or ``区应急指挥中心监测系统`` (no site of the registry: nobody but the centre's 值班员 is
  responsible, so the duty operator receives it); the default route groups by ``site_id, panel,
  kind``, so a flood of one rule (every bridge down) is one group, one SMS;
* ``component`` the stage its ``job`` label names, in Chinese (:data:`STAGE_ZH`: 检测服务 …);
* ``kind`` ``system.<alertname in snake case>`` (``HazmonStageDown`` → ``system.hazmon_stage_down``);
* ``severity`` the alert's ``severity`` label in alerting's four colours (red/orange/yellow/blue;
  ``critical``/``warning``/``info`` are taken as red/yellow/blue, anything else is yellow);
* ``summary`` the ``summary`` annotation (``description`` appended), in Chinese in our rules;
* the alert's labels (alertname, job, instance …) stay labels, for matchers and silences;
* ``id``: a digest of the label set and ``startsAt`` — a resent alert is the same alert
  (``replay``: nothing is sent twice); ``endsAt`` in the past means resolved (恢复).

Authentication: ``Authorization: Bearer <inbound.alertmanager_token>`` (Prometheus's
``alertmanagers[].authorization.credentials``), compared in constant time. Replays: a request
carrying an alert that ended more than :data:`STALE_S` ago (longer than Prometheus keeps resending
a resolved alert) or that starts more than :data:`SKEW_S` in the future is refused; within
that window a replayed request changes nothing (same ids). Every refusal is audited
(``inbound_audit``, channel ``alertmanager``) and answered in Chinese.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from alerting.errors import AlertingError
from hazmon.contracts import Event, EventState, Severity
from hazmon.contracts._fields import text_problem

__all__ = ["AM_CHANNEL", "AM_PROVIDER", "SYSTEM_DOMAIN", "SYSTEM_DEVICE", "SYSTEM_SITE", "STAGE_ZH",
           "STALE_S", "SKEW_S", "AlertsRefused", "bearer_problem", "parse_alerts", "to_event", "alert_id"]

AM_CHANNEL = "alertmanager"
AM_PROVIDER = "prometheus"
SYSTEM_DOMAIN = "system"
SYSTEM_DEVICE = "prometheus"
SYSTEM_SITE = "区应急指挥中心监测系统"
#: the stage a scrape job is, as the SMS names it (``component``)
STAGE_ZH = {"hazmon-bridge": "接入网关", "hazmon-detect": "检测服务", "hazmon-alerting": "告警服务",
            "hazmon-console": "值班台", "hazmon-watchdog": "看门狗"}
#: Prometheus resends a resolved alert for 15 min; an alert that ended longer ago is a replay
STALE_S = 20 * 60
#: clock skew allowed for ``startsAt`` in the future
SKEW_S = 5 * 60
_COLOURS = frozenset(s.value for s in Severity)
_ALIASES = {"critical": Severity.RED, "warning": Severity.YELLOW, "info": Severity.BLUE}
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# RFC 3339 with up to nanoseconds (Go); Python takes microseconds
_FRACTION = re.compile(r"(\.\d{6})\d+")


class AlertsRefused(AlertingError):
    """A request of Prometheus alerts that is not taken: its audit outcome, HTTP status and
    the Chinese message it is answered with."""

    def __init__(self, outcome: str, status: int, message: str) -> None:
        super().__init__(message)
        self.outcome, self.status, self.message = outcome, status, message


def bearer_problem(header: str, token: str) -> str:
    """'' when ``header`` is ``Bearer <token>``, else what is wrong (in Chinese)."""
    scheme, _, got = header.strip().partition(" ")
    if not header:
        return "缺少 Authorization 头（Bearer 令牌）"
    if scheme.lower() != "bearer" or not got.strip():
        return "Authorization 头不是 Bearer 令牌"
    ok = hmac.compare_digest(got.strip().encode(), token.encode())
    return "" if ok else "Bearer 令牌无效"


def _time(value: Any, field: str) -> datetime | None:
    """An RFC 3339 time of Prometheus; None for absent or Go's zero time."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise AlertsRefused("bad_request", 400, f"{field} 不是时间字符串")
    try:
        at = datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        raise AlertsRefused("bad_request", 400, f"{field} 不是 RFC 3339 时间：{value[:40]!r}") from None
    if at.tzinfo is None:
        raise AlertsRefused("bad_request", 400, f"{field} 缺少时区：{value[:40]!r}")
    return None if at.year <= 1 else at.astimezone(UTC)


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise AlertsRefused("bad_request", 400, "labels 不是对象")
    out = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not _LABEL_NAME.match(k):
            raise AlertsRefused("bad_request", 400, f"标签名无效：{str(k)[:40]!r}")
        value = str(v)[:500]
        if text_problem(value) is not None:
            raise AlertsRefused("bad_request", 400, f"标签 {k} 的值含控制字符")
        out[k] = value
    return out


def alert_id(labels: Mapping[str, str], starts_at: datetime) -> str:
    """One alert of Prometheus (its label set) in one episode (its ``startsAt``)."""
    key = json.dumps(sorted(labels.items()), ensure_ascii=False) + "|" + starts_at.isoformat()
    return hashlib.sha256(f"prometheus|{key}".encode()).hexdigest()[:32]


def to_event(item: Any, *, now: datetime) -> Event:
    """One Prometheus alert as an event (the convention in the module's docstring)."""
    if not isinstance(item, Mapping):
        raise AlertsRefused("bad_request", 400, "告警不是对象")
    labels = _labels(item.get("labels", {}))
    name = labels.get("alertname", "")
    kind = _snake(name)[:57]
    if not kind:
        raise AlertsRefused("bad_request", 400, "告警缺少 alertname 标签")
    annotations = item.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise AlertsRefused("bad_request", 400, "annotations 不是对象")
    starts_at = _time(item.get("startsAt"), "startsAt") or now
    ends_at = _time(item.get("endsAt"), "endsAt")
    if starts_at > now + timedelta(seconds=SKEW_S):
        raise AlertsRefused("bad_request", 400, f"告警 {name} 的 startsAt 在未来：{starts_at.isoformat()}")
    if ends_at is not None and ends_at < now - timedelta(seconds=STALE_S):
        raise AlertsRefused("replayed", 409, f"告警 {name} 已于 {ends_at.isoformat()} 结束，超过 "
                                             f"{STALE_S // 60} 分钟：疑为重放，拒收")
    resolved = ends_at is not None and ends_at <= now
    job = labels.get("job", "")
    sev = labels.get("severity", "").lower()
    severity = Severity(sev) if sev in _COLOURS else _ALIASES.get(sev, Severity.YELLOW)
    summary = str(annotations.get("summary", "") or name)
    desc = str(annotations.get("description", "") or "")
    text = f"{summary}：{desc}" if desc else summary
    try:
        return Event(
            id=alert_id(labels, starts_at), kind=f"system.{kind}", domain=SYSTEM_DOMAIN, severity=severity,
            state=EventState.RESOLVED if resolved else EventState.FIRING, device_id=SYSTEM_DEVICE,
            site_id=labels.get("site_id", "") or SYSTEM_SITE, component=STAGE_ZH.get(job, job)[:64],
            starts_at=starts_at, ends_at=max(ends_at, starts_at) if resolved and ends_at else None,
            detected_at=now, summary=text[:500], labels={**labels, "source": "prometheus"})
    except ValidationError as exc:
        why = exc.errors()[0]["msg"]
        raise AlertsRefused("bad_request", 400, f"告警 {name} 无法转换为事件：{why}") from None


def parse_alerts(raw: bytes, *, now: datetime, max_items: int) -> list[Event]:
    """A request body of Prometheus alerts as events, or :class:`AlertsRefused` (the whole
    request: Prometheus sends it again, or the refusal is in its log and our audit)."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise AlertsRefused("bad_request", 400, "请求体不是 JSON") from None
    if not isinstance(data, list):
        raise AlertsRefused("bad_request", 400, "请求体应为告警数组（Alertmanager API v2）")
    if len(data) > max_items:
        raise AlertsRefused("too_large", 413, f"一次最多 {max_items} 条告警，收到 {len(data)} 条")
    return [to_event(d, now=now) for d in data]
