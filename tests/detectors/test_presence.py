"""Presence (在线全时段) judged by the detector: the pure rules with a controllable clock.

Every check is driven by an explicit clock (``presence_clock``), as the service's timer does
with the per-partition clock; no wall time is read here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.config import DetectorConfig
from detectors.engine import Engine, Message
from detectors.offline import IngestWatermarks
from detectors.state import DeviceMeta
from hazmon.contracts import DeviceEvent, DeviceStatus, Event, ReadingBatch, Sample

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
INTERVAL = 60  # s; k = 3 by default → silent after 180 s


def _meta(device_id: str) -> DeviceMeta | None:
    if device_id.startswith("unregistered"):
        return None
    return DeviceMeta(site_id=f"site-{device_id}", domain="gas", model="M", expected_interval_s=INTERVAL)


def engine(config: DetectorConfig | None = None) -> Engine:
    return Engine(config or DetectorConfig(), _meta, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def reading(device: str, received_s: float, ts_s: float | None = None) -> Message:
    rb = ReadingBatch(device_id=device, site_id=f"site-{device}", domain="gas", vendor="acme", received_at=at(received_s),
                      source="t", samples=(Sample(metric="gas_lel", value=1.0, unit="%LEL",
                                                  ts=at(received_s if ts_s is None else ts_s)),))
    return Message(rb.model_dump_json().encode(), f"r:{device}:{received_s}")


def status(device: str, received_s: float, state: str | None, reason: str = "reported", **kw: object) -> Message:
    st = DeviceStatus(device_id=device, site_id=f"site-{device}", vendor="acme", state=state, reason=reason,  # type: ignore[arg-type]
                      ts=at(received_s), received_at=at(received_s), **kw)  # type: ignore[arg-type]
    return Message(st.model_dump_json().encode(), f"s:{device}:{received_s}")


def device_event(device: str, received_s: float) -> Message:
    ev = DeviceEvent(device_id=device, site_id=f"site-{device}", domain="gas", vendor="acme", code="sensor_fault",
                     active=False, ts=at(received_s), received_at=at(received_s))
    return Message(ev.model_dump_json().encode(), f"e:{device}:{received_s}")


NEVER = float("-inf")


def check(e: Engine, now_s: float, owned: set[str] | None = None, quiet_from_s: float | None = None) -> list[Event]:
    """The service's timer: the silence check at ``now`` (None for devices not owned here)."""
    clock = T0.timestamp() + now_s
    quiet = NEVER if quiet_from_s is None else T0.timestamp() + quiet_from_s
    out = e.process(presence_clock=lambda d: (clock, quiet) if owned is None or d in owned else None, presence_upper=clock)
    return out.events


def feed(e: Engine, readings=(), statuses=(), events=()) -> list[Event]:  # type: ignore[no-untyped-def]
    return e.process(list(readings), list(statuses), list(events)).events


def offline_events(events: list[Event]) -> list[tuple[str, str, str, datetime, datetime | None]]:
    return [(ev.device_id, ev.state.value, ev.id, ev.starts_at, ev.ends_at) for ev in events if ev.kind == "device.offline"]


def test_steady_device_is_never_judged_offline() -> None:
    e = engine()
    got: list[Event] = []
    for i in range(60):  # an hour of reports every 60 s, checks every 20 s in between
        got += feed(e, [reading("gas-1", 60 * i)])
        for j in range(3):
            got += check(e, 60 * i + 20 * j + 19)
    assert offline_events(got) == []
    assert e.presence.state("gas-1") == "online"


def test_silence_gives_one_episode_and_one_resolution() -> None:
    e = engine()
    feed(e, [reading("gas-2", 0), reading("gas-2", 60)])
    assert check(e, 60 + 179.9) == []  # k × interval not yet passed
    fired = offline_events(check(e, 60 + 181))
    assert [(d, s, start) for d, s, _id, start, _ in fired] == [("gas-2", "firing", at(60 + 180))]  # when it became overdue
    for s in range(250, 3000, 7):  # checked again and again during the outage
        assert check(e, s) == []
    resolved = offline_events(feed(e, [reading("gas-2", 3000)]))
    assert [(d, s, i, end) for d, s, i, _start, end in resolved] == [("gas-2", "resolved", fired[0][2], at(3000))]
    assert e.presence.state("gas-2") == "online"
    assert check(e, 3100) == []


def test_last_will_is_offline_at_once_and_data_after_it_resolves() -> None:
    e = engine()
    feed(e, [reading("gas-3", 0)])
    fired = offline_events(feed(e, statuses=[status("gas-3", 30, "offline", "lwt")]))
    assert [(d, s, start) for d, s, _i, start, _ in fired] == [("gas-3", "firing", at(30))]
    assert feed(e, statuses=[status("gas-3", 31, "offline", "lwt")]) == []  # redelivered: nothing
    assert check(e, 10_000) == []  # silence does not open a second episode
    # a reading received *before* the Last Will but consumed after it does not end the outage
    assert feed(e, [reading("gas-3", 29)]) == []
    resolved = offline_events(feed(e, [reading("gas-3", 400)]))
    assert [(s, i, end) for _d, s, i, _st, end in resolved] == [("resolved", fired[0][2], at(400))]


def test_last_will_superseded_by_a_later_reconnection_is_ignored() -> None:
    e = engine()
    feed(e, [reading("gas-4", 100)])  # consumed first, received after the Last Will
    assert feed(e, statuses=[status("gas-4", 90, "offline", "lwt")]) == []
    assert e.presence.state("gas-4") == "online"


def test_heartbeat_only_device_stays_online() -> None:
    e = engine()
    got: list[Event] = []
    for i in range(30):
        got += feed(e, statuses=[status("gas-5", 60 * i, "online", "heartbeat")])
        got += check(e, 60 * i + 59)
    assert offline_events(got) == [] and e.presence.state("gas-5") == "online"


def test_device_events_and_health_reports_count_as_heard() -> None:
    e = engine()
    got: list[Event] = []
    for i in range(20):
        msg = [device_event("gas-6", 60 * i)] if i % 2 else []
        st = [] if i % 2 else [status("gas-6", 60 * i, None, battery_pct=50)]
        got += feed(e, statuses=st, events=msg)
        got += check(e, 60 * i + 59)
    assert offline_events(got) == []


def test_explicit_offline_report_and_bridge_silence_is_ignored_by_default() -> None:
    e = engine()
    feed(e, [reading("gas-7", 0), reading("gas-8", 0)])
    assert feed(e, statuses=[status("gas-7", 50, "offline", "silence")]) == []  # a bridge's partial view
    assert e.presence.state("gas-7") == "online"
    fired = offline_events(feed(e, statuses=[status("gas-8", 50, "offline", "reported")]))
    assert [(d, start) for d, _s, _i, start, _ in fired] == [("gas-8", at(50))]


def test_offline_source_ingest_follows_the_bridge_and_does_not_judge() -> None:
    e = engine(DetectorConfig({"defaults": {"device": {"offline_source": "ingest"}}}))
    feed(e, [reading("gas-9", 0), reading("gas-10", 0)])
    assert check(e, 10_000) == []
    fired = offline_events(feed(e, statuses=[status("gas-9", 181, "offline", "silence")]))
    assert [(d, start) for d, _s, _i, start, _ in fired] == [("gas-9", at(181))]


def test_only_owned_devices_and_only_up_to_their_clock() -> None:
    e = engine()
    feed(e, [reading("gas-11", 0), reading("gas-12", 0)])
    # another instance owns gas-12's partitions: it is not judged here
    assert [ev.device_id for ev in check(e, 500, owned={"gas-11"})] == ["gas-11"]
    # a partition read only up to t = 100 (lagging, just restarted): nothing judged beyond it
    assert check(e, 100) == []
    assert [ev.device_id for ev in check(e, 500)] == ["gas-12"]


def test_never_heard_and_unknown_interval_are_not_judged() -> None:
    e = engine()
    e.devices.ctx("gas-never")  # registered (meta known), never heard from
    feed(e, [reading("unregistered-1", 0)])  # heard, but no expected interval
    assert check(e, 100_000) == []
    assert e.presence.state("gas-never") is None


def test_restart_mid_outage_keeps_the_episode_and_resolves_it() -> None:
    a = engine()
    feed(a, [reading("gas-13", 0), reading("gas-14", 0)])
    out = a.process(presence_clock=lambda _d: (T0.timestamp() + 200, NEVER), presence_upper=T0.timestamp() + 200)
    (firing13, firing14) = sorted(out.events, key=lambda ev: ev.device_id)
    rows = [(d, st, since, at(0)) for d, (st, since) in out.presence.items()]
    # kill -9 and restart: state rebuilt from the stored firing events and device_presence
    b = engine()
    b.warm_up([firing13, firing14], [], [], [("gas-13", "gas_lel", at(0))], rows)
    assert b.presence.state("gas-13") == "offline" and b.presence.last_seen("gas-13") == at(0).timestamp()
    assert check(b, 5000) == []  # no second announcement
    resolved = offline_events(feed(b, [reading("gas-14", 5000)]))
    assert [(d, s, i) for d, s, i, _st, _e in resolved] == [("gas-14", "resolved", firing14.id)]
    # a restarted detector with empty memory but stored last-seen: only the overdue device fires
    c = engine()
    c.warm_up([], [], [], [], [("gas-15", "online", at(0), at(900)), ("gas-16", "online", at(0), at(0))])
    assert [ev.device_id for ev in check(c, 1000)] == ["gas-16"]


def test_presence_moved_here_by_a_rebalance_is_merged() -> None:
    e = engine()
    feed(e, [reading("gas-17", 0)])
    fired = check(e, 200)
    assert [ev.device_id for ev in fired] == ["gas-17"]
    # the partition left and came back: meanwhile the other owner saw it return (online since 300)
    e.restore_presence([("gas-17", "online", at(300), at(310))])
    assert not e.book.is_active("gas-17", "device.offline")
    assert check(e, 400) == []
    assert [ev.device_id for ev in check(e, 310 + 181)] == ["gas-17"]  # judged again from the stored last-seen


def test_presence_rows_for_storage() -> None:
    e = engine()
    out = e.process([reading("gas-18", 0)])
    assert out.seen == {"gas-18": at(0)} and out.presence == {}
    out = e.process(presence_clock=lambda _d: (T0.timestamp() + 500, NEVER), presence_upper=T0.timestamp() + 500)
    assert out.presence == {"gas-18": ("offline", at(180))}
    out = e.process([reading("gas-18", 600)])
    assert out.presence == {"gas-18": ("online", at(600))} and out.seen == {"gas-18": at(600)}


def test_silence_counts_from_the_end_of_an_ingest_blind_period() -> None:
    """The bridges were down from 100 to 1000 (their watermark jumped): a device last heard at
    50 is judged from 1000 on — its queued messages may still be arriving — not from 50."""
    e = engine()
    feed(e, [reading("gas-19", 50)])
    assert check(e, 1100, quiet_from_s=1000) == []
    (ev,) = check(e, 1181, quiet_from_s=1000)
    assert ev.starts_at == at(1180)


def test_ingest_watermarks() -> None:
    w = IngestWatermarks(ttl_s=60, gap_s=10)
    assert w.get(0) is None  # no bridge has vouched yet: nothing is judged
    w.beat(0, "a", 100)
    w.beat(0, "b", 101)
    # the first beat ends an unknown past (e.g. fresh topics after a whole-system outage while
    # presence came back from the database): silence is counted from it
    assert w.get(0) == (100, 100)
    w.beat(0, "a", 102)
    w.beat(0, "b", 103)
    assert w.get(0) == (102, 100)  # the smallest live bridge
    w.beat(0, "a", 101)  # out of order / redelivered: ignored
    assert w.get(0) == (102, 100)
    for t in range(104, 150, 2):  # bridge b stops (a restart): the watermark waits for it
        w.beat(0, "a", t)
    assert w.get(0) == (103, 100)
    w.beat(0, "b", 150)  # b is back: the jump 103 → 148 was blind, silence counts from 148
    assert w.get(0) == (148, 148)
    for t in range(150, 260, 2):  # b dies for good: after the TTL the watermark follows a alone
        w.beat(0, "a", t)
    mark, quiet = w.get(0)  # type: ignore[misc]
    assert mark == 258 and quiet == 212  # b left out once a is 60 s past it: the jump is marked blind
    assert w.get(1) is None  # per partition
    w.keep_only([1])
    assert w.get(0) is None
