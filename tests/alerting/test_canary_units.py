"""The canary's decisions (alerting/canary.py), pure: which hop a stopped canary names from the
stages' heartbeats, when 监测链路中断 is raised and resolved, and when a silent bridge is only
监测链路降级. The same on the real pipeline: tests/e2e/test_canary_faults.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerting.canary import KIND_BROKEN, KIND_DEGRADED, events_due, hop_of
from hazmon.contracts import EventState, Severity

pytestmark = pytest.mark.watchdog

NOW = datetime(2026, 12, 7, 2, 32, 30, tzinfo=UTC)  # 10:32:30 in Beijing


def beat(stage: str, age_s: float, *, started_s: float = 3600.0, instance: str = "h:1", **detail: Any
         ) -> dict[str, Any]:
    return {"stage": stage, "instance": instance, "age_s": age_s, "started_s": started_s,
            "beat_at": NOW - timedelta(seconds=age_s), "started_at": NOW - timedelta(seconds=started_s),
            "detail": detail}


HEALTHY = [beat("canary", 2, mqtt_ok=True, every_s=10), beat("detect", 2), beat("alerting", 1)]


def canary(device: str, age_s: float, *, site: str = "S-C", family: str = "gasjson") -> dict[str, Any]:
    at = NOW - timedelta(seconds=age_s)
    return {"device_id": device, "family": family, "site_id": site, "age_s": age_s, "arrived_at": at,
            "published_at": at - timedelta(seconds=0.5), "broken_since": None, "broken_hop": ""}


def test_the_hop_is_named_from_the_heartbeats() -> None:
    assert hop_of([beat("detect", 2)]).words == "金丝雀发布程序（未运行）"
    assert hop_of([beat("canary", 40, every_s=10), beat("detect", 2)]).words == "金丝雀发布程序（心跳10:31:50停止）"
    assert hop_of([beat("canary", 2, mqtt_ok=False), beat("detect", 2)]).hop == "mqtt"
    stopped = hop_of([beat("canary", 2, mqtt_ok=True), beat("detect", 32)])
    assert (stopped.hop, stopped.words) == ("detect", "检测服务（心跳10:31:58停止）")
    looping = [beat("canary", 2, mqtt_ok=True), beat("detect", 20, started_s=25, instance="h:2"),
               beat("detect", 1, started_s=3, instance="h:3")]
    assert hop_of(looping).words == "检测服务（反复重启，3分钟内启动2次）"
    assert hop_of(HEALTHY).hop == "bridge"


def test_three_missed_canaries_raise_one_alarm_per_family_naming_the_hop() -> None:
    beats = [beat("canary", 2, mqtt_ok=True, every_s=10), beat("detect", 33)]
    assert events_due([canary("cn-a", 29.0)], beats, [], NOW, {}) == []  # two missed: not yet
    due = events_due([canary("cn-a", 31.0), canary("cn-b", 27.0), canary("cn-c", 5.0)], beats, [], NOW,
                     {"cn-a": "燃气（JSON）"})
    # cn-b misses its third before the next look: it goes with cn-a (one message); cn-c flows
    assert [(e.device_id, e.kind, e.state, mark) for e, mark in due] == [
        ("cn-a", KIND_BROKEN, EventState.FIRING, "broken:detect"), ("cn-b", KIND_BROKEN, EventState.FIRING, "broken:detect")]
    ev = due[0][0]
    assert ev.severity is Severity.RED and ev.domain == "system" and ev.site_id == "S-C"
    assert ev.summary == "监测链路中断，中断于检测服务（心跳10:31:57停止）"
    assert ev.labels["detail"] == "监测链路中断：燃气（JSON）金丝雀数据 10:32 起未到达，中断于检测服务（心跳10:31:57停止）"
    assert len(ev.summary) <= 35  # one SMS template variable (the providers' cap)


def test_the_alarms_of_a_site_resolve_together_once_every_canary_flows() -> None:
    open_ = [{"id": "alert-a1", "kind": KIND_BROKEN, "device_id": "cn-a", "starts_at": NOW, "labels": {}},
             {"id": "alert-b1", "kind": KIND_BROKEN, "device_id": "cn-b", "starts_at": NOW, "labels": {}}]
    # cn-a flows again, cn-b not yet: nothing resolves (one 恢复, not two)
    assert events_due([canary("cn-a", 2), canary("cn-b", 40)], HEALTHY, open_, NOW, {}) == []
    due = events_due([canary("cn-a", 2), canary("cn-b", 3)], HEALTHY, open_, NOW, {})
    assert [(e.id, e.state, mark) for e, mark in due] == [("alert-a1", EventState.RESOLVED, "clear"),
                                                          ("alert-b1", EventState.RESOLVED, "clear")]
    # a canary taken out of the registry: its alarm resolves
    gone = events_due([], HEALTHY, open_[:1], NOW, {})
    assert [(e.id, e.state, e.summary) for e, _ in gone] == [("alert-a1", EventState.RESOLVED, "监测链路探针已停用")]


def test_one_silent_bridge_of_two_is_degraded_not_broken() -> None:
    bridges = [beat("bridge", 70, instance="1", via="canary"), beat("bridge", 3, instance="0", via="canary")]
    due = events_due([canary("cn-a", 3)], HEALTHY + bridges, [], NOW, {})
    ((ev, mark),) = due
    assert (ev.kind, ev.severity, ev.state, mark) == (KIND_DEGRADED, Severity.YELLOW, EventState.FIRING, "")
    assert ev.labels["bridge"] == "1" and "接入网关1" in ev.summary and "其余1个接入网关正常" in ev.summary
    # every bridge silent and the canaries stopped: that is 监测链路中断, not a degraded bridge
    silent = [beat("bridge", 70, instance="1", via="canary"), beat("bridge", 70, instance="0", via="canary")]
    assert all(e.kind == KIND_BROKEN for e, _ in events_due([canary("cn-a", 40)], HEALTHY + silent, [], NOW, {}))
    # it carries canaries again: resolved
    open_ = [{"id": "alert-d1", "kind": KIND_DEGRADED, "device_id": "bridge", "starts_at": NOW, "labels": {"bridge": "1"}}]
    back = [beat("bridge", 2, instance="1", via="canary"), beat("bridge", 3, instance="0", via="canary")]
    ((ev, _),) = events_due([canary("cn-a", 3)], HEALTHY + back, open_, NOW, {})
    assert (ev.id, ev.state) == ("alert-d1", EventState.RESOLVED)


def test_a_canary_that_never_arrived_is_waited_for_since_its_row_was_made() -> None:
    never = {**canary("cn-a", 40.0), "arrived_at": None, "published_at": None}
    ((ev, mark),) = events_due([never], [beat("detect", 2)], [], NOW, {})
    assert ev.starts_at == NOW - timedelta(seconds=40) and mark == "broken:canary"
    assert ev.summary == "监测链路中断，中断于金丝雀发布程序（未运行）"


def test_an_arrival_observes_its_publish_to_bridge_event_and_alerting_latency() -> None:
    """hazmon_canary_latency_seconds{hop}: the dashboard's publish → event latency on the real path;
    a hop stamped before the publication (another host's clock) counts as 0, not negative."""
    from prometheus_client import REGISTRY

    from alerting.canary import ANNOUNCE, observe_latency
    from hazmon.contracts import Event

    def sample(hop: str, what: str) -> float:
        return REGISTRY.get_sample_value(f"hazmon_canary_latency_seconds_{what}", {"hop": hop}) or 0.0

    published = NOW - timedelta(seconds=2)
    ev = Event(id="canary-1-arrival", kind=ANNOUNCE, domain="system", severity=Severity.BLUE, state=EventState.RESOLVED,
               device_id="cn-gasjson", site_id="S-C", starts_at=published, ends_at=NOW,
               detected_at=NOW - timedelta(seconds=0.5), received_at=published - timedelta(seconds=0.1),
               summary="监测链路探针")
    before = {(hop, what): sample(hop, what) for hop in ("bridge", "event", "alerting") for what in ("count", "sum")}
    observe_latency(ev, NOW)
    got = {k: round(sample(*k) - v, 6) for k, v in before.items()}
    assert got == {("bridge", "count"): 1, ("bridge", "sum"): 0.0, ("event", "count"): 1, ("event", "sum"): 1.5,
                   ("alerting", "count"): 1, ("alerting", "sum"): 2.0}
