"""The canary at the bridge and the detector (issue 20): the bridge stamps a canary's readings
batch with its instance and forwards nothing else of it; the detector announces it
(``system.canary``, after the store) and never stores, detects or counts it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from detectors.engine import Engine, Message
from detectors.state import DeviceMeta
from hazmon.contracts import Event, ReadingBatch, Sample
from hazmon.topics import Topics
from ingest.canary_formats import encode
from ingest.directory import DeviceInfo, Directory, VendorInfo
from ingest.pipeline import Pipeline

pytestmark = pytest.mark.watchdog

T = Topics("t")
NOW = time.time()


def test_the_bridge_stamps_a_canary_with_its_instance_and_forwards_only_its_readings() -> None:
    directory = Directory.build([VendorInfo("acme", "gasjson")],
                                [DeviceInfo("cn-gas", "acme", "S-C", "gas", is_canary=True),
                                 DeviceInfo("gas-1", "acme", "S-1", "gas")])
    p = Pipeline(directory, T, instance="bridge-2")
    payload, seq = encode("gasjson", "cn-gas", "gas", NOW)
    out = p.process("hazmon/v1/acme/cn-gas/telemetry", payload, NOW + 0.2)
    assert [r.topic for r in out] == [T.readings]  # the device events gasjson also yields: not forwarded
    batch = ReadingBatch.model_validate_json(out[0].value)
    assert batch.bridge == "bridge-2" and {s.seq for s in batch.samples} == {seq}
    # an ordinary device's batch carries no bridge, and its alarms go on as ever
    normal = p.process("hazmon/v1/acme/gas-1/telemetry", encode("gasjson", "gas-1", "gas", NOW)[0], NOW + 0.2)
    assert T.device_events in {r.topic for r in normal}
    assert json.loads(next(r.value for r in normal if r.topic == T.readings)).get("bridge") is None


def test_the_detector_announces_a_canary_and_stores_nothing_of_it() -> None:
    meta = {"cn-gas": DeviceMeta(site_id="S-C", domain="gas", is_canary=True)}
    engine = Engine(meta=meta.get)
    ts = datetime.fromtimestamp(int(NOW), UTC)
    rb = ReadingBatch(device_id="cn-gas", site_id="S-C", domain="gas", vendor="acme", bridge="1",
                      received_at=ts, samples=(Sample(metric="gas_lel", value=80.0, ts=ts, seq=42),))
    out = engine.process([Message(rb.model_dump_json().encode(), "t:0:0")])
    assert out.readings == [] and out.flagged_readings == [] and out.latest == {} and out.seen == {}
    assert out.events == []  # 80 %LEL on a canary is no gas alarm
    (ev,) = out.canaries
    assert isinstance(ev, Event) and ev.kind == "system.canary" and ev.domain == "system"
    assert (ev.device_id, ev.starts_at, ev.received_at, ev.labels["seq"], ev.labels["bridge"]) == (
        "cn-gas", ts, ts, "42", "1")
    assert engine.devices.get("cn-gas") is None  # never a device of presence or detection
