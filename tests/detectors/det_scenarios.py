"""Labelled detector scenarios: a YAML file of time series in, the exact events expected out.

File format (tests/scenarios/detectors/<domain>/*.yaml)::

    name: gas high alarm through noise
    config: {gas: {confirm_n: 2}}            # optional, merged over the defaults
    devices:                                  # optional registry facts per device
      gas-1: {site_id: s1, domain: gas, model: M1, site_class: restaurant, parent: null}
    input:                                    # messages, in arrival order unless `at` says otherwise
      - series: {device: gas-1, metric: gas_lel, start: 2026-01-01T00:00:00Z, every_s: 30,
                 values: [1, 2, 60, 61, 3, 2]          # explicit values, or
                 noise: {n: 200, base: 2.0, sigma: 0.5, seed: 7, min: 0}  # seeded noise
                 per_message: 1, skew_s: 0, duplicate_every: 0, swap_every: 0}
      - reading: {device: e-1, ts: ..., values: {car_running: 0, door_zone: 0}, at: ...}
      - device_event: {device: p-1, code: fire_alarm, component: "1-012", zone: A, ts: ..., active: true}
      - status: {device: gas-1, state: offline, reason: silence, ts: ...}
    expect:                                   # every episode, final state (exact set)
      - {kind: gas.high, device: gas-1, starts_at: ..., state: resolved, ends_at: ..., component: ""}

``at`` (arrival, also the message's received_at) defaults to the reading time; a message
with an ``at`` hours after its ``ts`` is a late, out-of-order delivery. The runner sorts the
messages by arrival (stable) and feeds them in micro-batches of ``batch`` messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detectors.config import DetectorConfig
from detectors.engine import Engine, Message
from detectors.state import DeviceMeta
from hazmon.catalog import METRICS
from hazmon.contracts import DeviceEvent, DeviceStatus, Event, ReadingBatch, Sample

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "detectors"


def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass
class Feed:
    """One message ready for a topic: which topic, key, value, arrival time."""

    topic: str  # readings | status | device_events
    key: str
    value: bytes
    at: datetime


@dataclass
class Scenario:
    name: str
    path: Path
    config: DetectorConfig
    devices: dict[str, DeviceMeta]
    feeds: list[Feed]
    expect: list[dict[str, Any]]
    batch: int

    def meta(self, device_id: str) -> DeviceMeta | None:
        return self.devices.get(device_id)


def _domain_of(device: str, devices: dict[str, DeviceMeta]) -> str:
    meta = devices.get(device)
    if meta and meta.domain:
        return meta.domain
    return device.split("-", 1)[0]


def _batch(device: str, devices: dict[str, DeviceMeta], samples: list[Sample], at: datetime) -> bytes:
    meta = devices.get(device) or DeviceMeta()
    rb = ReadingBatch(
        device_id=device,
        site_id=meta.site_id or f"site-{device}",
        domain=_domain_of(device, devices),
        vendor="acme",
        model=meta.model,
        received_at=at,
        source=f"scenario/{device}",
        samples=tuple(samples),
    )
    return rb.model_dump_json().encode()


def _series(spec: dict[str, Any], devices: dict[str, DeviceMeta]) -> list[Feed]:
    device = spec["device"]
    metric = spec["metric"]
    start = _dt(spec["start"])
    every = float(spec.get("every_s", 30))
    if "values" in spec:
        values = [None if v is None else float(v) for v in spec["values"]]
    else:
        nz = spec["noise"]
        rng = np.random.default_rng(int(nz.get("seed", 1)))
        vals = rng.normal(float(nz.get("base", 0.0)), float(nz.get("sigma", 1.0)), int(nz["n"]))
        vals = np.clip(vals, nz.get("min", -np.inf), nz.get("max", np.inf))
        values = [round(float(v), 3) for v in vals]
    skew = float(spec.get("skew_s", 0))
    per = int(spec.get("per_message", 1))
    unit = METRICS[metric].unit if metric in METRICS else ""
    points = [(start + timedelta(seconds=i * every), v) for i, v in enumerate(values)]
    feeds: list[Feed] = []
    for k in range(0, len(points), per):
        chunk = points[k : k + per]
        at = chunk[-1][0]
        samples = [Sample(metric=metric, value=v, unit=unit, ts=ts + timedelta(seconds=skew), seq=k + j)
                   for j, (ts, v) in enumerate(chunk)]
        feeds.append(Feed("readings", device, _batch(device, devices, samples, at), at))
    dup = int(spec.get("duplicate_every", 0))
    if dup:
        feeds = [f for i, f in enumerate(feeds) for _ in range(2 if i % dup == dup - 1 else 1)]
    swap = int(spec.get("swap_every", 0))
    if swap:  # deliver neighbours in swapped order (small reordering)
        for i in range(swap - 1, len(feeds) - 1, swap):
            feeds[i], feeds[i + 1] = feeds[i + 1], feeds[i]
            feeds[i].at, feeds[i + 1].at = feeds[i + 1].at, feeds[i].at
    return feeds


def load(path: Path) -> Scenario:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    devices = {
        dev: DeviceMeta(
            site_id=m.get("site_id", f"site-{dev}"), domain=m.get("domain", dev.split("-", 1)[0]),
            model=m.get("model", ""), site_class=m.get("site_class", ""), township=m.get("township", ""),
            parent_id=m.get("parent"),
        )
        for dev, m in (doc.get("devices") or {}).items()
    }
    feeds: list[Feed] = []
    for item in doc["input"]:
        if "series" in item:
            feeds.extend(_series(item["series"], devices))
        elif "reading" in item:
            r = item["reading"]
            ts = _dt(r["ts"])
            at = _dt(r.get("at", ts))
            samples = [Sample(metric=m, value=(None if v is None else float(v)), unit=METRICS[m].unit if m in METRICS else "",
                              ts=ts, flags=tuple(r.get("flags", ()))) for m, v in r["values"].items()]
            feeds.append(Feed("readings", r["device"], _batch(r["device"], devices, samples, at), at))
        elif "raw" in item:
            r = item["raw"]
            feeds.append(Feed(r.get("topic", "readings"), r.get("device", "x"), r["value"].encode(), _dt(r["at"])))
        elif "device_event" in item:
            e = dict(item["device_event"])
            ts = _dt(e.pop("ts"))
            at = _dt(e.pop("at", ts))
            device = e.pop("device")
            meta = devices.get(device) or DeviceMeta()
            ev = DeviceEvent(device_id=device, site_id=meta.site_id or f"site-{device}",
                             domain=_domain_of(device, devices), vendor="acme", ts=ts, received_at=at, **e)
            feeds.append(Feed("device_events", device, ev.model_dump_json().encode(), at))
        elif "status" in item:
            s = dict(item["status"])
            ts = _dt(s.pop("ts"))
            at = _dt(s.pop("at", ts))
            device = s.pop("device")
            meta = devices.get(device) or DeviceMeta()
            st = DeviceStatus(device_id=device, site_id=meta.site_id or f"site-{device}", vendor="acme",
                              ts=ts, received_at=at, **s)
            feeds.append(Feed("status", device, st.model_dump_json().encode(), at))
        else:
            raise ValueError(f"{path}: unknown input item {item!r}")
    feeds.sort(key=lambda f: f.at)
    expect = []
    for e in doc.get("expect") or []:
        e = dict(e)
        e["starts_at"] = _dt(e["starts_at"])
        if e.get("ends_at") is not None:
            e["ends_at"] = _dt(e["ends_at"])
        e.setdefault("component", "")
        e.setdefault("state", "firing")
        expect.append(e)
    cfg = DetectorConfig({"defaults": doc.get("config") or {}}, source=str(path))
    return Scenario(doc["name"], path, cfg, devices, feeds, expect, int(doc.get("batch", 5)))


def all_paths() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*/*.yaml"))


def run_engine(sc: Scenario, engine: Engine | None = None) -> tuple[Engine, list[Event], list[Any]]:
    """Feed a scenario through the pure engine in micro-batches; returns engine, events, dead letters."""
    engine = engine or Engine(sc.config, sc.meta, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    events: list[Event] = []
    dead: list[Any] = []
    for k in range(0, len(sc.feeds), sc.batch):
        chunk = sc.feeds[k : k + sc.batch]
        by: dict[str, list[Message]] = {"readings": [], "status": [], "device_events": []}
        for i, f in enumerate(chunk):
            by[f.topic].append(Message(f.value, f"{f.topic}:0:{k + i}"))
        out = engine.process(by["readings"], by["status"], by["device_events"])
        events.extend(out.events)
        dead.extend(out.deadletters)
    return engine, events, dead


def episodes(events: list[Event]) -> dict[str, dict[str, Any]]:
    """Collapse firing/resolved events into one record per episode id (final state)."""
    out: dict[str, dict[str, Any]] = {}
    for ev in events:
        rec = out.setdefault(ev.id, {"kind": ev.kind, "device": ev.device_id, "component": ev.component,
                                     "starts_at": ev.starts_at, "state": "firing", "ends_at": None,
                                     "firing": 0, "resolved": 0})
        rec[ev.state.value] += 1
        if ev.state.value == "resolved":
            rec["state"] = "resolved"
            rec["ends_at"] = ev.ends_at
    return out


def key_of(e: dict[str, Any]) -> tuple:
    return (e["kind"], e["device"], e.get("component", ""), e["starts_at"], e["state"], e.get("ends_at"))
