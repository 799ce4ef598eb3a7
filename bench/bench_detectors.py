"""Benchmark of the detector stage: consume → detect → store, against raw baselines measured
in the same run.

    .venv/bin/python bench/bench_detectors.py                      # 1,000,000 readings, 10,000 devices
    .venv/bin/python bench/bench_detectors.py --readings 200000    # quicker

Steps (each printed):
1. generate ReadingBatch messages (20 readings each: gas 60 %, elevator 25 %, fire analogue 15 %,
   with a few leaks and traps so events are produced) and produce them into a fresh topic;
2. raw baseline A: a bare aiokafka consumer reading that topic (no decoding);
3. raw baseline B: a bare asyncpg binary COPY of the same rows into a table shaped like
   ``readings`` (same primary key and index), in batches the size of the stage's, with the
   same column list the stage uses for clean rows (flags left to its default);
4. detection alone: ``Engine.process`` in-process on the same messages (decode + validate + detect);
5. the whole stage: :class:`DetectorService` in a child process from offset 0 until every
   reading is stored; its peak RSS is reported per 10,000 devices.

Ratios: stage / slower raw baseline (target ≥ 0.5); detection readings/s (target ≥ 50,000).

``--storage-only`` (no Kafka; docs/timescaledb.md compares it with and without TimescaleDB): the
raw COPY into a plain table shaped like ``readings``, the raw COPY into ``readings`` itself (a
hypertable where the migration enabled TimescaleDB) and the storage writer alone
(``Storage.write`` of the engine's outputs, detection done beforehand), readings of the last hours.
Kafka: ``--bootstrap`` or an embedded Tansu (memory storage); PostgreSQL: ``--dsn`` server
(default the local one) — a scratch database is created, migrated and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
import numpy as np

from detectors.decode import WireBatch, WireSample
from detectors.engine import Engine, Message
from detectors.storage import CLEAN_COLUMNS, Storage
from hazmon.db import migrate
from hazmon.topics import Topics

PER_MSG = 20
BATCH_RECORDS = 2000


def generate(devices: int, readings: int, seed: int = 1,
             t0: datetime = datetime(2026, 6, 1, tzinfo=UTC)) -> tuple[list[tuple[str, bytes]], int]:
    """Messages (key, value) in arrival order; returns them and the number of readings."""
    rng = np.random.default_rng(seed)
    n_msgs = readings // PER_MSG
    kinds = np.where(np.arange(devices) < devices * 0.6, 0, np.where(np.arange(devices) < devices * 0.85, 1, 2))
    names = [("gas", "elevator", "fire")[k] + f"-{i:06d}" for i, k in enumerate(kinds)]
    leak = set(rng.choice(np.flatnonzero(kinds == 0), size=max(1, devices // 200), replace=False).tolist())
    rounds = -(-n_msgs // devices)
    enc = msgspec.json.Encoder()
    out: list[tuple[str, bytes]] = []
    for r in range(rounds):
        for i in range(devices):
            if len(out) >= n_msgs:
                break
            dev = names[i]
            base = t0 + timedelta(seconds=r * PER_MSG * 30)
            k = kinds[i]
            if k == 0:  # gas: 20 readings, 30 s apart
                vals = np.clip(rng.normal(2.0, 0.6, PER_MSG), 0, None)
                if i in leak and r == rounds // 2:
                    vals = np.linspace(5, 65, PER_MSG)
                samples = [WireSample("gas_lel", round(float(v), 2), base + timedelta(seconds=30 * j), "%LEL", r * PER_MSG + j)
                           for j, v in enumerate(vals)]
                dom = "gas"
            elif k == 1:  # elevator: 4 snapshots × 5 metrics
                samples = []
                for j in range(4):
                    ts = base + timedelta(seconds=150 * j)
                    moving = float((r + j + i) % 2)
                    for metric, v in (("car_running", moving), ("door_open", 0.0), ("door_zone", 1.0 - moving),
                                      ("speed_mps", 1.0 * moving), ("person_in_car", float(j % 2))):
                        samples.append(WireSample(metric, v, ts, "m/s" if metric == "speed_mps" else ""))
                dom = "elevator"
            else:  # fire analogue heat detector
                vals = rng.normal(22.0, 0.2, PER_MSG)
                samples = [WireSample("temperature_c", round(float(v), 2), base + timedelta(seconds=30 * j), "°C")
                           for j, v in enumerate(vals)]
                dom = "fire"
            received = samples[-1].ts + timedelta(seconds=1)
            b = WireBatch(device_id=dev, site_id=f"site-{i // 3:05d}", domain=dom, vendor="bench",
                          received_at=received, samples=samples, model="B-1", source="bench")
            out.append((dev, enc.encode(b)))
    return out, len(out) * PER_MSG


async def produce(bootstrap: str, topic: str, msgs: list[tuple[str, bytes]]) -> float:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=20,
                         max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024)
    await p.start()
    t = time.perf_counter()
    try:
        futs = [await p.send(topic, v, key=k.encode()) for k, v in msgs]
        await asyncio.gather(*futs)
    finally:
        await p.stop()
    return time.perf_counter() - t


async def raw_consume(bootstrap: str, topic: str, expect: int) -> float:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex[:6]}",
                         auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=BATCH_RECORDS,
                         fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024)
    await c.start()
    n = 0
    t = 0.0
    try:
        while n < expect:
            got = await c.getmany(timeout_ms=1000, max_records=BATCH_RECORDS)
            if got and not t:
                t = time.perf_counter()
            n += sum(len(v) for v in got.values())
        return time.perf_counter() - t
    finally:
        await c.stop()


def _raw_consume_child(bootstrap: str, topic: str, expect: int, conn_out: object) -> None:
    dt = asyncio.run(raw_consume(bootstrap, topic, expect))
    conn_out.send({"seconds": dt, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})  # type: ignore[attr-defined]


def _in_child(target: object, *args: object) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def rows_of(msgs: list[tuple[str, bytes]]) -> list[tuple]:
    dec = msgspec.json.Decoder(WireBatch)
    rows = []
    for _k, v in msgs:
        b = dec.decode(v)
        rows.extend((b.device_id, s.metric, s.ts, s.value, s.unit, s.seq, b.received_at) for s in b.samples)
    return rows


async def raw_copy(dsn: str, rows: list[tuple], table: str = "bench_raw_readings") -> float:
    """COPY ``rows`` into a fresh plain table shaped like ``readings``, or into ``readings``
    itself (emptied afterwards)."""
    conn = await asyncpg.connect(dsn)
    try:
        if table != "readings":
            await conn.execute(f"CREATE TABLE {table} (LIKE readings INCLUDING ALL)")
        step = BATCH_RECORDS * PER_MSG
        t = time.perf_counter()
        for k in range(0, len(rows), step):
            await conn.copy_records_to_table(table, records=rows[k:k + step], columns=CLEAN_COLUMNS)
        dt = time.perf_counter() - t
        await conn.execute(f"DROP TABLE {table}" if table != "readings" else "TRUNCATE readings")
        return dt
    finally:
        await conn.close()


async def storage_write(dsn: str, msgs: list[tuple[str, bytes]]) -> tuple[float, int]:
    """The storage writer alone: ``Storage.write`` of each batch's engine output (detected first)."""
    engine = Engine()
    outs = [engine.process([Message(v, f"bench:0:{k + i}")
                            for i, (_key, v) in enumerate(msgs[k:k + BATCH_RECORDS])])
            for k in range(0, len(msgs), BATCH_RECORDS)]
    conn = await asyncpg.connect(dsn)
    try:
        storage = Storage(conn)
        await storage.prepare()
        n = 0
        t = time.perf_counter()
        for out in outs:
            n += (await storage.write(out)).readings
        await storage.flush()
        return time.perf_counter() - t, n
    finally:
        await conn.close()


async def storage_only(dsn: str, devices: int, readings: int, timescale: bool) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    msgs, n_readings = generate(devices, readings, t0=t0)
    rows = rows_of(msgs)
    print(f"{n_readings:,} readings of {devices:,} devices from {t0:%Y-%m-%d %H:%M} UTC; "
          f"readings is {'a hypertable (TimescaleDB)' if timescale else 'a plain table'}")
    for table, what in (("bench_raw_readings", "plain table"), ("readings", "readings")):
        dt = await raw_copy(dsn, rows, table)
        print(f"raw asyncpg COPY into {what:<11}: {len(rows) / dt:>11,.0f} rows/s  ({dt:.2f} s)")
    dt, n = await storage_write(dsn, msgs)
    print(f"storage write (Storage.write)    : {n / dt:>11,.0f} rows/s  "
          f"({dt:.2f} s, {-(-len(msgs) // BATCH_RECORDS)} batches)")


def detect_only(msgs: list[tuple[str, bytes]]) -> tuple[float, int]:
    from detectors.service import tune_gc

    tune_gc()  # as the service does
    engine = Engine()
    events = 0
    t = time.perf_counter()
    for k in range(0, len(msgs), BATCH_RECORDS):
        batch = [Message(v, f"bench:0:{k + i}") for i, (_key, v) in enumerate(msgs[k:k + BATCH_RECORDS])]
        events += len(engine.process(batch).events)
    return time.perf_counter() - t, events


def _stage_child(bootstrap: str, prefix: str, dsn: str, readings: int, conn_out: object) -> None:
    from detectors.service import DetectorService
    from hazmon.settings import DetectorSettings, KafkaSettings, PostgresSettings, Settings

    settings = Settings(kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
                        postgres=PostgresSettings(dsn=dsn), detectors_file=Path("/nonexistent"))
    svc = DetectorService(settings, DetectorSettings(group_id="bench-stage", max_records=BATCH_RECORDS,
                                                   stop_after_readings=readings, idle_exit_s=30))
    stats = asyncio.run(svc.run())
    engine = svc.engine
    conn_out.send({  # type: ignore[attr-defined]
        "readings": stats.readings, "events": stats.events, "batches": stats.batches, "seconds": stats.last_record - stats.first_record,
        "detect_s": stats.detect_s, "write_s": stats.write_s,
        "state_bytes": engine.state_bytes() if engine else 0, "devices": len(engine.devices) if engine else 0,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    })


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--bootstrap", default=None, help="Kafka bootstrap (default: embedded Tansu)")
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres", help="PostgreSQL server DSN")
    ap.add_argument("--storage-only", action="store_true",
                    help="only the raw COPYs and the storage writer (no Kafka, no stage)")
    args = ap.parse_args()

    if args.storage_only:
        return await _storage_only_main(args)
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from hazmon.stack import KafkaBroker

        broker = KafkaBroker(Path(tempfile.mkdtemp(prefix="bench-kafka-")))
        broker.start()
        bootstrap = broker.bootstrap
    dbname = f"bench_det_{os.getpid()}"
    server = await asyncpg.connect(args.dsn)
    await server.execute(f'CREATE DATABASE "{dbname}"')
    await server.close()
    dsn = args.dsn.rsplit("/", 1)[0] + f"/{dbname}"
    try:
        await migrate(dsn, timescale=True)
        from hazmon.stack import create_topics_async

        topics = Topics(f"bench{uuid.uuid4().hex[:8]}")
        await create_topics_async(bootstrap, topics, partitions=4)

        t = time.perf_counter()
        msgs, n_readings = generate(args.devices, args.readings)
        print(f"generated {len(msgs):,} messages / {n_readings:,} readings from {args.devices:,} devices "
              f"in {time.perf_counter() - t:.1f} s ({sum(len(v) for _, v in msgs) / len(msgs):.0f} B/message)")
        dt = await produce(bootstrap, topics.readings, msgs)
        print(f"produced into {topics.readings}: {len(msgs) / dt:,.0f} msg/s")

        raw = _in_child(_raw_consume_child, bootstrap, topics.readings, len(msgs))
        dt = raw["seconds"]
        raw_kafka = n_readings / dt
        print(f"raw A  bare aiokafka consume : {len(msgs) / dt:>11,.0f} msg/s = {raw_kafka:>11,.0f} readings/s"
              f"   (child process peak RSS {raw['maxrss_kb'] / 1024:.0f} MiB)")

        rows = rows_of(msgs)
        dt = await raw_copy(dsn, rows)
        raw_pg = len(rows) / dt
        print(f"raw B  bare asyncpg COPY     : {raw_pg:>11,.0f} rows/s   (PK + ts index, {BATCH_RECORDS * PER_MSG:,} rows/COPY)")
        del rows

        dt, events = detect_only(msgs)
        detect = n_readings / dt
        print(f"detection alone (decode+detect, in-process): {detect:>11,.0f} readings/s   events={events}")

        result = _in_child(_stage_child, bootstrap, topics.prefix, dsn, n_readings)
        stage = result["readings"] / result["seconds"]
        slower = min(raw_kafka, raw_pg)
        print(f"whole stage (consume→detect→produce→COPY→commit): {stage:>11,.0f} readings/s "
              f"({result['readings']:,} readings, {result['events']} events, {result['seconds']:.1f} s; "
              f"{result['batches']} batches; detect {result['detect_s']:.1f} s, write {result['write_s']:.1f} s, overlapped)")
        print("ratios:")
        print(f"  stage / slower raw baseline ({'kafka' if raw_kafka < raw_pg else 'COPY'}) = {stage / slower:.2f}   (target ≥ 0.5)")
        print(f"  stage / raw COPY = {stage / raw_pg:.2f}   stage / raw consume = {stage / raw_kafka:.2f}")
        print(f"  detection / 50,000 target = {detect / 50_000:.1f}x")
        per10k = result["maxrss_kb"] / 1024 * 10_000 / max(1, result["devices"])
        print(f"peak RSS of the stage process: {result['maxrss_kb'] / 1024:.0f} MiB for {result['devices']:,} devices "
              f"= {per10k:.0f} MiB per 10,000 devices (numpy state {result['state_bytes'] / 2**20:.1f} MiB; "
              f"the bare consumer alone peaked at {raw['maxrss_kb'] / 1024:.0f} MiB on the same backlog)")
        return 0
    finally:
        server = await asyncpg.connect(args.dsn)
        await server.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await server.close()
        if broker is not None:
            broker.stop()


async def _storage_only_main(args: argparse.Namespace) -> int:
    dbname = f"bench_store_{os.getpid()}"
    server = await asyncpg.connect(args.dsn)
    await server.execute(f'CREATE DATABASE "{dbname}"')
    await server.close()
    dsn = args.dsn.rsplit("/", 1)[0] + f"/{dbname}"
    try:
        report = await migrate(dsn, timescale=True)
        await storage_only(dsn, args.devices, args.readings, report.timescale)
        return 0
    finally:
        server = await asyncpg.connect(args.dsn)
        await server.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
