"""Device simulator: registered devices publishing over MQTT in their vendor's format.

Used by ``hazmon demo``, the ingest benchmark and end-to-end tests. Deterministic: the payload
of device *d*'s *k*-th message depends only on (seed, d, k, start time), so two runs with the
same seed publish the same bytes. Scripted incidents change what a device reports:

- :class:`GasLeak` — a gas leak at a restaurant: %LEL ramps from the baseline to a peak; the
  detector's own alarm goes low (≥ 20 %LEL) then high (≥ 50 %LEL, valve shuts);
- :class:`Trapped` — a passenger trapped in an elevator (困人): stopped between floors, door
  closed, person in car, fault ``trapped``;
- :class:`FireAlarm` — a fire alarm on a panel: a GB/T 26875.3 component-status frame with the
  fire-alarm bit (or a ``firejson`` event);
- :class:`Offline` — a device going silent (no messages in a window; offline detection).

:meth:`Simulator.all_clear` is the end of every incident, reported the way the devices report
it: normal readings (gas, elevator), the elevator box's 困人解除 event, the fire panel's
复位 frame, the silent device heard again. ``hazmon demo`` publishes it when a run ends so
every alarm of the run resolves before the stack stops.

API: :class:`Simulator` (``messages()`` to get the bytes, ``run()`` to publish at the devices'
own pace, ``blast()`` to publish N messages as fast as the broker takes them) and the
``hazmon simulate`` command (in :mod:`sim.cli`).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "SimDevice",
    "GasLeak",
    "Trapped",
    "FireAlarm",
    "Offline",
    "Incident",
    "SimMessage",
    "SimReport",
    "Simulator",
    "devices_from_directory",
    "READINGS_PER_RECORD",
]


@dataclass(frozen=True, slots=True)
class SimDevice:
    device_id: str
    vendor: str
    adapter: str
    domain: str
    interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class GasLeak:
    device_id: str
    start_s: float  # seconds after the simulation start
    ramp_s: float = 120.0
    peak_lel: float = 60.0


@dataclass(frozen=True, slots=True)
class Trapped:
    device_id: str
    start_s: float
    duration_s: float = 600.0
    floor: int = 7


@dataclass(frozen=True, slots=True)
class FireAlarm:
    device_id: str
    start_s: float
    loop: int = 1
    point: int = 23
    zone: str = "3F 东侧走廊"


@dataclass(frozen=True, slots=True)
class Offline:
    device_id: str
    start_s: float
    end_s: float | None = None  # None = silent to the end


Incident = GasLeak | Trapped | FireAlarm | Offline


@dataclass(frozen=True, slots=True)
class SimMessage:
    topic: str
    payload: bytes
    readings: int  # samples the bridge should produce from it
    device_id: str
    t: float  # epoch seconds of the message's last record


@dataclass
class SimReport:
    published: int = 0
    readings: int = 0
    failed: int = 0
    seconds: float = 0.0
    by_device: dict[str, int] = field(default_factory=dict)


#: readings one record produces, per (adapter, domain) — the bridge's readings count
READINGS_PER_RECORD: dict[tuple[str, str], int] = {
    ("hazmon_json", "gas"): 2,
    ("hazmon_json", "elevator"): 4,
    ("hazmon_json", "fire"): 2,
    ("senml", "gas"): 2,
    ("senml", "elevator"): 2,
    ("senml", "fire"): 2,
    ("gasjson", "gas"): 4,
    ("elevator_json", "elevator"): 8,
    ("firejson", "fire"): 1,
    ("gbt26875", "fire"): 1,
}


def devices_from_directory(directory: Any, limit: int | None = None) -> list[SimDevice]:
    """Simulated devices for the registered ones (an :class:`ingest.directory.Directory`)."""
    out = []
    for dev in sorted(directory.devices.values(), key=lambda d: d.id):
        vendor = directory.vendors.get(dev.vendor)
        if vendor is None:
            continue
        out.append(SimDevice(dev.id, dev.vendor, vendor.adapter, dev.domain, dev.expected_interval_s))
        if limit is not None and len(out) >= limit:
            break
    return out


class Simulator:
    def __init__(
        self,
        devices: Sequence[SimDevice],
        *,
        seed: int = 1,
        batch: int = 1,
        topic_root: str = "hazmon/v1",
        incidents: Sequence[Incident] = (),
        start: float | None = None,
    ) -> None:
        if not devices:
            raise ValueError("no devices to simulate")
        self.devices = list(devices)
        self.seed = seed
        self.batch = max(1, batch)
        self.root = topic_root.strip("/")
        self.incidents = list(incidents)
        self.start = time.time() if start is None else start
        self._serial: dict[str, int] = {}
        #: simulated seconds after which no incident applies any more (set by :meth:`all_clear`)
        self.cleared_at: float = math.inf
        self._clear_k = 1_000_000

    # --- values ---------------------------------------------------------------------------

    def _rng(self, device_id: str, k: int) -> random.Random:
        return random.Random((self.seed * 1_000_003) ^ zlib.crc32(device_id.encode()) ^ (k * 7_919))

    def _incidents(self, device_id: str, rel: float) -> list[Incident]:
        out: list[Incident] = []
        if rel >= self.cleared_at:
            return out
        for inc in self.incidents:
            if inc.device_id != device_id or rel < inc.start_s:
                continue
            if isinstance(inc, Trapped) and rel >= inc.start_s + inc.duration_s:
                continue
            if isinstance(inc, Offline) and inc.end_s is not None and rel >= inc.end_s:
                continue
            out.append(inc)
        return out

    def silent(self, device_id: str, t: float) -> bool:
        return any(isinstance(i, Offline) for i in self._incidents(device_id, t - self.start))

    def _gas(self, dev: SimDevice, t: float, rng: random.Random) -> dict[str, Any]:
        lel = max(0.0, round(rng.gauss(1.0, 0.4), 2))
        for inc in self._incidents(dev.device_id, t - self.start):
            if isinstance(inc, GasLeak):
                frac = min(1.0, (t - self.start - inc.start_s) / max(inc.ramp_s, 1e-6))
                lel = round(lel + frac * inc.peak_lel, 2)
        alarm = "high" if lel >= 50 else "low" if lel >= 20 else "normal"
        return {"gas_lel": lel, "battery_pct": 90.0 - (zlib.crc32(dev.device_id.encode()) % 30), "alarm": alarm,
                "valve": "closed" if alarm == "high" else "open"}

    def _elevator(self, dev: SimDevice, t: float, rng: random.Random) -> dict[str, Any]:
        trapped = next((i for i in self._incidents(dev.device_id, t - self.start) if isinstance(i, Trapped)), None)
        if trapped is not None:
            return {"running": False, "direction": "stop", "floor": trapped.floor, "door": "closed", "speed": 0.0,
                    "person": True, "mode": "normal", "doorZone": False, "faults": [1]}
        running = rng.random() < 0.5
        return {
            "running": running,
            "direction": rng.choice(["up", "down"]) if running else "stop",
            "floor": rng.randint(1, 18),
            "door": "closed" if running else rng.choice(["open", "closed"]),
            "speed": round(rng.uniform(0.8, 1.75), 2) if running else 0.0,
            "person": rng.random() < 0.6,
            "mode": "normal",
            "doorZone": not running,
            "faults": [],
        }

    def _fire(self, dev: SimDevice, t: float, rng: random.Random) -> dict[str, Any]:
        alarms = [i for i in self._incidents(dev.device_id, t - self.start) if isinstance(i, FireAlarm)]
        temp = round(rng.gauss(24.0, 1.5), 1)
        return {"temperature_c": temp, "smoke_obscuration": round(abs(rng.gauss(0.3, 0.1)), 2), "alarms": alarms}

    # --- payloads -------------------------------------------------------------------------

    def message(self, dev: SimDevice, k: int, t: float) -> SimMessage:
        """The k-th message of ``dev``: ``batch`` records ending at time ``t``."""
        step = dev.interval_s / self.batch
        times = [t - (self.batch - 1 - j) * step for j in range(self.batch)]
        rng = self._rng(dev.device_id, k)
        records = []
        for ts in times:
            if dev.domain == "gas":
                records.append((ts, self._gas(dev, ts, rng)))
            elif dev.domain == "elevator":
                records.append((ts, self._elevator(dev, ts, rng)))
            else:
                records.append((ts, self._fire(dev, ts, rng)))
        payload, readings = self._encode(dev, k, records)
        return SimMessage(f"{self.root}/{dev.vendor}/{dev.device_id}/telemetry", payload, readings, dev.device_id, t)

    def _encode(self, dev: SimDevice, k: int, records: list[tuple[float, dict[str, Any]]]) -> tuple[bytes, int]:
        a = dev.adapter
        seq0 = k * self.batch
        if a == "hazmon_json":
            metrics = {"gas": ("gas_lel", "battery_pct"), "elevator": ("floor", "running", "door", "speed"),
                       "fire": ("temperature_c", "smoke_obscuration")}[dev.domain]
            conv: dict[str, tuple[str, Any]] = {"running": ("car_running", float),
                                                "door": ("door_open", lambda d: 1.0 if d == "open" else 0.0),
                                                "speed": ("speed_mps", float), "floor": ("floor", float)}
            rows: list[dict[str, Any]] = []
            for j, (ts, r) in enumerate(records):
                values = {}
                for m in metrics:
                    name, fn = conv.get(m, (m, float))
                    values[name] = fn(r[m])
                rows.append({"ts": round(ts, 3), "seq": seq0 + j, "values": values})
            doc: Any = {"readings": [{"metric": m, "value": v, "ts": o["ts"], "seq": o["seq"]}
                                     for o in rows for m, v in o["values"].items()]}
            return _dumps(doc), len(doc["readings"])
        if a == "senml":
            pack: list[dict[str, Any]] = [{"bn": f"{dev.device_id}:", "bt": round(records[0][0], 3)}]
            n = 0
            for ts, r in records:
                dt = round(ts - records[0][0], 3)
                if dev.domain == "gas":
                    pack += [{"n": "gas_lel", "u": "%LEL", "v": r["gas_lel"], "t": dt},
                             {"n": "battery_pct", "u": "%", "v": r["battery_pct"], "t": dt}]
                elif dev.domain == "elevator":
                    pack += [{"n": "floor", "v": r["floor"], "t": dt}, {"n": "speed_mps", "u": "m/s", "v": r["speed"], "t": dt}]
                else:
                    pack += [{"n": "temperature_c", "u": "Cel", "v": r["temperature_c"], "t": dt},
                             {"n": "smoke_obscuration", "u": "%/m", "v": r["smoke_obscuration"], "t": dt}]
                n += 2
            # the base record carries the first value's name-less base: merge it into the first record
            first = pack.pop(0)
            pack[0] = {**first, **pack[0]}
            return _dumps(pack), n
        if a == "gasjson":
            recs = [
                {"time": _local(ts), "seq": seq0 + j, "gas": "CH4", "conc": r["gas_lel"], "unit": "%LEL", "alarm": r["alarm"],
                 "fault": [], "valve": r["valve"], "power": "mains", "battery": r["battery_pct"]}
                for j, (ts, r) in enumerate(records)
            ]
            doc = recs[0] if len(recs) == 1 else {"sn": dev.device_id, "records": recs}
            return _dumps(doc), 4 * len(recs)
        if a == "elevator_json":
            recs = [{"time": _local(ts), "seq": seq0 + j, **r} for j, (ts, r) in enumerate(records)]
            doc = {"liftId": dev.device_id, **recs[0]} if len(recs) == 1 else {"liftId": dev.device_id, "records": recs}
            return _dumps(doc), 8 * len(recs)
        if a == "firejson":
            ts_last = records[-1][0]
            events = [{"type": "fire_alarm", "loop": al.loop, "addr": al.point, "zone": al.zone, "active": True}
                      for al in records[-1][1]["alarms"]]
            doc = {"panel": dev.device_id, "time": _local(ts_last), "seq": k,
                   "analog": [{"loop": 1, "addr": 5, "metric": "temperature_c", "value": r["temperature_c"], "unit": "°C",
                               "time": _local(ts)} for ts, r in records],
                   "events": events}
            return _dumps(doc), len(records)
        if a == "gbt26875":
            from ingest.adapters.gbt26875 import FIRE_ALARM, NORMAL, AnalogValue, ComponentState, encode_frame

            serial = self._serial[dev.device_id] = (self._serial.get(dev.device_id, 0) + 1) & 0xFFFF
            last_ts, last = records[-1]
            sent = datetime.fromtimestamp(math.floor(last_ts), UTC)
            if last["alarms"]:
                al = last["alarms"][0]
                objs: list[Any] = [ComponentState(1, 1, 40, al.loop, al.point, NORMAL | FIRE_ALARM, al.zone, sent)]
                return encode_frame(objs, serial=serial, sent_at=sent), 0
            objs = [AnalogValue(1, 1, 40, 1, 5, 3, int(round(r["temperature_c"] * 10)), datetime.fromtimestamp(math.floor(ts), UTC))
                    for ts, r in records[:64]]
            return encode_frame(objs, serial=serial, sent_at=sent), len(objs)
        raise ValueError(f"simulator has no encoder for adapter {a!r}")

    def all_clear(self, t: float | None = None, *, normal_readings: int = 3) -> list[SimMessage]:
        """The messages that end every incident at time ``t`` (default now), the way the
        devices report it; from then on the simulator reports every device as normal.

        * gas: ``normal_readings`` normal readings one second apart (the detector clears after
          ``clear_n`` consecutive readings below the set point minus the hysteresis);
        * elevator: a normal snapshot, plus the box's ``trapped`` code going inactive on the
          event topic (困人解除) for a :class:`Trapped` incident;
        * fire: the panel's 复位 (GB/T 26875.3 system status with the reset bit; ``firejson``: a
          ``reset`` event), which clears its alarms, faults and supervisory signals;
        * a silenced device: heard again (a normal message), which ends its offline episode.
        """
        t = time.time() if t is None else t
        # the first normal reading is (normal_readings - 1) s before t
        self.cleared_at = min(self.cleared_at, t - max(normal_readings - 1, 0) - self.start)
        by_id = {d.device_id: d for d in self.devices}
        out: list[SimMessage] = []
        seen: set[str] = set()
        for inc in self.incidents:
            dev = by_id.get(inc.device_id)
            if dev is None or dev.device_id in seen:
                continue
            seen.add(dev.device_id)
            kinds = {type(i) for i in self.incidents if i.device_id == dev.device_id}
            if dev.domain == "fire":
                out.append(self._reset(dev, t))
                continue
            n = normal_readings if dev.domain == "gas" else 1
            for j in range(n):
                self._clear_k += 1
                out.append(self.message(dev, self._clear_k, t - (n - 1 - j)))
            if Trapped in kinds:
                doc = {"code": "trapped", "active": False, "ts": _local(t)}
                out.append(SimMessage(f"{self.root}/{dev.vendor}/{dev.device_id}/event", _dumps(doc), 0, dev.device_id, t))
        return out

    def _reset(self, dev: SimDevice, t: float) -> SimMessage:
        """A fire panel's 复位 after its alarms."""
        topic = f"{self.root}/{dev.vendor}/{dev.device_id}/telemetry"
        if dev.adapter == "gbt26875":
            from ingest.adapters.gbt26875 import NORMAL, RESET, SystemState, encode_frame

            serial = self._serial[dev.device_id] = (self._serial.get(dev.device_id, 0) + 1) & 0xFFFF
            sent = datetime.fromtimestamp(math.floor(t), UTC)
            frame = encode_frame([SystemState(1, 1, NORMAL | RESET, sent)], serial=serial, sent_at=sent)
            return SimMessage(topic, frame, 0, dev.device_id, t)
        self._clear_k += 1
        doc = {"panel": dev.device_id, "time": _local(t), "seq": self._clear_k, "events": [{"type": "reset", "active": True}]}
        return SimMessage(topic, _dumps(doc), 0, dev.device_id, t)

    def messages(self, n: int, *, t0: float | None = None, spacing_s: float | None = None) -> Iterator[SimMessage]:
        """``n`` messages, round-robin over the devices; message i of a device is stamped
        ``t0 + i × interval`` (or ``spacing_s``), skipping silent devices."""
        t0 = self.start if t0 is None else t0
        count = 0
        k = 0
        while count < n:
            progressed = False
            for dev in self.devices:
                t = t0 + k * (spacing_s if spacing_s is not None else dev.interval_s)
                if self.silent(dev.device_id, t):
                    continue
                progressed = True
                yield self.message(dev, k, t)
                count += 1
                if count >= n:
                    return
            if not progressed and k > 10_000:
                return
            k += 1

    # --- publishing -----------------------------------------------------------------------

    async def blast(self, client: Any, n: int, *, window: int = 1000, t0: float | None = None) -> SimReport:
        """Publish ``n`` messages (QoS 1) as fast as the broker acknowledges them, at most
        ``window`` unacknowledged. ``client`` is an :class:`ingest.mqtt.MqttClient`."""
        report = SimReport()
        sem = asyncio.Semaphore(window)
        started = time.perf_counter()
        failures: list[BaseException] = []

        def done(fut: asyncio.Future[Any]) -> None:
            sem.release()
            if fut.cancelled() or fut.exception() is not None:
                report.failed += 1
                failures.append(fut.exception() or asyncio.CancelledError())

        for msg in self.messages(n, t0=t0, spacing_s=1.0):
            await sem.acquire()
            fut = client.publish_nowait(msg.topic, msg.payload, 1)
            fut.add_done_callback(done)
            report.published += 1
            report.readings += msg.readings
            report.by_device[msg.device_id] = report.by_device.get(msg.device_id, 0) + 1
        for _ in range(window):
            await sem.acquire()
        report.seconds = time.perf_counter() - started
        return report

    async def run(self, client: Any, duration_s: float, *, speed: float = 1.0, stop: asyncio.Event | None = None) -> SimReport:
        """Publish in (scaled) real time: each device every ``interval_s / speed`` seconds of
        wall time, its timestamps advancing by ``interval_s``; incidents on the simulated clock."""
        report = SimReport()
        started = time.monotonic()
        k_of = {d.device_id: 0 for d in self.devices}
        # stagger devices over their first interval so they do not all publish at once
        order = sorted(self.devices, key=lambda d: zlib.crc32(f"{self.seed}:{d.device_id}".encode()))
        offsets = {d.device_id: (i / len(order)) * d.interval_s for i, d in enumerate(order)}
        # Real devices report an alarm when it happens, not at their next periodic slot (a fire
        # panel's heartbeat is minutes apart): align an incident device's schedule so one of its
        # regular messages falls exactly on the incident's start.
        intervals = {d.device_id: d.interval_s for d in self.devices}
        for inc in self.incidents:
            if inc.device_id not in intervals:
                continue
            if isinstance(inc, Offline):
                # a device must have been heard to be judged silent: report once at the start
                offsets[inc.device_id] = 0.0
            else:
                offsets[inc.device_id] = inc.start_s % intervals[inc.device_id]
        pending: set[asyncio.Future[Any]] = set()
        while time.monotonic() - started < duration_s and not (stop and stop.is_set()):
            sim_now = self.start + (time.monotonic() - started) * speed
            next_due = math.inf
            for dev in order:
                k = k_of[dev.device_id]
                due = self.start + offsets[dev.device_id] + k * dev.interval_s
                while due <= sim_now:
                    if not self.silent(dev.device_id, due):
                        msg = self.message(dev, k, due)
                        fut = client.publish_nowait(msg.topic, msg.payload, 1)
                        pending.add(fut)
                        fut.add_done_callback(pending.discard)
                        report.published += 1
                        report.readings += msg.readings
                        report.by_device[dev.device_id] = report.by_device.get(dev.device_id, 0) + 1
                    k += 1
                    due = self.start + offsets[dev.device_id] + k * dev.interval_s
                k_of[dev.device_id] = k
                next_due = min(next_due, due)
            wait = (next_due - sim_now) / speed if next_due != math.inf else 0.5
            await asyncio.sleep(min(max(wait, 0.005), 0.5))
        if pending:
            await asyncio.wait(pending, timeout=10.0)
        report.seconds = time.monotonic() - started
        return report


def _local(ts: float) -> str:
    """Beijing wall-clock time with offset, second resolution (what vendor JSON usually has)."""
    from ingest.adapters.base import BEIJING

    return datetime.fromtimestamp(ts, BEIJING).isoformat(timespec="milliseconds")


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


# --- a synthetic fleet, registered directly (benchmarks and tests) -------------------------

_DOMAIN_ZH = {"gas": "燃气", "elevator": "电梯", "fire": "消防"}


def synthetic_fleet(n: int, *, adapters: Sequence[tuple[str, str]] = (("hazmon_json", "gas"),), interval_s: float = 60.0,
                    prefix: str = "SIM") -> list[SimDevice]:
    """``n`` devices spread over one vendor per (adapter, domain) pair: vendor ``sim-<adapter>``."""
    out = []
    for i in range(n):
        adapter, domain = adapters[i % len(adapters)]
        out.append(SimDevice(f"{prefix}-{domain[:3].upper()}-{i:06d}", f"sim-{adapter.replace('_', '-')}", adapter, domain, interval_s))
    return out


async def register_fleet(conn: Any, devices: Sequence[SimDevice], *, township: str = "T-SIM", site: str = "S-SIM") -> None:
    """Insert vendors, one township/site and ``devices`` into the registry tables (idempotent).
    A shortcut for benches and tests; real districts come in through ``hazmon registry import``."""
    async with conn.transaction():
        for domain in sorted({d.domain for d in devices}):
            await conn.execute(
                "INSERT INTO domains (name, name_zh) VALUES ($1, $2) ON CONFLICT DO NOTHING", domain, _DOMAIN_ZH.get(domain, domain)
            )
        await conn.execute("INSERT INTO townships (id, name) VALUES ($1, '模拟镇') ON CONFLICT DO NOTHING", township)
        await conn.execute(
            "INSERT INTO sites (id, name, township_id) VALUES ($1, '模拟餐馆', $2) ON CONFLICT DO NOTHING", site, township
        )
        for vendor, adapter in sorted({(d.vendor, d.adapter) for d in devices}):
            await conn.execute(
                "INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES ($1, $1, $2, $1) ON CONFLICT DO NOTHING", vendor, adapter
            )
        await conn.executemany(
            "INSERT INTO devices (id, vendor_id, domain, site_id, expected_interval_s) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING",
            [(d.device_id, d.vendor, d.domain, site, max(1, int(d.interval_s))) for d in devices],
        )


__all__ += ["synthetic_fleet", "register_fleet"]
