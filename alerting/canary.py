"""The canary through the real path (issue 20 item 1): alerting records each canary's arrival
and raises **监测链路中断** when three in a row are missed.

``hazmon canary`` (ingest/canary.py) publishes one reading per canary device (``devices.is_canary``,
one per adapter family the district uses) every 10 s through the real MQTT broker, in that
family's own vendor format; the bridge stamps it (its receipt = ``bridged_at``, and the bridge
instance), the detector announces it on the events topic after its database write
(detectors/canary.py, kind ``system.canary``: never stored, detected or counted as business
data), and here, in the consume loop, :func:`take` takes those announcements out of the batch
before the alarms are placed: each becomes its row of ``canary_state`` (the stamps of every hop),
the bridge that carried it gets its ``stage_heartbeats`` row (a bridge has no database), and
``hazmon_canary_last_arrival_timestamp_seconds{family}`` is set (Prometheus's HazmonCanaryStale).

Every ``CHECK_S`` :func:`check` looks at the canaries' ages and the stages' heartbeats:

* a canary not arrived for ``MISSED`` × the publisher's interval (30 s) raises 监测链路中断 for
  its family (red; data/routes.yaml sends it to the canary site's contacts — the duty operator
  and the duty leader — by SMS and at once a voice call), naming the hop where it stopped
  (:func:`hop_of`: the publisher's heartbeat, its MQTT publish, the detector's heartbeat and its
  restarts, else the bridges/Kafka between them); the other canaries of the site about to miss
  their third go with it, so one outage is one message (…等N处);
* once every broken canary of a site flows again, their alarms resolve together: one 恢复;
* canaries flowing but one bridge of several no longer carrying any for ``BRIDGE_STALE_S``:
  **监测链路降级** (yellow, a warning on the duty desk's console, not a page), resolved when it
  carries canaries again or its ``stage_heartbeats`` row is deleted (a bridge taken out of
  service).

The alarms are ordinary events through :meth:`~alerting.service.AlertingService.handle_events`
(domain ``system``), so routes, silences, grouping and the outbox apply; their ids are digests of
the device and the time it stopped, so a restarted alerting raises nothing twice. The same pass
writes alerting's own heartbeat (hazmon/heartbeat.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge, Histogram

from alerting import metrics
from alerting.store import canary as store
from alerting.templates.words import CST
from hazmon import heartbeat
from hazmon.contracts import Event, EventState, Severity
from hazmon.logs import kv

if TYPE_CHECKING:
    from alerting.service import AlertingService

__all__ = ["ANNOUNCE", "KIND_BROKEN", "KIND_DEGRADED", "Hop", "hop_of", "events_due", "take", "check", "run",
           "LAST_ARRIVAL", "LATENCY", "observe_latency"]

log = logging.getLogger(__name__)

#: the detector's announcement of a canary (detectors/canary.py)
ANNOUNCE = "system.canary"
KIND_BROKEN = "system.canary_broken"
KIND_DEGRADED = "system.canary_degraded"
#: canaries missed in a row before 监测链路中断
MISSED = 3
#: the publisher's interval when its heartbeat does not say (``canary.every_s``)
EVERY_S = 10.0
#: how often the canaries are judged
CHECK_S = 5.0
#: a stage's heartbeat older than this has stopped (3 beats of hazmon.heartbeat.EVERY_S)
BEAT_STALE_S = 15.0
#: this many starts of the detector within LOOP_WINDOW_S: it is crash-looping
LOOP_STARTS, LOOP_WINDOW_S = 2, 180.0
#: a bridge that carried no canary for this long while others do: degraded
BRIDGE_STALE_S = 60.0
#: the site of an alarm that is about no registered site (as alerting.am_receiver's)
SITE = "区应急指挥中心监测系统"

LAST_ARRIVAL = Gauge("hazmon_canary_last_arrival_timestamp_seconds",
                     "Unix time the newest canary of each adapter family reached alerting", ["family"])
#: the real path's latency, from the canary's publication (its own clock, the publisher's host) to
#: the bridge's receipt, the detector's event (system.canary) and alerting's receipt of it
LATENCY = Histogram("hazmon_canary_latency_seconds",
                    "A canary's time from publication to the bridge, the detector's event and alerting",
                    ["hop"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))

#: how an adapter family is named in a text: 燃气（JSON）
FORMAT_ZH = {"gasjson": "JSON", "elevator_json": "JSON", "firejson": "JSON", "hazmon_json": "通用JSON",
             "senml": "SenML", "gbt26875": "GB/T 26875"}


@dataclass(frozen=True, slots=True)
class Hop:
    """Where the canary stopped: ``hop`` as ``canary_state.broken_hop`` (canary, mqtt, bridge,
    detect) and ``words`` as the text says it."""

    hop: str
    words: str


def _hms(ts: datetime) -> str:
    return ts.astimezone(CST).strftime("%H:%M:%S")


def _fresh(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(float(r["age_s"]) <= BEAT_STALE_S for r in rows)


def hop_of(beats: Sequence[Mapping[str, Any]]) -> Hop:
    """Pure: the hop a canary that stopped arriving stopped at, from the stages' heartbeats —
    the publisher (``canary``) silent or failing to publish on MQTT, else the detector (``detect``)
    silent or restarting again and again, else what lies between (the bridges, Kafka)."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for b in beats:
        by.setdefault(str(b["stage"]), []).append(b)
    pub = by.get("canary", [])
    if not _fresh(pub):
        last = max((b["beat_at"] for b in pub), default=None)
        return Hop("canary", f"金丝雀发布程序（心跳{_hms(last)}停止）" if last else "金丝雀发布程序（未运行）")
    newest = max(pub, key=lambda b: b["beat_at"])
    if newest["detail"].get("mqtt_ok") is False:
        return Hop("mqtt", "MQTT消息服务器（无法发布）")
    det = by.get("detect", [])
    starts = [b for b in det if float(b["started_s"]) <= LOOP_WINDOW_S]
    if len(starts) >= LOOP_STARTS:
        return Hop("detect", f"检测服务（反复重启，{LOOP_WINDOW_S / 60:.0f}分钟内启动{len(starts)}次）")
    if not _fresh(det):
        last = max((b["beat_at"] for b in det), default=None)
        return Hop("detect", f"检测服务（心跳{_hms(last)}停止）" if last else "检测服务（无心跳）")
    return Hop("bridge", "接入网关或Kafka")


def _stale_after(beats: Sequence[Mapping[str, Any]]) -> float:
    every = [float(b["detail"].get("every_s") or 0) for b in beats if b["stage"] == "canary"]
    return MISSED * (max(every) if every and max(every) > 0 else EVERY_S)


def _eid(prefix: str, key: str, since: datetime) -> str:
    return prefix + hashlib.sha256(f"{key}|{since.astimezone(UTC).isoformat()}".encode()).hexdigest()[:32]


def _broken(c: Mapping[str, Any], since: datetime, hop: Hop, label: str, now: datetime) -> Event:
    sentence = f"{label}金丝雀数据 {since.astimezone(CST):%H:%M} 起未到达，中断于{hop.words}"
    return Event(id=_eid("canary-broken-", c["device_id"], since), kind=KIND_BROKEN, domain="system",
                 severity=Severity.RED, state=EventState.FIRING, device_id=c["device_id"], site_id=c["site_id"],
                 component=hop.words.split("（")[0], starts_at=since, detected_at=now, received_at=now,
                 summary=f"监测链路中断，中断于{hop.words}",
                 labels={"alertname": "HazmonCanaryBroken", "source": "canary", "family": c["family"],
                         "hop": hop.hop, "detail": f"监测链路中断：{sentence}"})


def _resolved(alert: Mapping[str, Any], kind: str, site: str, now: datetime, summary: str) -> Event:
    labels = {k: str(v) for k, v in (alert.get("labels") or {}).items()
              if k in ("alertname", "source", "family", "hop", "bridge")}
    return Event(id=alert["id"], kind=kind, domain="system",
                 severity=Severity.RED if kind == KIND_BROKEN else Severity.YELLOW, state=EventState.RESOLVED,
                 device_id=alert["device_id"], site_id=site, starts_at=alert["starts_at"], ends_at=now,
                 detected_at=now, received_at=now, summary=summary, labels=labels)


def events_due(canaries: Sequence[Mapping[str, Any]], beats: Sequence[Mapping[str, Any]],
               open_alerts: Sequence[Mapping[str, Any]], now: datetime, labels: Mapping[str, str]
               ) -> list[tuple[Event, str]]:
    """Pure: the events one pass raises or resolves, each with what it does to its canary's row
    (``broken:<hop>`` or ``clear``; '' for the bridges' warnings). ``labels``: device → how its
    family is named (燃气（JSON）)."""
    stale_after = _stale_after(beats)
    out: list[tuple[Event, str]] = []
    open_broken = {a["device_id"]: a for a in open_alerts if a["kind"] == KIND_BROKEN}
    by_site: dict[str, list[Mapping[str, Any]]] = {}
    for c in canaries:
        by_site.setdefault(str(c["site_id"]), []).append(c)
    hop: Hop | None = None
    for site, rows in by_site.items():
        stale = [c for c in rows if float(c["age_s"]) > stale_after]
        if stale:  # raise; the site's others about to miss their third go with them (one message)
            hop = hop or hop_of(beats)
            for c in rows:
                if c["device_id"] in open_broken or float(c["age_s"]) <= stale_after - CHECK_S:
                    continue
                last = c["arrived_at"] and (c["published_at"] or c["arrived_at"])
                since = (last + timedelta(seconds=stale_after / MISSED)) if last else \
                    now - timedelta(seconds=float(c["age_s"]))
                out.append((_broken(c, since, hop, labels.get(c["device_id"], c["family"]), now), f"broken:{hop.hop}"))
        else:  # all flowing again: every open alarm of the site resolves together (one 恢复)
            for c in rows:
                alert = open_broken.pop(c["device_id"], None)
                if alert is not None:
                    out.append((_resolved(alert, KIND_BROKEN, site, now, "监测链路已恢复"), "clear"))
            continue
        for c in rows:
            open_broken.pop(c["device_id"], None)
    for alert in open_broken.values():  # no longer a canary: taken out of service
        out.append((_resolved(alert, KIND_BROKEN, SITE, now, "监测链路探针已停用"), ""))
    out += _bridges(beats, open_alerts, now, flowing=not any(float(c["age_s"]) > stale_after for c in canaries))
    return out


def _bridges(beats: Sequence[Mapping[str, Any]], open_alerts: Sequence[Mapping[str, Any]], now: datetime, *,
             flowing: bool) -> list[tuple[Event, str]]:
    rows = {str(b["instance"]): b for b in beats if b["stage"] == "bridge" and b["detail"].get("via") == "canary"}
    open_deg = {a["labels"].get("bridge", ""): a for a in open_alerts if a["kind"] == KIND_DEGRADED}
    live = [i for i, b in rows.items() if float(b["age_s"]) <= BRIDGE_STALE_S]
    out: list[tuple[Event, str]] = []
    for inst, b in rows.items():
        silent = float(b["age_s"]) > BRIDGE_STALE_S
        alert = open_deg.pop(inst, None)
        if silent and alert is None and flowing and live:
            since = b["beat_at"]
            out.append((Event(
                id=_eid("canary-degraded-", inst, since), kind=KIND_DEGRADED, domain="system", severity=Severity.YELLOW,
                state=EventState.FIRING, device_id="bridge", site_id=SITE, component=f"接入网关{inst}",
                starts_at=since, detected_at=now, received_at=now,
                summary=f"监测链路降级：接入网关{inst}自{_hms(since)}起未转发数据，其余{len(live)}个接入网关正常",
                labels={"alertname": "HazmonCanaryDegraded", "source": "canary", "bridge": inst}), ""))
        elif not silent and alert is not None:
            out.append((_resolved(alert, KIND_DEGRADED, SITE, now, f"监测链路降级：接入网关{inst}已恢复"), ""))
    for inst, alert in open_deg.items():  # its row deleted: taken out of service
        out.append((_resolved(alert, KIND_DEGRADED, SITE, now, f"监测链路降级：接入网关{inst}已停用"), ""))
    return out


def _family_label(svc: AlertingService, device_id: str, family: str) -> str:
    reg = svc.registry
    dev = reg.devices.get(device_id)
    dom = reg.domains.get(dev.domain) if dev else None
    name = (dom.name_zh if dom else "").split("（")[0]  # 电梯（特种设备） → 电梯
    return f"{name}（{FORMAT_ZH.get(family, family)}）"


async def take(svc: AlertingService, events: list[Event], sources: list[tuple[str, bytes]]
               ) -> tuple[list[Event], list[tuple[str, bytes]]]:
    """The consume loop's hook: record the canaries' announcements of a batch, hand back the rest."""
    if not any(ev.kind == ANNOUNCE for ev in events):
        return events, sources
    keep = [(ev, src) for ev, src in zip(events, sources, strict=True) if ev.kind != ANNOUNCE]
    await record(svc, [ev for ev in events if ev.kind == ANNOUNCE], svc.clock.now())
    return [e for e, _ in keep], [s for _, s in keep]


def observe_latency(ev: Event, now: datetime) -> None:
    """One arrival's publish → bridge / → event / → alerting into :data:`LATENCY` (a hop whose
    clock reads before the publication, another host's skew, counts as 0)."""
    published = ev.starts_at
    for hop, at in (("bridge", ev.received_at), ("event", ev.detected_at), ("alerting", now)):
        if at is not None:
            LATENCY.labels(hop).observe(max((at - published).total_seconds(), 0.0))


async def record(svc: AlertingService, arrivals: Sequence[Event], now: datetime) -> None:
    rows: list[tuple[Any, ...]] = []
    bridges: dict[str, datetime] = {}
    for ev in arrivals:
        bridged = ev.received_at or ev.detected_at
        bridge = ev.labels.get("bridge", "")
        try:
            seq = int(ev.labels.get("seq", "0"))
        except ValueError:
            seq = 0
        rows.append((ev.device_id, seq, ev.starts_at, bridged, bridge, ev.detected_at, now))
        if bridge:
            bridges[bridge] = max(bridges.get(bridge, bridged), bridged)
    async with svc.pool.acquire() as conn:
        await store.sync_devices(conn)
        await store.record_arrivals(conn, rows, bridges)
    for ev in arrivals:
        dev = svc.registry.devices.get(ev.device_id)
        vendor = svc.registry.vendors.get(dev.vendor_id) if dev else None
        LAST_ARRIVAL.labels(vendor.adapter if vendor else ev.labels.get("vendor", "")).set(now.timestamp())
        observe_latency(ev, now)
    log.debug("canaries arrived %s", kv(n=len(rows), bridges=",".join(sorted(bridges))))


async def check(svc: AlertingService, now: datetime) -> list[str]:
    """One look at the canaries and the heartbeats; what each raised or resolved event did."""
    async with svc.pool.acquire() as conn:
        await store.sync_devices(conn)
        canaries = await store.state(conn)
        beats = await store.beats(conn)
        open_alerts = await store.open_alerts(conn, [KIND_BROKEN, KIND_DEGRADED])
    for c in canaries:
        if c["arrived_at"] is not None:
            LAST_ARRIVAL.labels(c["family"]).set(c["arrived_at"].timestamp())
    labels = {c["device_id"]: _family_label(svc, c["device_id"], c["family"]) for c in canaries}
    due = events_due(canaries, beats, open_alerts, now, labels)
    if not due:
        return []
    for ev, _mark in due:
        log.warning("canary %s %s", ev.kind, kv(state=ev.state.value, device=ev.device_id, alert=ev.id,
                                                 detail=ev.labels.get("detail", ev.summary)))
    done = await svc.handle_events([ev for ev, _ in due])
    async with svc.pool.acquire() as conn:
        for ev, mark in due:
            if mark.startswith("broken:"):
                await store.set_broken(conn, ev.device_id, ev.starts_at, mark.removeprefix("broken:"))
            elif mark == "clear":
                await store.clear_broken(conn, ev.device_id)
    return done


async def run(svc: AlertingService, stop: asyncio.Event, every_s: float = CHECK_S) -> None:
    """:func:`check` and alerting's heartbeat every ``every_s`` until ``stop`` (a loop of
    :meth:`AlertingService.run`)."""
    instance, started = heartbeat.default_instance(), datetime.now(UTC)
    while not stop.is_set():
        try:
            async with svc.pool.acquire() as conn:
                await heartbeat.beat(conn, "alerting", instance, started, {"check_s": every_s})
            await check(svc, svc.clock.now())
        except Exception:  # noqa: BLE001 - the database may be down: the watchdog pages for that
            metrics.ERRORS.labels("canary").inc()
            log.exception("canary pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
