"""The console served by a real uvicorn in a background thread (its own event loop and pool),
for what an in-memory ASGI transport cannot do: server-sent events, the fuzzer, the browser."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime

import httpx
import uvicorn

from console.app import create_app
from console.auth import LoginLimits
from hazmon.settings import ConsoleSettings, PostgresSettings, Settings

__all__ = ["ConsoleServer", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConsoleServer:
    def __init__(
        self, dsn: str, *, clock: Callable[[], datetime] | None = None, board_poll_s: float = 0.2,
        console: ConsoleSettings | None = None, login_limits: LoginLimits | None = None,
        board_recheck_s: float = 30.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = Settings(postgres=PostgresSettings(dsn=dsn, pool_min=1, pool_max=4),
                            console=console or ConsoleSettings())
        kwargs: dict = {"clock": clock} if clock else {}
        if login_limits:
            kwargs["login_limits"] = login_limits
        self.app = create_app(settings, board_poll_s=board_poll_s, board_recheck_s=board_recheck_s, **kwargs)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="console-uvicorn", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self) -> ConsoleServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("console server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
