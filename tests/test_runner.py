"""hazmon.runner: the first signal asks the body to stop, a second one cuts a stuck shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

BODY = textwrap.dedent("""
    import asyncio, sys
    from hazmon.runner import run_until_signalled

    STUCK = sys.argv[1] == "stuck"

    async def body(stop):
        print("ready", flush=True)
        await stop.wait()
        print("stopping", flush=True)
        if STUCK:
            await asyncio.sleep(3600)
        return 7

    sys.exit(run_until_signalled(body))
""")


def _start(mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", BODY, mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_first_signal_lets_the_body_finish_with_its_status() -> None:
    proc = _start("clean")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 7
    assert proc.stdout is not None and "stopping" in proc.stdout.read()


def test_second_signal_cancels_a_stuck_shutdown() -> None:
    proc = _start("stuck")
    os.kill(proc.pid, signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "stopping"
    time.sleep(0.2)
    assert proc.poll() is None  # still winding down
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 130
