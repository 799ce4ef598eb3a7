"""hazmon's own services as owned child processes (``hazmon bridge``, ``hazmon detect`` …).

Used by ``hazmon demo``, the end-to-end benchmark and the fault tests, which need to start,
kill -9 and restart a stage exactly as an operator's supervisor would. Built on the embedded
stack's :class:`~hazmon.stack.ManagedProcess`, so the same no-orphan guarantees hold. A stage
is ready when its Prometheus endpoint (or a given ``ready_url``) answers.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from hazmon.stack import ManagedProcess, free_port

__all__ = ["HazmonProcess"]


class HazmonProcess(ManagedProcess):
    """``hazmon <args…>`` as a child process with ``HAZMON_*`` overrides in its environment."""

    start_timeout_s = 60.0
    grace_s = 15.0

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        run_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        metrics_port: int | None = None,
        wait_ready: bool = True,
        ready_url: str | None = None,
    ) -> None:
        self.name = name
        super().__init__(run_dir)
        self.args = list(args)
        self.metrics_port = metrics_port if metrics_port is not None else free_port()
        self._extra_env = dict(env or {})
        self.probe_ready = wait_ready
        self.ready_url = ready_url or f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "hazmon.cli", *self.args]

    def env(self) -> Mapping[str, str]:
        env = dict(os.environ)
        env.update(self._extra_env)
        env["HAZMON_METRICS_PORT"] = str(self.metrics_port)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def ready(self) -> bool:
        if not self.probe_ready:
            return True
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()
