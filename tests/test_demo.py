"""`hazmon demo` for a bounded duration, twice in a row on the same run directory, on the embedded
path: PostgreSQL pointed at a port where nothing listens (so the project starts its own cluster),
its own Kafka and Mosquitto. Both runs must tell the same story — the same scripted incidents
become the same alerts told to the same people — the second run (``--keep``, the harder case: the
first run's database is reused) must fire no 四单 step for the first run's alerts, every incident
must be cleared and resolved at the end, and no process may outlive the demo.

The demo's timeline (simulated seconds from the simulator's start): gas leak at 5 s (低限 and
rate of rise at the gas detector's 65 s report, 高限 only at 125 s), elevator box silent from
10 s (offline at 3 × 30 s = 90 s), trapped passenger at 15 s, fire alarm at 20 s. 100 s runs
keep every step clear of those edges."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from hazmon.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
DURATION_S = 100


def _demo(tmp_path: Path, run_dir: Path, name: str, *extra: str) -> tuple[str, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env.update(
        {
            "HAZMON_RUN_DIR": str(run_dir),
            "HAZMON_POSTGRES__DSN": f"postgresql://postgres@127.0.0.1:{free_port()}/hazmon",
            "HAZMON_POSTGRES__EMBEDDED_PORT": str(free_port()),
            "HAZMON_KAFKA__BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "HAZMON_KAFKA__EMBEDDED_PORT": str(free_port()),
            "HAZMON_MQTT__EMBEDDED_PORT": str(free_port()),
            "HAZMON_CONSOLE__PORT": str(free_port()),
        }
    )
    summary = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "demo", "--duration", str(DURATION_S), "--wind-down", "45",
         "--summary-json", str(summary), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
    )
    out = proc.stdout
    (tmp_path / f"{name}.out").write_text(out + "\n--- stderr ---\n" + proc.stderr)
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    return out, json.loads(summary.read_text())


def _story(doc: dict[str, Any]) -> tuple[Any, ...]:
    incidents = sorted((i["kind"], i["device_id"]) for i in doc["incidents"])
    alerts = sorted((a["kind"], a["device_id"]) for a in doc["alerts"])
    told = sorted({(a["kind"], m["role"], m["name"], m["template"]) for a in doc["alerts"] for m in a["messages"]
                   if m["channel"] == "sms"})
    return incidents, alerts, told


@pytest.fixture
def checkout_run_dir() -> Iterator[Path]:
    """A run directory inside the checkout, as a user's ``.run`` is: pytest's 0700 tmp_path is out of
    the ``postgres`` user's reach when the tests run as root, and the demo would then start a fresh
    temporary cluster each run — hiding exactly the state this test is about."""
    d = ROOT / ".run" / f"test-demo-{os.getpid()}"
    shutil.rmtree(d, ignore_errors=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(1200)
def test_demo_twice_tells_the_same_story(tmp_path: Path, checkout_run_dir: Path) -> None:
    before = {p.pid for p in psutil.process_iter()}
    out1, doc1 = _demo(tmp_path, checkout_run_dir, "first")
    out2, doc2 = _demo(tmp_path, checkout_run_dir, "second", "--keep")
    # the state was really kept: the same cluster directory, not a temporary one
    assert f"data {checkout_run_dir / 'demo' / 'postgres' / 'data'}" in out2, out2[:1500]

    assert out1.splitlines()[0].startswith("demo state: clean start"), out1[:500]
    assert "demo state: kept from the run stopped at" in out2.splitlines()[0], out2[:500]
    for out in (out1, out2):
        assert "postgres  embedded" in out and "kafka     embedded" in out and "mqtt      embedded" in out
        summary = re.search(r"demo summary: ([\d,]+) readings on Kafka, ([\d,]+) stored", out)
        assert summary, out[-2000:]
        on_kafka, stored = (int(g.replace(",", "")) for g in summary.groups())
        assert on_kafka > 100 and stored > 0

    # the incidents were cleared at the end, their alarms resolved and the 恢复 notices sent
    for doc in (doc1, doc2):
        assert doc["still_open"] == [], doc["still_open"]
        assert all(a["state"] == "resolved" for a in doc["alerts"]), doc["alerts"]
    s1, s2 = _story(doc1), _story(doc2)
    incidents, alerts, told = s1
    assert {k for k, _d in incidents} == {"gas_leak", "trapped", "fire_alarm", "silence"}
    assert {"elevator.trapped", "fire.alarm", "gas.low", "device.offline"} <= {k for k, _d in alerts}, alerts
    # the business and the grid member hear of the trapped passenger, and of the fire alarm
    assert {"business", "grid_member"} <= {role for kind, role, _n, t in told if kind == "elevator.trapped" and t == "alarm"}
    assert {"business", "grid_member"} <= {role for kind, role, _n, t in told if kind == "fire.alarm" and t == "alarm"}
    assert s2 == s1, f"first run: {s1}\nsecond run: {s2}"
    # every red incident reaches all four parties of the matrix, each over a channel it has
    # (the township's landline duty room by a voice call, 市监 by its robot and a call), and
    # the providers confirmed it: a delivery receipt, an answered call
    for doc in (doc1, doc2):
        for a in (a for a in doc["alerts"] if a["severity"] == "red"):
            reached = {(m["role"], m["channel"]) for m in a["messages"] if m["template"] == "alarm"
                       and m["status"] in ("sent", "delivered")}
            roles = {role for role, _c in reached}
            assert {"business", "grid_member", "township", "department"} <= roles, (a["kind"], reached)
            assert ("township", "voice") in reached, (a["kind"], reached)
            bodies = [m["body"] for m in a["messages"] if m["channel"] == "voice"]
            assert bodies and all("确认收到请按1" in b and "----" not in b for b in bodies), bodies
        assert any(m["status"] == "delivered" for a in doc["alerts"] for m in a["messages"]
                   if m["channel"] == "voice"), "no call was answered: the call receipts did not come back"
    assert "语音电话" in out1 and "已接听" in out1, out1[-3000:]
    # the lines a person reads about each delivery are words: no internal names (reminder, sms…)
    deliveries = [ln for ln in out1.splitlines() if ln.startswith("      → ")]
    assert deliveries and not [ln for ln in deliveries if re.search(r"[A-Za-z]{3,}", ln)], deliveries
    # and so are the live lines of what fired and recovered (告警 电梯困人 · 云栖公寓… / elv-00001),
    # and each alarm's line of the summary: no event codes (elevator.trapped, 设备上报 trapped)
    told = [re.sub(r"[a-z]+-\d+", "", ln.replace("  alert [", "  [", 1)) for ln in out1.splitlines()
            if re.match(r"  \[[红橙黄蓝]\] (告警|恢复) ", ln) or ln.startswith("  alert [")]
    assert told and not [ln for ln in told if re.search(r"[A-Za-z]{2,}", ln)], told
    # the duty operator closed the fire alarm as a test: its business was told so in one SMS
    for doc in (doc1, doc2):
        outcome = [(m["role"], m["body"]) for a in doc["alerts"] if a["kind"] == "fire.alarm"
                   for m in a["messages"] if m["template"] == "outcome" and m["channel"] == "sms"
                   and m["status"] in ("sent", "delivered")]
        assert outcome and all(role == "business" and "经核实为测试，已办结" in body for role, body in outcome), outcome

    # nothing the first run left fires in the second: no 四单 step at all within 100 s
    assert doc2["leftover_notices"] == 0 and doc2["notices"] == [], doc2["notices"]
    assert "恢复" in out1 and "still open at the end: nothing" in out1

    leftovers = [
        p for p in psutil.process_iter(["pid", "cmdline"])
        if p.info["pid"] not in before and str(checkout_run_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == [], leftovers
