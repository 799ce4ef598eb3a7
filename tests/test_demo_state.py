"""The demo's state directory: clean by default, reused with ``--keep`` only when this version
wrote it and its run stopped cleanly; never touched while a live demo uses it; a port held by
another process is named with its pid, a killed demo's own leftover is stopped."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hazmon.errors import StackError
from hazmon.stack import free_port
from sim.demo_state import MARKER, free_ports_or_explain, prepare_state


def _leave_state(d: Path, **marker: object) -> None:
    (d / "postgres").mkdir(parents=True)
    (d / "postgres" / "PG_VERSION").write_text("15")
    if marker:
        (d / MARKER).write_text(json.dumps(marker))


def _good_marker(d: Path) -> None:
    st = prepare_state(d, keep=False)
    st.write(clean_stop=False)
    st.write(clean_stop=True)
    (d / "postgres").mkdir(exist_ok=True)
    (d / "postgres" / "PG_VERSION").write_text("15")


def test_default_is_a_clean_start_that_says_what_it_removed(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    _good_marker(d)
    st = prepare_state(d, keep=False)
    assert st.fresh and not (d / "postgres").exists()
    assert st.lines[-1].startswith("demo state: clean start") and "postgres" in st.lines[-1]


def test_keep_reuses_a_cleanly_stopped_state(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    _good_marker(d)
    st = prepare_state(d, keep=True)
    assert not st.fresh and (d / "postgres" / "PG_VERSION").exists()
    assert st.lines[0].startswith("demo state: kept from the run stopped at")


@pytest.mark.parametrize(("marker", "why"), [
    ({}, "no state marker"),
    ({"hazmon_version": "0.0.1", "schema": "x", "clean_stop": True}, "written by hazmon 0.0.1"),
    ("half", "half-written by a demo that did not stop cleanly"),
])
def test_keep_replaces_old_or_half_written_state_with_a_line(tmp_path: Path, marker: object, why: str) -> None:
    d = tmp_path / "demo"
    if marker == "half":
        _good_marker(d)
        rec = json.loads((d / MARKER).read_text())
        rec.update(clean_stop=False, pid=2 ** 22 + 17)  # a pid that does not exist
        (d / MARKER).write_text(json.dumps(rec))
    else:
        _leave_state(d, **marker)  # type: ignore[arg-type]
    st = prepare_state(d, keep=True)
    assert st.fresh and not (d / "postgres").exists()
    assert why in st.lines[0] and "starting from a clean state instead" in st.lines[0], st.lines


def test_a_directory_in_use_by_a_live_demo_is_not_touched(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    _good_marker(d)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        rec = json.loads((d / MARKER).read_text())
        rec.update(clean_stop=False, pid=live.pid)
        (d / MARKER).write_text(json.dumps(rec))
        for keep in (False, True):
            with pytest.raises(StackError, match=f"in use by a running demo \\(pid {live.pid}\\)"):
                prepare_state(d, keep=keep)
        assert (d / "postgres" / "PG_VERSION").exists()
    finally:
        live.kill()
        live.wait()


def _listener(port: int, tag: str) -> subprocess.Popen[bytes]:
    code = ("import socket, time, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, tag])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as c:
            if c.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("listener did not start")


def test_a_port_held_by_another_process_is_named_with_its_pid(tmp_path: Path) -> None:
    port = free_port()
    other = _listener(port, "someone-else")
    try:
        with pytest.raises(StackError, match=f"port {port} for the embedded postgres is held by pid {other.pid}"):
            free_ports_or_explain({"postgres": port}, tmp_path / "demo", [])
        assert other.poll() is None  # not ours: left alone
    finally:
        other.kill()
        other.wait()


def test_a_killed_demos_leftover_on_a_port_is_stopped_and_said_so(tmp_path: Path) -> None:
    port = free_port()
    d = tmp_path / "demo"
    leftover = _listener(port, str(d / "kafka"))
    try:
        lines: list[str] = []
        free_ports_or_explain({"kafka": port}, d, lines)
        assert leftover.wait(15) is not None
        assert lines and f"pid {leftover.pid}" in lines[0] and "left on port" in lines[0]
    finally:
        if leftover.poll() is None:
            leftover.kill()


async def test_kept_state_places_incidents_on_devices_not_in_alarm(pg_dsn: str) -> None:
    import asyncpg

    from hazmon.registry import import_registry
    from sim.demo import SAMPLE_DISTRICT, _pick_incidents

    await import_registry(pg_dsn, SAMPLE_DISTRICT, actor="test")
    fresh, lines = await _pick_incidents(pg_dsn)
    assert [i.kind for i in fresh] == ["gas_leak", "trapped", "fire_alarm", "silence"] and lines == []
    by_kind = {i.kind: i.device_id for i in fresh}
    assert len(set(by_kind.values())) == 4

    conn = await asyncpg.connect(pg_dsn)
    try:  # an earlier run's trapped passenger still firing on the trapped incident's device
        await conn.execute(
            """INSERT INTO events (id, kind, domain, severity, state, device_id, site_id, starts_at, detected_at)
               SELECT 'old-trapped', 'elevator.trapped', 'elevator', 'red', 'firing', d.id, d.site_id, now(), now()
                 FROM devices d WHERE d.id = $1""", by_kind["trapped"])
    finally:
        await conn.close()
    kept, lines = await _pick_incidents(pg_dsn)
    moved = {i.kind: i.device_id for i in kept}
    assert moved["trapped"] != by_kind["trapped"] and by_kind["trapped"] not in moved.values()
    assert moved["gas_leak"] == by_kind["gas_leak"] and moved["fire_alarm"] == by_kind["fire_alarm"]
    assert len(set(moved.values())) == 4
    assert any(f"{by_kind['trapped']} is still in alarm (elevator.trapped firing" in ln and moved["trapped"] in ln
               for ln in lines), lines
