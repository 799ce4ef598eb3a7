"""Bad input at scale, through the whole pipeline: 10,000 MQTT messages of which 5 % are bad —
malformed JSON, oversized payloads, future-dated readings, exact duplicates and unknown devices —
interleaved with good ones. Every message is accounted for, exactly:

* good message → its 2 readings in ``readings``;
* future-dated (device clock a day ahead) → stored, time clamped to the received time and
  flagged ``ts_future`` (a reading is never silently dropped, DOMAIN: 报警全处置 needs the data);
* duplicate (the same bytes published twice) → absorbed by the (device, metric, ts) key: no row;
* malformed / oversized / unknown device → one row each in ``deadletters`` with that reason
  and a detail (written by the detector from the dead-letter topic), raw bytes kept (an
  oversized payload's cut at the 256 KiB cap);

so ``rows = 2 × (good + future)`` and ``dead letters by reason`` match the counts sent, and no
stage crashed: every process still runs and its metrics endpoint answers.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from ingest.mqtt import MqttClient
from sim.harness import TOPIC_ROOT, PipelineProcesses, wait_until

TOTAL = 10_000
BAD = {"malformed": 120, "oversized": 20, "future": 120, "duplicate": 120, "unknown_device": 120}  # 500 = 5 %
VENDOR = "sim-hazmon-json"


def _good(device: str, ts: float, rng: random.Random) -> bytes:
    return json.dumps({"readings": [{"metric": "gas_lel", "value": round(rng.uniform(0.2, 3.0), 2), "ts": ts},
                                    {"metric": "battery_pct", "value": float(rng.randint(60, 99)), "ts": ts}]},
                      separators=(",", ":")).encode()


def _stream(devices: list[str], rng: random.Random) -> tuple[list[tuple[str, bytes, str]], dict[str, int]]:
    """(topic, payload, kind) in publish order, and the number of each kind."""
    n_good = TOTAL - sum(BAD.values())
    base = time.time() - 600.0
    good: list[tuple[str, bytes, str]] = []
    for i in range(n_good):
        dev = devices[i % len(devices)]
        ts = round(base + (i // len(devices)) * 0.5 + (i % len(devices)) * 0.0001, 4)
        good.append((f"{TOPIC_ROOT}/{VENDOR}/{dev}/telemetry", _good(dev, ts, rng), "good"))
    bad: list[tuple[str, bytes, str]] = []
    for i in range(BAD["malformed"]):
        dev = devices[i % len(devices)]
        bad.append((f"{TOPIC_ROOT}/{VENDOR}/{dev}/telemetry", b'{"readings": [{"metric": "gas_lel", "value": ' +
                    str(i).encode() + b", ", "malformed"))
    for i in range(BAD["oversized"]):
        dev = devices[i % len(devices)]
        pad = "x" * (300 * 1024)
        bad.append((f"{TOPIC_ROOT}/{VENDOR}/{dev}/telemetry",
                    json.dumps({"readings": [{"metric": "gas_lel", "value": 1.0, "ts": base + i}], "pad": f"{i}{pad}"}).encode(),
                    "oversized"))
    for i in range(BAD["future"]):
        dev = devices[(i * 7) % len(devices)]
        bad.append((f"{TOPIC_ROOT}/{VENDOR}/{dev}/telemetry", _good(dev, time.time() + 86400 + i, rng), "future"))
    for i in rng.sample(range(n_good), BAD["duplicate"]):
        topic, payload, _ = good[i]
        bad.append((topic, payload, "duplicate"))
    for i in range(BAD["unknown_device"]):
        bad.append((f"{TOPIC_ROOT}/{VENDOR}/NOPE-{i:05d}/telemetry", _good(f"NOPE-{i:05d}", base + i, rng), "unknown_device"))
    stream = good + bad
    rng.shuffle(stream)
    # a duplicate must come after its original to be "the second copy"; order does not matter
    # for the accounting (the first one stored wins, the other is absorbed)
    counts = {"good": n_good, **BAD}
    return stream, counts


async def _publish(p: PipelineProcesses, stream: list[tuple[str, bytes, str]]) -> int:
    failed = 0
    async with MqttClient(p.mqtt.host, p.mqtt.port, client_id="", username="hazmon-sim",
                          password=p.mqtt.users["hazmon-sim"]) as client:
        sem = asyncio.Semaphore(500)

        def done(fut: asyncio.Future[Any]) -> None:
            nonlocal failed
            sem.release()
            if fut.cancelled() or fut.exception() is not None:
                failed += 1

        for topic, payload, _ in stream:
            await sem.acquire()
            client.publish_nowait(topic, payload, 1).add_done_callback(done)
        for _ in range(500):
            await sem.acquire()
    return failed


async def test_five_percent_bad_input_every_message_accounted_for(live_pipeline: PipelineProcesses) -> None:
    p = live_pipeline
    devices = [d.device_id for d in p.fleet_devices()[500:1000]]
    rng = random.Random(2024)
    stream, counts = _stream(devices, rng)
    topics = sorted({t for t, _, _ in stream})
    failed = await _publish(p, stream)
    assert failed == 0, f"{failed} publishes not acknowledged by the broker"

    want_rows = 2 * (counts["good"] + counts["future"])
    want_dead = {"malformed": counts["malformed"], "oversized": counts["oversized"],
                 "unknown_device": counts["unknown_device"]}
    state: dict[str, Any] = {}

    async def accounted() -> bool:
        rows = await p.fetch(
            """SELECT count(*) AS n, count(*) FILTER (WHERE 'ts_future' = ANY(flags)) AS future,
                      count(DISTINCT (device_id, metric, ts)) AS distinct_keys
               FROM readings WHERE device_id = ANY($1::text[])""", devices)
        dead = await p.fetch("SELECT reason, count(*) AS n FROM deadletters WHERE source = ANY($1::text[]) GROUP BY reason",
                             topics)
        state.update(rows=dict(rows[0]), dead={r["reason"]: int(r["n"]) for r in dead})
        return int(rows[0]["n"]) >= want_rows and sum(state["dead"].values()) >= sum(want_dead.values())

    try:
        waited = await wait_until(accounted, 180.0, 0.5, "bad-input stream accounted for")
    except TimeoutError:
        waited = float("nan")
    await asyncio.sleep(2.0)  # anything beyond the expected counts would arrive now
    await accounted()
    print(f"\n[bad input] sent {counts} ({len(stream)} messages); accounted for after {waited:.1f} s: "
          f"readings {state['rows']}, dead letters {state['dead']}")
    assert int(state["rows"]["n"]) == want_rows == int(state["rows"]["distinct_keys"])
    assert int(state["rows"]["future"]) == 2 * counts["future"]
    assert state["dead"] == want_dead
    # raw bytes kept with every dead letter (an oversized one cut at the cap), reasons explained
    kept = await p.fetch(
        "SELECT reason, min(length(raw)) AS shortest, max(length(raw)) AS longest, min(length(detail)) AS detail "
        "FROM deadletters WHERE source = ANY($1::text[]) GROUP BY reason", topics)
    by_reason = {r["reason"]: r for r in kept}
    assert by_reason["oversized"]["shortest"] == by_reason["oversized"]["longest"] == 256 * 1024
    assert all(r["shortest"] > 0 and r["detail"] > 0 for r in kept), [dict(r) for r in kept]
    assert not p.crashed_stages(), f"stages exited: {p.crashed_stages()}"
    assert all(p.metrics_answer().values()), p.metrics_answer()
