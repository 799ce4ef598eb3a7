"""Whole-pipeline benchmark: a simulated district of ≥ 10,000 devices over the project's mosquitto
→ 2 bridges → Kafka (Tansu; memory storage, ``--kafka-storage s3`` for the fault tests' S3) → detector → \
PostgreSQL → alerting → SMS simulator, with
the raw baselines of each stage measured in the same run on the same services.

    .venv/bin/python bench/bench_pipeline.py            # 10,000 devices, the full run (~4 min)
    .venv/bin/python bench/bench_pipeline.py --quick    # 2,000 devices, shorter phases (~2 min)
    .venv/bin/python bench/bench_pipeline.py --kafka apache3   # on three Apache Kafka nodes
    .venv/bin/python bench/bench_pipeline.py --kafka all       # Tansu, 1 and 3 nodes, side by side

``--kafka``: ``tansu`` (the default), ``apache`` (one Apache Kafka KRaft node), ``apache3`` (three
nodes, replication factor 3, min.insync.replicas 2), ``all`` (the three one after another in one
run, each on a fresh pipeline, then a side-by-side table). ``--set KEY=VALUE`` passes a setting to
every stage (``--set HAZMON_KAFKA__LINGER_MS=0``); ``--broker KEY=VALUE`` a property to every
Apache Kafka node (``--broker replica.fetch.wait.max.ms=50``): how the tuning in bench/README.md
was tried.

Phases (every process is a real one: sim/harness.py ``PipelineProcesses``):

1. **throughput** — ``hazmon simulate --blast N --batch 10`` publishes N gateway messages
   (10 records each, in each vendor's own format: gasjson, elevator_json, GB/T 26875 frames,
   SenML, hazmon_json) as fast as the broker takes them; the readings stored in PostgreSQL are
   counted every 0.5 s. Sustained readings/s = the slope of that count between 10 % and 90 %
   of the total (the steady part); also the overall figure (first publish → last row).
2. **latency** — a paced publisher (own process) sends one record per device message at a
   steady ``--rate`` readings/s with device time = wall time; after ``--storm-at`` seconds a storm
   of fire alarms (GB/T 26875 火警 frames on ``--storm`` panels, back to back) is the burst.
   Event stored = the ``pg_notify`` of an AFTER INSERT trigger on ``events`` (delivered at
   commit) heard by the benchmark; SMS = the time the simulator recorded the request
   (``/messages``, field ``at``). Latency = that − the panel's publish time (same clock).
   The routes are tests/e2e/routes_e2e.yaml: fire-alarm ``group_wait: 0s`` (the sample's 10 s
   aggregation wait would otherwise be added to every figure); alerting ``--tick 0.2``.
3. **baselines** on the same broker, Kafka and PostgreSQL: bare paho pub/sub (QoS 1, drain of a
   queued session, bench/bench_ingest.py's subscriber), bare aiokafka produce and consume and bare
   asyncpg COPY (bench/bench_detectors.py's functions), each as readings/s, and the ratio of each
   stage to its baselines.

CPU (% of one core, from psutil cpu_times deltas; PostgreSQL = postmaster + backends) and peak
RSS per process are reported per phase. Results: bench/results/pipeline-<timestamp>.json and a
table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from hazmon.procs import HazmonProcess
from hazmon.stack import create_topics_async
from hazmon.topics import Topics
from sim.devices import SimDevice, Simulator, devices_from_directory
from sim.harness import PipelineProcesses, RssSampler, fire_alarm_message
from sim.sample import generate as generate_district
from sim.sample import write_sample

REPO = Path(__file__).resolve().parents[1]

MIB = 1024 * 1024

_TRIGGER = """
CREATE OR REPLACE FUNCTION bench_event_stored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('bench_events', NEW.device_id || ' ' || NEW.kind || ' ' || NEW.id); RETURN NEW; END $$;
DROP TRIGGER IF EXISTS bench_event_stored ON events;
CREATE TRIGGER bench_event_stored AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION bench_event_stored();
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


# ------------------------------------------------------------------------------ CPU / RSS
class ProcStats:
    """CPU seconds (process + descendants) between ``begin`` and ``end``, and peak RSS."""

    def __init__(self, procs: dict[str, Any]) -> None:
        self.procs = procs  # name → ManagedProcess (or anything with .pid / .is_running)
        self._t0 = 0.0
        self._cpu0: dict[str, float] = {}
        self.sampler = RssSampler(procs, every_s=0.5)

    @staticmethod
    def cpu_of(pid: int | None) -> float:
        if not pid:
            return 0.0
        try:
            p = psutil.Process(pid)
            total = sum(p.cpu_times()[:2])
            for c in p.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += sum(c.cpu_times()[:2])
            return total
        except psutil.Error:
            return 0.0

    def begin(self) -> None:
        self._t0 = time.monotonic()
        self._cpu0 = {n: self.cpu_of(p.pid) for n, p in self.procs.items()}
        self.sampler = RssSampler(self.procs, every_s=0.5)
        self.sampler.__enter__()

    def end(self) -> dict[str, dict[str, float]]:
        self.sampler.__exit__(None, None, None)
        wall = time.monotonic() - self._t0
        out = {}
        for n, p in self.procs.items():
            cpu = self.cpu_of(p.pid) - self._cpu0.get(n, 0.0)
            out[n] = {"cpu_pct": round(100 * cpu / wall, 1), "peak_rss_mib": round(self.sampler.peak.get(n, 0) / MIB, 1)}
        return out


class _Pid:
    def __init__(self, pid: int) -> None:
        self.pid = pid

    @property
    def is_running(self) -> bool:
        return psutil.pid_exists(self.pid)


# ------------------------------------------------------------------------------ steady publisher
def _steady_publisher(host: str, port: int, password: str, devices: list[tuple[str, str, str, str, float]],
                      rate: float, duration: float, storm_at: float, storm: list[tuple[str, str]],
                      out: Any) -> None:
    """Child process: ``rate`` readings/s (one record per message, device time = now) for
    ``duration`` s; the storm's fire-alarm frames back to back at ``storm_at``."""
    from ingest.mqtt import MqttClient

    async def run() -> dict[str, Any]:
        sims = [SimDevice(*d) for d in devices]
        sim = Simulator(sims, seed=5, batch=1)
        k_of = {d.device_id: 0 for d in sims}
        storm_pub: dict[str, float] = {}
        published = readings = failed = 0
        pending: set[asyncio.Future[Any]] = set()

        def done(f: asyncio.Future[Any]) -> None:
            nonlocal failed
            pending.discard(f)
            if f.cancelled() or f.exception() is not None:
                failed += 1

        async with MqttClient(host, port, client_id=f"bench-steady-{uuid.uuid4().hex[:6]}", username="hazmon-sim",
                              password=password) as client:
            t0 = time.monotonic()
            i = 0
            sent_readings = 0.0
            stormed = False
            while (now := time.monotonic() - t0) < duration:
                if not stormed and now >= storm_at:
                    for panel, vendor in storm:
                        topic, payload = fire_alarm_message(panel, vendor=vendor)
                        storm_pub[panel] = time.time()
                        fut = client.publish_nowait(topic, payload, 1)
                        pending.add(fut)
                        fut.add_done_callback(done)
                    stormed = True
                due = rate * now
                while sent_readings < due and len(pending) < 5000:
                    dev = sims[i % len(sims)]
                    i += 1
                    k = k_of[dev.device_id]
                    k_of[dev.device_id] = k + 1
                    msg = sim.message(dev, k, time.time())
                    fut = client.publish_nowait(msg.topic, msg.payload, 1)
                    pending.add(fut)
                    fut.add_done_callback(done)
                    published += 1
                    readings += msg.readings
                    sent_readings += max(msg.readings, 1)
                await asyncio.sleep(0.005)
            if pending:
                await asyncio.wait(set(pending), timeout=30)
            return {"published": published, "readings": readings, "failed": failed, "storm": storm_pub,
                    "seconds": time.monotonic() - t0}

    out.send(asyncio.run(run()))


# ------------------------------------------------------------------------------ the benchmark
class Bench:
    def __init__(self, args: argparse.Namespace, engine: str = "tansu") -> None:
        self.args = args
        self.engine = engine
        self.work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        self.results: dict[str, Any] = {"args": vars(args), "kafka": engine, "cpus": os.cpu_count(),
                                        "started": datetime.now().isoformat(timespec="seconds")}
        self.events_heard: dict[str, tuple[float, str]] = {}  # device → (time, kind) of first event

    async def setup(self) -> None:
        a = self.args
        t = time.perf_counter()
        district = generate_district(min_devices=a.devices, min_sites=max(240, a.devices // 6))
        write_sample(self.work / "district", district)
        self.pipe = PipelineProcesses(self.work / "run", district=self.work / "district", bridges=2, fleet=0,
                             kafka_storage=a.kafka_storage, kafka_engine=self.engine,
                             extra_env=dict(kv.split("=", 1) for kv in a.set))
        await asyncio.to_thread(self.pipe.start)
        conn = await self.pipe.connect()
        try:
            await conn.execute(_TRIGGER)
            from ingest.directory import load_directory

            directory = await load_directory(conn)
            panels = await conn.fetch(
                "SELECT d.id, d.vendor_id FROM devices d JOIN vendors v ON v.id = d.vendor_id "
                "WHERE v.adapter = 'gbt26875' AND d.parent_id IS NULL ORDER BY d.id")
        finally:
            await conn.close()
        self.devices = devices_from_directory(directory)
        self.storm = [(r["id"], r["vendor_id"]) for r in panels[: a.storm]]
        storm_ids = {p for p, _ in self.storm}
        self.steady_devices = [d for d in self.devices if d.device_id not in storm_ids]
        self.results["district"] = {"devices": len(self.devices), "sites": len(district.tables["sites"]),
                                    "fire_panels": len(panels), "setup_s": round(time.perf_counter() - t, 1)}
        print(f"district: {len(self.devices):,} devices, {len(district.tables['sites']):,} sites, {len(panels)} fire "
              f"panels (gbt26875); pipeline up in {time.perf_counter() - t:.0f} s; work dir {self.work}")
        self.listener = await self.pipe.connect()

        def heard(_c: Any, _pid: int, _ch: str, payload: str) -> None:
            device, kind, _id = payload.split(" ", 2)
            self.events_heard.setdefault(device, (time.time(), kind))

        await self.listener.add_listener("bench_events", heard)

    def procs(self) -> dict[str, Any]:
        return dict(self.pipe.processes())

    async def count_readings(self) -> int:
        rows = await self.pipe.fetch("SELECT count(*) AS n FROM readings")
        return int(rows[0]["n"])

    async def detector_stored(self) -> int:
        """Readings the detector has written (its ``hazmon_detector_readings_total``): the
        latency phase samples this, not ``count(*)`` — a scan of a million rows each second
        (parallel workers on both cores) would load the machine the latency is measured on."""
        text = await asyncio.to_thread(self.pipe.stages["detect"].metrics_text)
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("hazmon_detector_readings_total{")))

    # --- phase 1 -------------------------------------------------------------------------
    async def throughput(self) -> None:
        a = self.args
        env = self.pipe.env()
        before = await self.count_readings()
        stats = ProcStats(self.procs())
        sim = HazmonProcess("simulate", ["simulate", "--blast", str(a.messages), "--batch", "10", "--devices",
                                         str(len(self.devices)), "--username", "hazmon-sim",
                                         # "=" form: a generated password may start with "-"
                                         "--password=" + self.pipe.mqtt.users["hazmon-sim"]],
                            self.work / "run" / "stages", env,
                            wait_ready=False)
        stats.begin()
        t_start = time.time()
        await asyncio.to_thread(sim.start)
        stats.procs["publisher"] = sim
        timeline: list[tuple[float, int]] = []
        expected: int | None = None
        last_change = time.time()
        while True:
            n = await self.count_readings() - before
            now = time.time()
            if not timeline or n != timeline[-1][1]:
                last_change = now
            timeline.append((now, n))
            if expected is None and not sim.is_running:
                out = sim.log_path.read_text(errors="replace").strip().splitlines()
                report = next((json.loads(line) for line in reversed(out) if line.startswith("{")), None)
                if report is None:
                    raise RuntimeError(f"simulate failed: {out[-5:]}")
                expected = int(report["readings"])
                pub_report = report
            if expected is not None and n >= expected:
                break
            if expected is not None and now - last_change > 8:  # the rest were duplicate keys (absorbed)
                print(f"  stalled at {n:,} of {expected} readings")
                break
            await asyncio.sleep(0.5)
        procs = stats.end()
        timeline = [x for x in timeline if x[0] <= last_change]
        total = timeline[-1][1]
        dead = await self.pipe.fetch("SELECT reason, count(*) AS n FROM deadletters GROUP BY reason")
        flagged = await self.pipe.fetch(
            "SELECT unnest(flags) AS flag, count(*) AS n FROM readings GROUP BY 1")
        t_first = next(t for t, c in timeline if c > 0)
        t10 = next(t for t, c in timeline if c >= 0.1 * total)
        t90 = next(t for t, c in timeline if c >= 0.9 * total)
        c10 = next(c for t, c in timeline if c >= 0.1 * total)
        c90 = next(c for t, c in timeline if c >= 0.9 * total)
        sustained = (c90 - c10) / max(t90 - t10, 1e-6)
        overall = total / max(last_change - t_start, 1e-6)
        bridge_readings = 0.0
        for name, proc in self.pipe.stages.items():
            if name.startswith("bridge"):
                for line in proc.metrics_text().splitlines():
                    if line.startswith("hazmon_ingest_readings_total "):
                        bridge_readings += float(line.split()[1])
        self.results["throughput"] = {
            "messages": pub_report["published"], "readings_published": expected, "readings_stored": total,
            "publisher_seconds": pub_report["seconds"],
            "publisher_readings_s": round(expected / max(pub_report["seconds"], 1e-6)) if expected else None,
            "sustained_readings_s": round(sustained), "overall_readings_s": round(overall),
            "first_row_after_s": round(t_first - t_start, 2), "all_stored_after_s": round(timeline[-1][0] - t_start, 2),
            "bridge_readings_total": bridge_readings, "processes": procs,
            "deadletters": {r["reason"]: int(r["n"]) for r in dead}, "flagged": {r["flag"]: int(r["n"]) for r in flagged},
        }
        if total < (expected or 0):
            # the detector's counter counts every reading it wrote, also those the primary key
            # absorbed (a blast can repeat a (device, metric, ts): --quick's smaller district)
            handled = await self.detector_stored()
            print(f"  not new rows: {expected - total:,} of {expected:,} readings; bridges produced "
                  f"{bridge_readings:,.0f}; the detector wrote {handled:,} (duplicate keys are absorbed); dead letters "
                  f"{self.results['throughput']['deadletters']}; flags {self.results['throughput']['flagged']}")
        print(f"throughput: {expected:,} readings in {pub_report['published']:,} messages published in "
              f"{pub_report['seconds']:.1f} s; stored {total:,}; sustained {sustained:,.0f} readings/s "
              f"(10→90 %), overall {overall:,.0f} readings/s (first publish → last row)")

    # --- phase 2 -------------------------------------------------------------------------
    async def latency(self) -> None:
        a = self.args
        devices = [(d.device_id, d.vendor, d.adapter, d.domain, d.interval_s) for d in self.steady_devices]
        stats = ProcStats(self.procs())
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        before = await self.detector_stored()
        stats.begin()
        proc = ctx.Process(target=_steady_publisher, args=(self.pipe.mqtt.host, self.pipe.mqtt.port,
                                                           self.pipe.mqtt.users["hazmon-sim"], devices, a.rate,
                                                           a.steady_s, a.storm_at, self.storm, child), daemon=True)
        proc.start()
        stats.procs["publisher"] = _Pid(proc.pid)  # type: ignore[assignment]
        t0 = time.time()
        samples: list[tuple[float, int]] = []
        while proc.is_alive():
            samples.append((time.time(), await self.detector_stored() - before))
            await asyncio.sleep(1.0)
        report = await asyncio.to_thread(parent.recv)
        proc.join(10)
        # wait for the storm's SMS
        storm_pub: dict[str, float] = report["storm"]
        expected_alerts = len(storm_pub)
        sms: list[dict[str, Any]] = []
        alert_dev: dict[str, str] = {}
        deadline = time.time() + 120
        while time.time() < deadline:
            rows = await self.pipe.fetch(
                "SELECT n.id, e.device_id FROM notifications n JOIN events e ON e.id = n.alert_id "
                "WHERE n.channel = 'sms' AND e.device_id = ANY($1::text[])", list(storm_pub))
            alert_dev = {r["id"]: r["device_id"] for r in rows}
            pending = await self.pipe.fetch(
                "SELECT count(*) AS n FROM notifications n JOIN events e ON e.id = n.alert_id "
                "WHERE n.channel = 'sms' AND e.device_id = ANY($1::text[]) AND n.status IN ('pending', 'sending')",
                list(storm_pub))
            devs_notified = set(alert_dev.values())
            if len(devs_notified) >= expected_alerts and int(pending[0]["n"]) == 0:
                break
            await asyncio.sleep(0.5)
        sms = [m for m in await asyncio.to_thread(self.pipe.sms_messages) if m.get("client_ref") in alert_dev]
        procs = stats.end()
        ev_lat = [self.events_heard[d][0] - t for d, t in storm_pub.items() if d in self.events_heard]
        sms_lat = [datetime.fromisoformat(m["at"]).timestamp() - storm_pub[alert_dev[m["client_ref"]]] for m in sms]
        first_sms: dict[str, float] = {}
        for m, lat in zip(sms, sms_lat, strict=True):
            d = alert_dev[m["client_ref"]]
            first_sms[d] = min(first_sms.get(d, float("inf")), lat)
        # where the time goes, per hop: bridge received (device_events.received_at), detector
        # detected (events.detected_at), stored (NOTIFY at commit), SMS (simulator)
        hops = await self.pipe.fetch(
            """SELECT e.device_id, extract(epoch FROM min(de.received_at)) AS received,
                      extract(epoch FROM min(e.detected_at)) AS detected
               FROM events e JOIN device_events de ON de.device_id = e.device_id
               WHERE e.device_id = ANY($1::text[]) GROUP BY e.device_id""", list(storm_pub))
        to_bridge = [float(h["received"]) - storm_pub[h["device_id"]] for h in hops]
        to_detect = [float(h["detected"]) - float(h["received"]) for h in hops]
        to_store = [self.events_heard[h["device_id"]][0] - float(h["detected"]) for h in hops
                    if h["device_id"] in self.events_heard]
        # alerting's part: stored → alerting received the event (alerts.received_at) → its group
        # message queued in the outbox (alerts.notified_at) → first SMS request of that alert
        arows = await self.pipe.fetch(
            """SELECT e.device_id, extract(epoch FROM a.received_at) AS received,
                      extract(epoch FROM a.notified_at) AS queued
               FROM alerts a JOIN events e ON e.id = a.id
               WHERE e.device_id = ANY($1::text[]) AND a.notified_at IS NOT NULL""", list(storm_pub))
        to_alerting = [float(r["received"]) - self.events_heard[r["device_id"]][0] for r in arows
                       if r["device_id"] in self.events_heard]
        to_queued = [float(r["queued"]) - float(r["received"]) for r in arows]
        to_first_sms = [storm_pub[r["device_id"]] + first_sms[r["device_id"]] - float(r["queued"]) for r in arows
                        if r["device_id"] in first_sms]
        stored_to_sms = [storm_pub[d] + first_sms[d] - self.events_heard[d][0] for d in first_sms
                         if d in self.events_heard]
        # publish → first delivery of the alert over each channel: the provider took the request
        # (notifications.sent_at: SMS and voice as the provider accepted them, robots as the
        # group's webhook answered), for every party the matrix names, not only the SMS
        by_channel: dict[str, list[float]] = {}
        for r in await self.pipe.fetch(
                """SELECT n.channel, e.device_id, extract(epoch FROM min(n.sent_at)) AS first
                     FROM notifications n JOIN events e ON e.id = n.alert_id
                    WHERE e.device_id = ANY($1::text[]) AND n.sent_at IS NOT NULL AND n.template <> 'resolved'
                    GROUP BY n.channel, e.device_id""", list(storm_pub)):
            by_channel.setdefault(r["channel"], []).append(float(r["first"]) - storm_pub[r["device_id"]])
        steady = [s for s in samples if s[0] - t0 >= 3.0]
        achieved = (steady[-1][1] - steady[0][1]) / max(steady[-1][0] - steady[0][0], 1e-6) if len(steady) > 1 else 0.0

        def summary(xs: list[float]) -> dict[str, float]:
            return {"n": len(xs), "p50_s": round(pct(xs, 50), 3), "p99_s": round(pct(xs, 99), 3),
                    "max_s": round(max(xs), 3) if xs else float("nan"),
                    "mean_s": round(statistics.fmean(xs), 3) if xs else float("nan")}

        self.results["latency"] = {
            "target_readings_s": a.rate, "published_readings": report["readings"], "published_messages": report["published"],
            "publish_failed": report["failed"], "stored_readings_s": round(achieved), "storm_panels": expected_alerts,
            "events_heard": len(ev_lat), "sms_requests": len(sms),
            "publish_to_event_stored": summary(ev_lat), "publish_to_sms": summary(sms_lat),
            "publish_to_first_sms_per_alert": summary(list(first_sms.values())),
            "publish_to_first_delivery_by_channel": {c: summary(xs) for c, xs in sorted(by_channel.items())},
            "processes": procs,
            "hops": {"publish_to_bridge_received": summary(to_bridge), "bridge_to_detected": summary(to_detect),
                     "detected_to_stored": summary(to_store), "stored_to_alerting_received": summary(to_alerting),
                     "alerting_received_to_queued": summary(to_queued),
                     "queued_to_first_sms_of_alert": summary(to_first_sms),
                     "stored_to_first_sms_of_alert": summary(stored_to_sms)},
        }
        e, s = self.results["latency"]["publish_to_event_stored"], self.results["latency"]["publish_to_sms"]
        print(f"latency at {a.rate:,.0f} readings/s target ({achieved:,.0f} stored/s measured), storm of "
              f"{expected_alerts} fire alarms: publish→event stored p50 {e['p50_s']:.3f} p99 {e['p99_s']:.3f} max "
              f"{e['max_s']:.3f} s ({e['n']}); publish→SMS request p50 {s['p50_s']:.3f} p99 {s['p99_s']:.3f} max "
              f"{s['max_s']:.3f} s ({s['n']} SMS)")
        for channel, c in self.results["latency"]["publish_to_first_delivery_by_channel"].items():
            print(f"  publish→first {channel} delivery of each alert: p50 {c['p50_s']:.3f} p99 {c['p99_s']:.3f} "
                  f"max {c['max_s']:.3f} s ({c['n']} alerts)")

    # --- phase 3 -------------------------------------------------------------------------
    async def baselines(self) -> None:
        a = self.args
        out: dict[str, Any] = {}
        sim = Simulator(self.devices, seed=9, batch=10, start=time.time() - 7200)
        msgs = list(sim.messages(a.baseline_messages, t0=time.time() - 7200, spacing_s=1.0))
        rpm = sum(m.readings for m in msgs) / len(msgs)
        # MQTT: bare paho subscriber draining a queued session (bench_ingest's), same broker
        try:
            from bench_ingest import PAHO_SUB

            mq = self.pipe.mqtt
            root, cid = f"bl{uuid.uuid4().hex[:6]}/v1", f"paho-{uuid.uuid4().hex[:6]}"
            filt = f"$share/gp/{root}/+/+/+"

            def paho(n: int) -> dict[str, Any]:
                done = subprocess.run([sys.executable, "-c", PAHO_SUB, mq.host, str(mq.port), "hazmon-admin",
                                       mq.users["hazmon-admin"], cid, filt, str(n), "2000"],
                                      capture_output=True, text=True, timeout=600, check=True)
                return json.loads(done.stdout)

            await asyncio.to_thread(paho, 0)
            from ingest.mqtt import MqttClient

            t = time.perf_counter()
            async with MqttClient(mq.host, mq.port, client_id=f"bl-pub-{uuid.uuid4().hex[:6]}", username="hazmon-sim",
                                  password=mq.users["hazmon-sim"]) as pub:
                sem = asyncio.Semaphore(1000)
                for m in msgs:
                    await sem.acquire()
                    pub.publish_nowait(root + m.topic.split("hazmon/v1", 1)[1], m.payload, 1).add_done_callback(
                        lambda _f: sem.release())
                for _ in range(1000):
                    await sem.acquire()
            pub_s = time.perf_counter() - t
            st = await asyncio.to_thread(paho, len(msgs))
            sub_msgs_s = (st["count"] - 1) / max(st["last"] - st["first"], 1e-6)
            out["mqtt_publish_readings_s"] = round(len(msgs) * rpm / pub_s)
            out["mqtt_subscribe_readings_s"] = round(sub_msgs_s * rpm)
            out["mqtt_subscribe_msgs_s"] = round(sub_msgs_s)
        except ImportError as exc:
            out["mqtt_error"] = f"bench/bench_ingest.py not importable: {exc}"
        # Kafka and COPY: bench_detectors' functions on its generated 20-reading ReadingBatch records
        from bench_detectors import PER_MSG, generate, produce, raw_consume, raw_copy, rows_of

        kmsgs, n_readings = generate(min(len(self.devices), 10_000), a.baseline_readings)
        topics = Topics(f"bl{uuid.uuid4().hex[:8]}")
        await create_topics_async(self.pipe.kafka_bootstrap, topics, partitions=4)
        dt = await produce(self.pipe.kafka_bootstrap, topics.readings, kmsgs)
        out["kafka_produce_readings_s"] = round(n_readings / dt)
        dt = await raw_consume(self.pipe.kafka_bootstrap, topics.readings, len(kmsgs))
        out["kafka_consume_readings_s"] = round(n_readings / dt)
        rows = rows_of(kmsgs)
        dt = await raw_copy(self.pipe.dsn, rows)
        out["pg_copy_rows_s"] = round(len(rows) / dt)
        out["readings_per_kafka_record"] = PER_MSG
        out["readings_per_mqtt_message"] = round(rpm, 1)
        self.results["baselines"] = out
        print("baselines: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in out.items()))

    # --- report --------------------------------------------------------------------------
    def ratios(self) -> None:
        b = self.results.get("baselines", {})
        tp = self.results.get("throughput", {})
        e2e = tp.get("sustained_readings_s") or 0
        r: dict[str, float] = {}
        for key in ("mqtt_subscribe_readings_s", "kafka_produce_readings_s", "kafka_consume_readings_s", "pg_copy_rows_s"):
            if b.get(key):
                r[f"e2e / {key}"] = round(e2e / b[key], 3)
        slowest = min((b[k] for k in ("mqtt_subscribe_readings_s", "kafka_produce_readings_s", "kafka_consume_readings_s",
                                      "pg_copy_rows_s") if b.get(k)), default=0)
        if slowest:
            r["e2e / slowest baseline"] = round(e2e / slowest, 3)
        self.results["ratios"] = r
        lat = self.results.get("latency", {})
        self.results["targets"] = {
            "sustained_ge_20000_readings_s": e2e >= 20_000,
            "p99_publish_to_sms_lt_1s": (lat.get("publish_to_sms", {}).get("p99_s", 99) < 1.0),
        }

    def table(self) -> str:
        res = self.results
        tp, lat, b = res.get("throughput", {}), res.get("latency", {}), res.get("baselines", {})
        lines = ["", "=== hazmon whole-pipeline benchmark ===",
                 f"district {res['district']['devices']:,} devices; {res['cpus']} CPUs; 2 bridges; "
                 f"Kafka {res['kafka']}" + (f" (storage {res['args']['kafka_storage']})"
                                            if res["kafka"] == "tansu" else ""),
                 "", f"{'figure':<48}{'value':>16}"]

        def row(name: str, v: Any, unit: str = "") -> None:
            lines.append(f"{name:<48}{(f'{v:,.0f}' if isinstance(v, (int, float)) and abs(v) >= 100 else str(v)):>16} {unit}")

        row("sustained end to end (10→90 % of stored)", tp.get("sustained_readings_s"), "readings/s")
        row("overall (first publish → last row)", tp.get("overall_readings_s"), "readings/s")
        row("publisher (hazmon simulate --blast)", tp.get("publisher_readings_s"), "readings/s")
        for k in ("mqtt_subscribe_readings_s", "mqtt_publish_readings_s", "kafka_produce_readings_s",
                  "kafka_consume_readings_s", "pg_copy_rows_s"):
            row(f"baseline {k}", b.get(k), "")
        for k, v in res.get("ratios", {}).items():
            row(f"ratio {k}", v)
        if lat:
            row(f"steady load: stored readings/s (target {lat['target_readings_s']:,.0f})", lat["stored_readings_s"])
            rows = [(k, lat[k]) for k in ("publish_to_event_stored", "publish_to_sms", "publish_to_first_sms_per_alert")]
            rows += [(f"  first {k} delivery of each alert", v)
                     for k, v in lat.get("publish_to_first_delivery_by_channel", {}).items()]
            rows += [(f"  hop {k}", v) for k, v in lat.get("hops", {}).items()]
            for k, v in rows:
                lines.append(f"{k:<48}p50 {v['p50_s']:.3f}  p99 {v['p99_s']:.3f}  max {v['max_s']:.3f} s  (n={v['n']})")
        for phase in ("throughput", "latency"):
            procs = res.get(phase, {}).get("processes", {})
            if procs:
                lines.append(f"-- {phase}: CPU % of one core / peak RSS MiB")
                lines.append("   " + "; ".join(f"{n} {v['cpu_pct']:.0f}% {v['peak_rss_mib']:.0f}" for n, v in procs.items()))
        lines.append(f"targets: {res.get('targets')}")
        return "\n".join(lines)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_event_loop()
        self.pipe.stop()


def _with_broker_properties(extra: dict[str, str]) -> None:
    """``--broker``: these properties on every Apache Kafka node of this run (tuning trials)."""
    if not extra:
        return
    from hazmon.stack.apache_kafka import KafkaNode

    base = KafkaNode.properties

    def properties(self: Any) -> dict[str, str]:
        return {**base(self), **extra}

    KafkaNode.properties = properties  # type: ignore[method-assign]


async def run_one(args: argparse.Namespace, engine: str) -> dict[str, Any]:
    print(f"=== Kafka {engine} ===", flush=True)
    bench = Bench(args, engine)
    try:
        await bench.setup()
        await bench.throughput()
        await bench.latency()
        await bench.baselines()
        bench.ratios()
    finally:
        with contextlib.suppress(Exception):
            await bench.listener.close()
        await asyncio.to_thread(bench.close)
    print(bench.table(), flush=True)
    return bench.results


def side_by_side(runs: dict[str, dict[str, Any]]) -> str:
    """The engines' figures in columns: throughput, ratio to COPY, latency, hop medians, CPU/RSS."""
    names = list(runs)
    w = 22
    lines = ["", "=== side by side (" + ", ".join(names) + ") ===",
             f"{'':<44}" + "".join(f"{n:>{w}}" for n in names)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"{label:<44}" + "".join(f"{c:>{w}}" for c in cells))

    def get(r: dict[str, Any], *path: str) -> Any:
        for k in path:
            r = r.get(k, {}) if isinstance(r, dict) else {}
        return r if r != {} else None

    def num(v: Any, fmt: str = ",.0f") -> str:
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    row("sustained readings/s", [num(get(r, "throughput", "sustained_readings_s")) for r in runs.values()])
    row("bare COPY rows/s (same run)", [num(get(r, "baselines", "pg_copy_rows_s")) for r in runs.values()])
    row("sustained ÷ COPY", [num(get(r, "ratios", "e2e / pg_copy_rows_s"), ".3f") for r in runs.values()])
    row("bare aiokafka produce readings/s", [num(get(r, "baselines", "kafka_produce_readings_s"))
                                             for r in runs.values()])
    row("steady phase stored readings/s", [num(get(r, "latency", "stored_readings_s"))
                                           for r in runs.values()])
    for key, label in (("publish_to_event_stored", "publish → event stored"),
                       ("publish_to_first_sms_per_alert", "publish → first SMS")):
        row(f"{label} p50 / p99 s", [f"{num(get(r, 'latency', key, 'p50_s'), '.3f')} / "
                                     f"{num(get(r, 'latency', key, 'p99_s'), '.3f')}" for r in runs.values()])
    for key, label in (("publish_to_bridge_received", "publish → bridge"),
                       ("bridge_to_detected", "bridge → detected"),
                       ("detected_to_stored", "detected → stored"),
                       ("stored_to_first_sms_of_alert", "stored → SMS")):
        row(f"  hop {label} p50 (p99) s", [f"{num(get(r, 'latency', 'hops', key, 'p50_s'), '.3f')} "
                                           f"({num(get(r, 'latency', 'hops', key, 'p99_s'), '.3f')})"
                                           for r in runs.values()])
    for phase in ("throughput", "latency"):
        procs: list[str] = []
        for r in runs.values():
            procs += [p for p in (get(r, phase, "processes") or {}) if p not in procs]
        lines.append(f"-- {phase} phase: CPU % of one core / peak RSS MiB")
        for p in procs:
            cells = [get(r, phase, "processes", p) for r in runs.values()]
            row(f"  {p}", [f"{v['cpu_pct']:.0f}% / {v['peak_rss_mib']:.0f}" if v else "-" for v in cells])
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> int:
    _with_broker_properties(dict(kv.split("=", 1) for kv in args.broker))
    engines = ["tansu", "apache", "apache3"] if args.kafka == "all" else [args.kafka]
    runs: dict[str, dict[str, Any]] = {}
    for engine in engines:
        runs[engine] = await run_one(args, engine)
    if len(runs) > 1:
        print(side_by_side(runs))
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"pipeline-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out = runs[engines[0]] if len(runs) == 1 else {"runs": runs}
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"results: {path}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 devices, shorter phases")
    ap.add_argument("--devices", type=int, default=None, help="district size (default 10,000; --quick 2,000)")
    ap.add_argument("--messages", type=int, default=None, help="throughput phase: gateway messages (default 30,000)")
    ap.add_argument("--kafka-storage", choices=("memory", "s3"), default="memory",
                    help="Tansu storage (s3: on the local moto server, what the fault tests kill; default memory)")
    ap.add_argument("--kafka", choices=("tansu", "apache", "apache3", "all"), default="tansu",
                    help="the broker: Tansu, one Apache Kafka node, three (RF 3, min ISR 2), or all in turn")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a HAZMON_* setting for every stage (repeatable), e.g. HAZMON_KAFKA__LINGER_MS=0")
    ap.add_argument("--broker", action="append", default=[], metavar="KEY=VALUE",
                    help="a property for every Apache Kafka node (repeatable): replica.fetch.wait.max.ms=50")
    ap.add_argument("--rate", type=float, default=5000.0, help="latency phase: steady readings/s")
    ap.add_argument("--steady-s", type=float, default=None, help="latency phase duration (default 40 s; --quick 20)")
    ap.add_argument("--storm", type=int, default=None, help="fire panels alarming at once (default 100; --quick 30)")
    ap.add_argument("--storm-at", type=float, default=None, help="seconds into the steady phase (default half)")
    ap.add_argument("--baseline-messages", type=int, default=None, help="MQTT baseline messages (default 20,000)")
    ap.add_argument("--baseline-readings", type=int, default=None, help="Kafka/COPY baseline readings (default 400,000)")
    a = ap.parse_args()
    q = a.quick
    a.devices = a.devices or (2_000 if q else 10_000)
    a.messages = a.messages or (8_000 if q else 30_000)
    a.steady_s = a.steady_s or (20.0 if q else 40.0)
    a.storm = a.storm if a.storm is not None else (30 if q else 100)
    a.storm_at = a.storm_at if a.storm_at is not None else a.steady_s / 2
    a.baseline_messages = a.baseline_messages or (5_000 if q else 20_000)
    a.baseline_readings = a.baseline_readings or (100_000 if q else 400_000)
    return asyncio.run(amain(a))


if __name__ == "__main__":
    sys.exit(main())
