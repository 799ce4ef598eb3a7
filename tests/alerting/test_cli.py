"""The console scripts as an operator runs them: ``hazmon alerting`` end to end (Kafka →
PostgreSQL → SMS simulator, with a reply acknowledging through the inbound port),
``hazmon silence`` and ``hazmon routes check``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime

import asyncpg
import pytest
from alerting_helpers import KEY_ID, SECRET, ev, messages, produce, set_mode

from hazmon.topics import Topics
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _non_loopback_ip() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        ip = s.getsockname()[0]
    return None if ip.startswith("127.") else ip


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(pg_dsn: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn, "HAZMON_SMS__ACCESS_KEY_ID": KEY_ID,
            "HAZMON_SMS__ACCESS_KEY_SECRET": SECRET, **extra}


async def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hazmon.cli", *args], capture_output=True,
                                   text=True, env=env, timeout=60, check=False)


async def test_alerting_service_end_to_end(
    pool: asyncpg.Pool, pg_dsn: str, sim: SmsSimulator, topics: Topics, kafka_bootstrap: str,
) -> None:
    port = _free_port()
    # the inbound port is a setting (inbound.port), as compose sets it; the SMS link is the
    # console's (sms.ack_base_url's default), not this server's
    env = _env(pg_dsn, HAZMON_KAFKA__BOOTSTRAP=kafka_bootstrap, HAZMON_KAFKA__TOPIC_PREFIX=topics.prefix,
               HAZMON_SMS__PROVIDER="aliyun", HAZMON_SMS__URL=f"{sim.url}/aliyun",
               HAZMON_INBOUND__PORT=str(port))
    env.pop("HAZMON_SMS__ACK_BASE_URL", None)
    await set_mode(sim, callback_url=f"http://127.0.0.1:{port}", auto_reply=True, receipt_delay_s=0.2)
    proc = subprocess.Popen([sys.executable, "-m", "hazmon.cli", "alerting", "--tick", "0.2"],  # noqa: ASYNC220
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        trapped = ev("elevator.trapped", "E6", "S6", at=datetime.now(UTC))
        await produce(kafka_bootstrap, topics, [trapped])
        acked = None
        for _ in range(300):  # bounded wait for the real-time service
            async with pool.acquire() as conn:
                acked = await conn.fetchval("SELECT acked_by FROM alerts WHERE id=$1", trapped.id)
            if acked:
                break
            await asyncio.sleep(0.1)
        assert acked and acked.startswith("sms_reply:"), proc.poll()
        assert "1380000" not in acked  # the recipient's id, never the number
        # the inbound port listens on 127.0.0.1 (settings inbound.host), not on every interface
        assert _reachable("127.0.0.1", port)
        other = _non_loopback_ip()
        if other is not None:
            assert not _reachable(other, port), f"inbound port open on {other}"
        got = await messages(sim, "13800006001")
        assert got and got[0]["provider"] == "aliyun" and "电梯困人" in got[0]["body"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    assert proc.returncode in (0, 130), out
    assert "alerting running: routes=" in out and f"http_port={port}" in out


async def test_silence_commands(pool: asyncpg.Pool, pg_dsn: str) -> None:
    env = _env(pg_dsn)
    r = await _run("silence", "add", 'site_id="S6"', 'domain="elevator"', "--for", "2h", "--reason", "电梯维保",
                   "--by", "op-li", env=env)
    assert r.returncode == 0, r.stderr
    sid = r.stdout.split()[0]
    listed = await _run("silence", "list", env=env)
    assert sid in listed.stdout and "active" in listed.stdout and "电梯维保" in listed.stdout
    assert (await _run("silence", "expire", sid, "--by", "op-zhao", env=env)).returncode == 0
    assert sid not in (await _run("silence", "list", env=env)).stdout
    no_expiry = await _run("silence", "add", 'site_id="S6"', "--reason", "x", "--by", "op", env=env)
    assert no_expiry.returncode == 2 and "must expire" in no_expiry.stderr


async def test_routes_check(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ok = await _run("routes", "check", env=dict(os.environ))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "r.yaml"
    bad.write_text("route: {receiver: nobody}\nreceivers: {a: {roles: [wizard]}}\nduty_operator: {name: x}\n",
                   encoding="utf-8")
    r = await _run("routes", "check", str(bad), env=dict(os.environ))
    assert r.returncode == 2
    assert f"{bad}: receivers.a.roles[0]: unknown role 'wizard'" in r.stderr
    assert f"{bad}: route.receiver: unknown receiver 'nobody'" in r.stderr
