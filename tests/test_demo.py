"""`hazmon demo` for a bounded duration, on the embedded path: PostgreSQL pointed at a port where
nothing listens (so the project starts its own cluster), its own Kafka and Mosquitto. Readings
must arrive on Kafka and be stored, and no process may outlive the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from hazmon.stack import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_bounded_demo_on_embedded_stack(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env.update(
        {
            "HAZMON_RUN_DIR": str(tmp_path / "run"),
            "HAZMON_POSTGRES__DSN": f"postgresql://postgres@127.0.0.1:{free_port()}/hazmon",
            "HAZMON_POSTGRES__EMBEDDED_PORT": str(free_port()),
            "HAZMON_KAFKA__BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "HAZMON_KAFKA__EMBEDDED_PORT": str(free_port()),
            "HAZMON_MQTT__EMBEDDED_PORT": str(free_port()),
            "HAZMON_CONSOLE__PORT": str(free_port()),
        }
    )
    before = {p.pid for p in psutil.process_iter()}
    proc = subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "demo", "--duration", "45"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "postgres  embedded" in out and "kafka     embedded" in out and "mqtt      embedded" in out
    summary = re.search(r"demo summary: ([\d,]+) readings on Kafka, ([\d,]+) stored, (\d+) events", out)
    assert summary, out[-2000:]
    on_kafka, stored, events = (int(g.replace(",", "")) for g in summary.groups())
    assert on_kafka > 100
    assert stored > 0
    # the scripted incidents (gas leak, trapped passenger, fire alarm) become events
    assert events >= 1
    leftovers = [
        p for p in psutil.process_iter(["pid", "cmdline"])
        if p.info["pid"] not in before and str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == [], leftovers
