"""A child process the project owns: started in its own session, logged to a file, stopped
for sure.

Why so careful: the embedded brokers outlive nothing. A test run, ``hazmon demo`` or a fault
test that dies half-way must not leave a Tansu, mosquitto or postgres holding a port, or the
next run fails with "address in use" against a stale broker. Three guards:

1. each child leads its own process group (``start_new_session``), so the terminal's Ctrl-C
   does not hit the children before we stop them in order, and a kill signals the whole group
   plus every descendant found by psutil (postgres' children leave the group with setsid());
2. every live service is registered; an ``atexit`` hook and SIGTERM/SIGHUP handlers (installed
   only when Python's default handler is in place) kill what is still running;
3. on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child makes the kernel kill it when the
   parent dies hard (kill -9 of the Python process). The kernel ties this to the *thread* that
   forked, so every child is forked by one long-lived daemon thread (``hazmon-stack-spawner``):
   starting a service from a short-lived worker (``asyncio.to_thread``) must not take the
   broker down when that worker exits, and a daemon thread only ends with the process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

import psutil

from hazmon.errors import StackError
from hazmon.logs import kv

__all__ = ["ManagedProcess", "stop_all"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
#: strong references: a service object dropped without stop() must still be killed at exit
_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()
_ATEXIT_INSTALLED = False
_SIGNALS_INSTALLED = False


def _pdeathsig_preexec() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec (after setuid, if any)
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # parent already gone: do not start at all
            os._exit(1)

    return preexec


class _Spawner:
    """Runs every fork on one daemon thread, so PR_SET_PDEATHSIG fires only when the process
    dies (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="hazmon-stack-spawner", daemon=True)
                self._thread.start()
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed back to the caller
                future.set_exception(exc)


_SPAWNER = _Spawner()


def stop_all() -> None:
    """Kill every service still running (the atexit / signal hook; also safe to call directly)."""
    with _LIVE_LOCK:
        alive = [p for p in _LIVE if p.is_running]
    for proc in reversed(alive):
        with contextlib.suppress(Exception):
            proc.stop(grace_s=2.0)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _ATEXIT_INSTALLED, _SIGNALS_INSTALLED
    if not _ATEXIT_INSTALLED:
        _ATEXIT_INSTALLED = True
        atexit.register(stop_all)
    # signal handlers can only be set from the main thread; try again on a later start if not
    if not _SIGNALS_INSTALLED and threading.current_thread() is threading.main_thread():
        _SIGNALS_INSTALLED = True
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(sig) is signal.SIG_DFL:
                    signal.signal(sig, _on_signal)


class ManagedProcess:
    """One owned child: ``start()`` (ready or :class:`StackError`), ``stop()``, ``kill()``,
    ``restart()``, ``is_running``; stdout and stderr go to ``log_path`` (appended across restarts).

    Subclasses give ``name``, build ``command()`` and implement ``ready()``; they may override
    ``prepare()`` (run before every start) and ``stop_signal`` (e.g. SIGINT for postgres' fast
    shutdown).
    """

    name: str = "service"
    stop_signal: int = signal.SIGTERM
    start_timeout_s: float = 30.0
    grace_s: float = 10.0

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # --- to override -------------------------------------------------------------------
    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def env(self) -> Mapping[str, str] | None:
        return None

    def popen_kwargs(self) -> dict[str, Any]:
        return {}

    def prepare(self) -> None:
        """Run before every start (write config files, check ports, ...)."""

    def ready(self) -> bool:
        """True once the service answers a real protocol request."""
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float | None = None) -> None:
        if self.is_running:
            return
        self._reap()
        try:
            self.prepare()
            cmd = list(self.command())
        except StackError as exc:  # leave the reason in the log the message points to
            with contextlib.suppress(OSError), open(self.log_path, "a", encoding="utf-8") as logf:
                logf.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} not started: {exc}\n")
            raise
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._log_file.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(cmd)}\n".encode())
        self._log_file.flush()
        _install_hooks()
        env = self.env()
        kwargs: dict[str, Any] = {"preexec_fn": _pdeathsig_preexec()}
        kwargs.update(self.popen_kwargs())
        log_file = self._log_file
        try:
            self._proc = _SPAWNER.run(
                lambda: subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=dict(env) if env is not None else None,
                    start_new_session=True,
                    close_fds=True,
                    **kwargs,
                )
            )
        except OSError as exc:
            with contextlib.suppress(OSError):
                log_file.write(f"cannot run {cmd[0]}: {exc}\n".encode())
            self._close_log()
            raise StackError(f"{self.name}: cannot run {cmd[0]}: {exc} (log: {self.log_path})") from None
        with _LIVE_LOCK:
            _LIVE.add(self)
        log.info("service starting %s", kv(service=self.name, pid=self._proc.pid, log=str(self.log_path)))
        try:
            self._wait_ready(timeout_s if timeout_s is not None else self.start_timeout_s)
        except BaseException:  # not ready, a definite failure, or Ctrl-C: leave nothing behind
            self.stop(grace_s=2.0)
            raise
        log.info("service ready %s", kv(service=self.name, pid=self._proc.pid))

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            code = self._proc.poll()
            if code is not None:
                raise StackError(
                    f"{self.name} exited with status {code} while starting; see its log: {self.log_path}"
                    + self._log_tail()
                )
            try:
                if self.ready():
                    return
            except StackError:  # the probe found a definite problem: no point waiting
                raise
            except Exception as exc:  # a readiness probe must never crash start-up
                log.debug("readiness probe failed %s", kv(service=self.name, error=repr(exc)))
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name} did not become ready within {timeout_s:.0f}s; "
                    f"see its log: {self.log_path}" + self._log_tail()
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self, grace_s: float | None = None) -> None:
        """Ask politely (``stop_signal``), then SIGKILL the whole process group after the grace."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, self.stop_signal)
            try:
                proc.wait(timeout=self.grace_s if grace_s is None else grace_s)
            except subprocess.TimeoutExpired:
                log.warning("service ignored %s; killing %s", signal.Signals(self.stop_signal).name, kv(service=self.name))
        self._kill_group(proc)
        self._reap()
        log.info("service stopped %s", kv(service=self.name))

    def kill(self) -> None:
        """SIGKILL the service and everything in its process group (fault tests)."""
        proc = self._proc
        if proc is None:
            return
        self._kill_group(proc)
        self._reap()
        log.info("service killed %s", kv(service=self.name))

    def restart(self, timeout_s: float | None = None) -> None:
        self.stop()
        self.start(timeout_s)

    # --- helpers -----------------------------------------------------------------------
    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        # the child is its own process-group leader (start_new_session), so pgid == pid; some
        # children leave that group (postgres backends call setsid()), so the descendants are
        # collected first and killed one by one too (psutil checks pid reuse)
        try:
            descendants = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        # stragglers in the group after the leader was reaped
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.02)
        psutil.wait_procs(descendants, timeout=5)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def _log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        tail = [ln for ln in text[-lines:] if ln.strip()]
        return ("\n  | " + "\n  | ".join(tail)) if tail else ""

    def __enter__(self) -> ManagedProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"<{type(self).__name__} {state} log={self.log_path}>"
