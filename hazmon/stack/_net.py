"""Small network and sync/async helpers shared by the service classes."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["free_port", "port_is_free", "tcp_connectable", "run_sync", "split_hostport"]

T = TypeVar("T")


_handed_out: set[int] = set()
_handed_lock = threading.Lock()


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (outgoing connections take their local
    port from it); 32768 when it cannot be read."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, for a server started a moment later.

    Picked at random *below* the ephemeral range: ``bind(0)`` hands out an ephemeral port, and
    any outgoing connection opened before the server binds can take the same one (seen: a stage
    started seconds after its port was chosen found it in use). Never the same port twice in
    this process. Falls back to ``bind(0)`` when the range below is too small."""
    low = _ephemeral_low()
    start = 20000 if low > 21000 else 1024
    with _handed_lock:
        if low - start > 1000:
            for _ in range(200):
                port = random.randrange(start, low)
                if port not in _handed_out and port_is_free(port, host) and port_is_free(port, "0.0.0.0"):
                    _handed_out.add(port)
                    return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        _handed_out.add(port)
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nobody listens on ``host:port``. SO_REUSEADDR, like the servers themselves use,
    so a port in TIME_WAIT after a kill -9 still counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def tcp_connectable(host: str, port: int, timeout_s: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """``"host:port"`` (first entry of a comma-separated bootstrap list) → (host, port)."""
    first = value.split(",")[0].strip()
    if first.startswith("["):  # [v6]:port
        host, _, rest = first[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    host, sep, port = first.rpartition(":")
    if not sep:
        return first, default_port
    return host, int(port)


def run_sync(factory: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already runs an
    event loop (then in a short-lived helper thread), so the service classes keep a sync API that
    works from plain scripts, pytest fixtures and asyncio code alike."""

    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout_s)

    # always on a helper thread: asyncio.run() on the caller's thread would replace (and then
    # clear) that thread's current event loop, which pytest-asyncio and callers may rely on
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(bounded())
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="hazmon-stack-sync", daemon=True)
    thread.start()
    thread.join(timeout_s + 5)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    if "value" not in box:
        raise TimeoutError("coroutine did not finish")
    return box["value"]  # type: ignore[return-value]
