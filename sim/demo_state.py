"""The demo's state directory (``<run_dir>/demo``): fresh by default, reused only on purpose.

A demo run leaves a PostgreSQL cluster, broker data and logs behind. Reused silently, the next
run continues the first run's alarms (its incidents were still firing) and fires their 四单
escalation steps at once, so the second ``hazmon demo`` shows nothing new. So:

* by default every run starts from an empty directory (and, on an external PostgreSQL, an empty
  ``<db>_demo`` database; on an external Kafka, topics of its own), and says so;
* ``--keep`` reuses the previous state, but only state this version wrote and a run stopped
  cleanly: a marker (``demo-state.json``) records the hazmon version, the migrations'
  fingerprint, the demo's pid and whether it stopped cleanly; anything else is replaced with a
  line saying why;
* a directory in use by a live demo is never touched;
* an embedded service's port held by another process is named with its pid before anything
  starts; a process of a killed demo of this directory (its command line names the directory)
  is stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from hazmon import __version__
from hazmon.errors import StackError
from hazmon.logs import kv

__all__ = ["DemoState", "PortHolder", "prepare_state", "port_holder", "schema_fingerprint"]

log = logging.getLogger(__name__)

MARKER = "demo-state.json"
_SQL = Path(__file__).resolve().parent.parent / "deploy" / "sql"


def schema_fingerprint() -> str:
    """A hash over the migration files: a demo database from other migrations is not reused."""
    h = hashlib.sha256()
    for f in sorted(_SQL.rglob("*.sql")):
        h.update(str(f.relative_to(_SQL)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@dataclass
class DemoState:
    """The decision for this run, with the lines that explain it."""

    directory: Path
    fresh: bool
    lines: list[str] = field(default_factory=list)
    #: the previous run's record (``--keep`` of a good state), else ``{}``
    previous: dict[str, Any] = field(default_factory=dict)
    #: suffix of this state's external resources (``<db>_demo``, topic prefix ``<prefix>-demo-<run>``)
    run_tag: str = ""

    @property
    def marker(self) -> Path:
        return self.directory / MARKER

    def write(self, *, clean_stop: bool, **extra: Any) -> None:
        """Record the state (at start ``clean_stop=False``; at a clean stop ``True``)."""
        record = {
            "hazmon_version": __version__,
            "schema": schema_fingerprint(),
            "pid": os.getpid(),
            "run_tag": self.run_tag,
            "started_at": self.previous.get("this_started_at") or datetime.now(UTC).isoformat(),
            "clean_stop": clean_stop,
            **extra,
        }
        if clean_stop:
            record["stopped_at"] = datetime.now(UTC).isoformat()
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1))
        tmp.replace(self.marker)
        self.previous["this_started_at"] = record["started_at"]


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: Any) -> bool:
    return isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid)


def _why_not_reusable(record: dict[str, Any] | None, has_content: bool) -> str | None:
    if record is None:
        return ("no state marker: written by an older hazmon or by hand" if has_content else "")
    if record.get("hazmon_version") != __version__:
        return f"written by hazmon {record.get('hazmon_version')} (this is {__version__})"
    if record.get("schema") != schema_fingerprint():
        return "written with other database migrations"
    if not record.get("clean_stop"):
        return (f"half-written by a demo that did not stop cleanly (pid {record.get('pid')}, "
                f"started {record.get('started_at', '?')})")
    return None


def prepare_state(directory: Path, *, keep: bool) -> DemoState:
    """Decide fresh or kept, clear what must go, and explain it (see the module docstring)."""
    directory = directory.resolve()
    record = _read_marker(directory / MARKER)
    if record is not None and _alive(record.get("pid")) and not record.get("clean_stop"):
        raise StackError(f"demo: {directory} is in use by a running demo (pid {record['pid']}); "
                         f"stop it first (kill {record['pid']}) or set HAZMON_RUN_DIR to another directory")
    has_content = directory.exists() and any(directory.iterdir())
    tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    if keep:
        why = _why_not_reusable(record, has_content)
        if why is None and record is not None:
            state = DemoState(directory, fresh=False, previous=dict(record), run_tag=str(record.get("run_tag") or tag))
            state.lines.append(f"demo state: kept from the run stopped at {record.get('stopped_at', '?')} "
                               f"({directory}; --keep)")
            return state
        state = DemoState(directory, fresh=True, run_tag=tag)
        if why:
            state.lines.append(f"demo state: not reused — {why}; starting from a clean state instead")
    else:
        state = DemoState(directory, fresh=True, run_tag=tag)
    removed = _clear(directory) if has_content else []
    what = f"removed the previous run's {', '.join(removed)}" if removed else "nothing to remove"
    state.lines.append(f"demo state: clean start in {directory} ({what}; --keep reuses it)")
    return state


def _clear(directory: Path) -> list[str]:
    names = sorted(p.name for p in directory.iterdir())
    for p in directory.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    log.info("demo state cleared %s", kv(directory=str(directory), removed=",".join(names)))
    return names


# --- ports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortHolder:
    pid: int
    name: str
    cmdline: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.cmdline[:160] or self.name})"


def port_holder(port: int) -> PortHolder | None:
    """The process listening on TCP ``port`` (any address), when it can be found."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                try:
                    proc = psutil.Process(conn.pid)
                    return PortHolder(conn.pid, proc.name(), " ".join(proc.cmdline()))
                except psutil.Error:
                    return PortHolder(conn.pid, "?", "")
    return None


def free_ports_or_explain(ports: dict[str, int], directory: Path, lines: list[str]) -> None:
    """Every port in ``ports`` (service → port) must be free before the stack starts. A process
    of a killed demo of ``directory`` is stopped (and said so); anything else stops the demo
    with the holder's pid."""
    from hazmon.stack import port_is_free

    for service, port in ports.items():
        if port_is_free(port) and port_is_free(port, "0.0.0.0"):
            continue
        holder = port_holder(port)
        if holder is not None and str(directory) in holder.cmdline:
            lines.append(f"demo state: stopped {service} {holder.describe()} left on port {port} by a killed demo")
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(holder.pid)
                proc.terminate()
                try:
                    proc.wait(10)
                except psutil.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not port_is_free(port):
                time.sleep(0.2)
            if port_is_free(port):
                continue
        who = holder.describe() if holder is not None else "a process this user cannot see"
        raise StackError(
            f"demo: port {port} for the embedded {service} is held by {who}; stop it"
            + (f" (kill {holder.pid})" if holder is not None else "")
            + f" or choose another port (HAZMON_{service.upper()}__EMBEDDED_PORT)"
        )
