"""The canary through the real path (issue 20 item 1), on a whole pipeline of its own: mosquitto,
two bridges, Tansu, the detector, PostgreSQL, alerting and the SMS/voice gateway simulator as
processes (sim/harness.py), the sample district plus one canary per adapter family it uses
(``is_canary`` in devices.csv, through ``hazmon registry`` import) at the site
区应急指挥中心监测系统, whose contacts are the centre's duty operator and the duty leader, and
``hazmon canary`` publishing them every 10 s.

One pipeline for the module (the tests run in order, each leaving it whole): the canary arrives
with the stamps of every hop and is no business data; the detector killed → 监测链路中断 within
60 s at the duty operator's and the duty leader's phones by SMS and a call, naming 检测服务, then
exactly one 恢复 after the restart; the detector crash-looping → the same, naming its restarts;
mosquitto killed → naming MQTT; one bridge of two killed → 监测链路降级 on the console, no SMS, no
call. What the phones received is read from the simulator.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hazmon.procs import HazmonProcess
from hazmon.stack import SIM_USER
from sim.harness import SAMPLE_DISTRICT, PipelineProcesses, http_json, wait_until

pytestmark = [pytest.mark.watchdog, pytest.mark.fault, pytest.mark.timeout(900)]

ROUTES = Path(__file__).with_name("routes_canary.yaml")
DUTY = "13900000000"  # routes_canary.yaml's duty operator, also the canary site's 值班员
LEADER = "13900000099"  # the canary site's 值班领导
SITE = "S-CANARY"
#: one canary per adapter family of the sample district: (device, vendor, domain, location)
CANARIES = [
    ("cn-gasjson", "acme-gas", "gas", "燃气（JSON）金丝雀"),
    ("cn-gbt26875", "firenet", "fire", "消防（GB/T 26875）金丝雀"),
    ("cn-hazmon-json", "hziot", "gas", "燃气（通用JSON）金丝雀"),
    ("cn-elevator-json", "liftlink", "elevator", "电梯（JSON）金丝雀"),
    ("cn-senml", "senmlco", "fire", "消防（SenML）金丝雀"),
]
IDS = [c[0] for c in CANARIES]


def _district(into: Path) -> Path:
    """The sample district with the canary site, its two contacts and the canaries."""
    shutil.copytree(SAMPLE_DISTRICT, into)
    with (into / "sites.csv").open("a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow([SITE, "区应急指挥中心监测系统", "区应急指挥中心", "", "", "T01", "", "", "",
                                "false", "false", ""])
    with (into / "site_contacts.csv").open("a", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow([SITE, "中心值班员", "值班员", DUTY])
        w.writerow([SITE, "王强", "值班领导", LEADER])
    devices = into / "devices.csv"
    rows = list(csv.reader(devices.open(encoding="utf-8")))
    header = [*rows[0], "is_canary"]
    body = [[*r, "false"] for r in rows[1:]]
    body += [[dev, vendor, "canary", domain, SITE, "10", "", "", "true", loc, "", "", "true"]
             for dev, vendor, domain, loc in CANARIES]
    with devices.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *body])
    return into


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineProcesses]:
    run_dir = tmp_path_factory.mktemp("canary")
    p = PipelineProcesses(run_dir, district=_district(run_dir / "district"), fleet=0, routes_file=ROUTES)
    p.start()
    try:
        env = {**p.env(), "HAZMON_CANARY__MQTT_USERNAME": SIM_USER,
               "HAZMON_CANARY__MQTT_PASSWORD": p.mqtt.users[SIM_USER], "HAZMON_CANARY__INSTANCE": "canary-e2e"}
        p.stages["canary"] = HazmonProcess("canary", ["canary"], run_dir / "stages", env)
        p.stages["canary"].start()
        yield p
    finally:
        p.stop()


@pytest.fixture
def live(chain: PipelineProcesses) -> PipelineProcesses:
    started = chain.ensure_running()
    if started:
        print(f"restarted before the test: {', '.join(started)}")
    asyncio.run(_all_flowing(chain))
    return chain


async def _all_flowing(p: PipelineProcesses, timeout_s: float = 90.0) -> None:
    """Every canary arrived within the last 12 s and no 监测链路中断 is open."""
    async def ok() -> bool:
        rows = await p.fetch("SELECT count(*) FROM canary_state WHERE arrived_at > now() - interval '12 seconds'"
                             " AND broken_since IS NULL")
        return int(rows[0][0]) == len(CANARIES)
    await wait_until(ok, timeout_s, 1.0, "every canary flowing")


def _sample(metrics: str, series: str) -> float:
    """The value of one series in a /metrics text (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def _sms(p: PipelineProcesses, phone: str) -> list[dict[str, Any]]:
    assert p.sms is not None
    return [m for m in http_json(f"{p.sms.url}/messages?phone={phone}") if "监测链路" in _text(m)]


def _text(m: dict[str, Any]) -> str:
    return str(m["body"])


def _calls(p: PipelineProcesses, phone: str) -> list[dict[str, Any]]:
    assert p.sms is not None
    return [c for c in http_json(f"{p.sms.url}/voice/calls?number={phone}") if "监测链路" in str(c)]


class Phones:
    """What the duty operator's and the duty leader's phones received after a mark."""

    def __init__(self, p: PipelineProcesses) -> None:
        self.p = p
        self.sms0 = {ph: len(_sms(p, ph)) for ph in (DUTY, LEADER)}
        self.calls0 = {ph: len(_calls(p, ph)) for ph in (DUTY, LEADER)}

    def sms(self, phone: str, template: str = "") -> list[str]:
        return [_text(m) for m in _sms(self.p, phone)[self.sms0[phone]:] if str(m["template"]).startswith(template)]

    def calls(self, phone: str) -> list[dict[str, Any]]:
        return _calls(self.p, phone)[self.calls0[phone]:]

    def pages(self, phone: str) -> list[str]:
        return [t for t in self.sms(phone, "alarm") if "监测链路中断" in t]

    def recoveries(self, phone: str) -> list[str]:
        """The 恢复 notices (template resolved: …已于…解除)."""
        return self.sms(phone, "resolved")


async def _paged(phones: Phones, t0: float, words: str) -> dict[str, Any]:
    """Both phones got 监测链路中断 by SMS and a call; returns the texts and the delay."""
    await wait_until(lambda: all(phones.pages(ph) and phones.calls(ph) for ph in (DUTY, LEADER)), 60.0, 0.5,
                     "监测链路中断 by SMS and a call at both phones")
    delay = time.time() - t0
    page = phones.pages(DUTY)[0]
    call = phones.calls(DUTY)[0]
    print(f"paged after {delay:.1f} s\n  SMS  {page}\n  call {call.get('script', call)}")
    assert words in page, page
    assert len(phones.pages(DUTY)) == 1 and len(phones.pages(LEADER)) == 1, phones.sms(DUTY)
    return {"sms": page, "call": call, "delay": delay}


async def _one_recovery(phones: Phones) -> str:
    await wait_until(lambda: all(phones.recoveries(ph) for ph in (DUTY, LEADER)), 90.0, 0.5, "恢复 at both phones")
    await asyncio.sleep(12.0)  # nothing more follows
    for ph in (DUTY, LEADER):
        assert len(phones.recoveries(ph)) == 1, phones.sms(ph)
        assert len(phones.pages(ph)) == 1, phones.sms(ph)
    text = phones.recoveries(DUTY)[0]
    print(f"  恢复 {text}")
    return text


def test_canary_arrives_with_every_hop_stamped_and_is_no_business_data(live: PipelineProcesses) -> None:
    p = live
    rows = asyncio.run(p.fetch("SELECT * FROM canary_state ORDER BY device_id"))
    assert sorted(r["device_id"] for r in rows) == sorted(IDS)
    families = {r["device_id"]: r["family"] for r in rows}
    assert families["cn-gasjson"] == "gasjson" and families["cn-gbt26875"] == "gbt26875"
    for r in rows:
        print(dict(r))
        assert r["published_at"] <= r["bridged_at"] <= r["detected_at"] <= r["arrived_at"], dict(r)
        assert r["bridge"] in ("0", "1"), dict(r)
        assert (r["arrived_at"] - r["published_at"]).total_seconds() < 10, dict(r)
    # never business data: no reading, no latest value, no presence, no device event, no alert
    for table in ("readings", "latest_readings", "device_presence", "device_events", "alerts"):
        n = asyncio.run(p.fetch(f"SELECT count(*) FROM {table} WHERE device_id = ANY($1::text[])", IDS))[0][0]
        assert n == 0, table
    beats = asyncio.run(p.fetch("SELECT stage, instance, detail::text AS d FROM stage_heartbeats ORDER BY 1, 2"))
    stages = {b["stage"] for b in beats}
    assert {"detect", "alerting", "canary", "bridge"} <= stages, beats
    assert {b["instance"] for b in beats if b["stage"] == "bridge"} == {"0", "1"}, beats
    metrics = p.stages["alerting"].metrics_text()
    for fam in ("gasjson", "gbt26875", "hazmon_json", "elevator_json", "senml"):
        assert f'hazmon_canary_last_arrival_timestamp_seconds{{family="{fam}"}}' in metrics
    # the dashboard's publish → event latency on the real path, one observation per arrival and hop
    counts = {hop: _sample(metrics, f'hazmon_canary_latency_seconds_count{{hop="{hop}"}}')
              for hop in ("bridge", "event", "alerting")}
    assert min(counts.values()) >= len(IDS), counts
    assert _sample(metrics, 'hazmon_canary_latency_seconds_bucket{hop="alerting",le="10.0"}') >= len(IDS)


def test_detector_stopped_pages_naming_the_detector_then_one_recovery(live: PipelineProcesses) -> None:
    p = live
    phones = Phones(p)
    t0 = time.time()
    p.component("detect").kill()
    got = asyncio.run(_paged(phones, t0, "检测服务"))
    assert "心跳" in got["sms"] and "停止" in got["sms"]
    hops = asyncio.run(p.fetch("SELECT DISTINCT broken_hop FROM canary_state"))
    assert {r[0] for r in hops} == {"detect"}
    p.component("detect").start()
    asyncio.run(_one_recovery(phones))


def test_detector_crash_looping_pages_naming_its_restarts(live: PipelineProcesses) -> None:
    p = live
    phones = Phones(p)
    det = p.component("detect")
    t0 = time.time()
    det.kill()

    async def loop() -> None:
        deadline = time.time() + 60.0
        while time.time() < deadline and not (phones.pages(DUTY) and phones.calls(DUTY)):
            since = time.time()
            det.start()  # comes up, writes its heartbeat, and dies (as on a poison record)

            async def beating(since: float = since) -> bool:
                rows = await p.fetch("SELECT count(*) FROM stage_heartbeats WHERE stage = 'detect'"
                                     " AND started_at > to_timestamp($1)", since)
                return int(rows[0][0]) > 0
            await wait_until(beating, 30.0, 0.05, "the detector's new heartbeat")
            det.kill()
            await asyncio.sleep(2.0)

    asyncio.run(loop())
    got = asyncio.run(_paged(phones, t0, "检测服务"))
    assert "反复重启" in got["sms"], got["sms"]
    assert got["delay"] < 60  # from the first kill: _paged's own 60 s starts after the crash loop
    det.start()
    asyncio.run(_one_recovery(phones))


def test_mosquitto_stopped_pages_naming_mqtt(live: PipelineProcesses) -> None:
    p = live
    phones = Phones(p)
    t0 = time.time()
    p.component("mqtt").kill()
    got = asyncio.run(_paged(phones, t0, "MQTT"))
    hops = asyncio.run(p.fetch("SELECT DISTINCT broken_hop FROM canary_state"))
    assert {r[0] for r in hops} == {"mqtt"}
    p.component("mqtt").start()
    asyncio.run(_one_recovery(phones))
    assert got["delay"] < 60


def test_one_bridge_of_two_stopped_is_degraded_a_warning_not_a_page(live: PipelineProcesses) -> None:
    p = live
    phones = Phones(p)
    p.component("bridge-1").kill()

    async def degraded() -> bool:
        rows = await p.fetch("SELECT count(*) FROM alerts WHERE kind = 'system.canary_degraded' AND state = 'firing'"
                             " AND labels->>'bridge' = '1'")
        return int(rows[0][0]) == 1
    asyncio.run(wait_until(degraded, 120.0, 1.0, "监测链路降级 for bridge 1"))
    row = asyncio.run(p.fetch("SELECT severity, summary FROM alerts WHERE kind = 'system.canary_degraded'"))[0]
    print(f"  console: [{row['severity']}] {row['summary']}")
    assert row["severity"] == "yellow" and "接入网关1" in row["summary"]
    # the canaries still flow through bridge 0: no 监测链路中断, no SMS, no call
    broken = asyncio.run(p.fetch("SELECT count(*) FROM alerts WHERE kind = 'system.canary_broken' AND state = 'firing'"))
    assert broken[0][0] == 0
    assert phones.sms(DUTY) == [] and phones.calls(DUTY) == [] and phones.calls(LEADER) == []
    p.component("bridge-1").start()

    async def cleared() -> bool:
        rows = await p.fetch("SELECT count(*) FROM alerts WHERE kind = 'system.canary_degraded' AND state = 'firing'")
        return int(rows[0][0]) == 0
    asyncio.run(wait_until(cleared, 90.0, 1.0, "监测链路降级 resolved"))
    assert phones.sms(DUTY) == []
