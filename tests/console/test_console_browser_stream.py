"""The page's live stream in real headless Chromium when the server ends or refuses it:
a session that ended shows the login form; a refused reconnect (429 over the stream cap, 503
while the database restarts — EventSource gives up on any non-200) is retried by the page."""

from __future__ import annotations

import threading
import time

import asyncpg
import httpx
import pytest
from console_server import ConsoleServer
from test_console_browser import _in_thread, _login, browser_page  # noqa: F401 (fixture)

from hazmon.settings import ConsoleSettings

pytestmark = pytest.mark.browser


def test_a_session_ended_elsewhere_brings_the_login_form(fresh_api, browser_page):  # noqa: F811
    server = ConsoleServer(fresh_api.dsn, board_recheck_s=0.3).start()
    try:
        page = browser_page
        _login(page, server.url, "centre1")

        async def sign_out_everywhere() -> None:
            conn = await asyncpg.connect(fresh_api.dsn)
            try:
                await conn.execute("DELETE FROM console_sessions WHERE username = 'centre1'")
            finally:
                await conn.close()

        page.wait_for_selector("#live.on")
        _in_thread(sign_out_everywhere)
        page.wait_for_selector("#login-form", state="visible", timeout=15_000)
    finally:
        server.stop()


def test_a_refused_reconnect_is_retried_by_the_page(fresh_api, browser_page):  # noqa: F811
    server = ConsoleServer(fresh_api.dsn, console=ConsoleSettings(streams_per_user=1)).start()
    try:
        page = browser_page
        _login(page, server.url, "centre1")
        hub = server.app.state.board
        (sub,) = list(hub.subscribers)
        hub._task.get_loop().call_soon_threadsafe(hub._end, sub, "stopping")  # noqa: SLF001 (the console restarts)
        deadline = time.monotonic() + 10
        while hub.subscribers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not hub.subscribers
        # someone else takes the only place before the page reconnects (EventSource: 3 s)
        taken, release = threading.Event(), threading.Event()

        def hold() -> None:
            headers = {"Authorization": f"Bearer {fresh_api.tokens['centre1'][0]}"}
            with httpx.stream("GET", server.url + "/api/stream", headers=headers, timeout=30) as r:
                assert r.status_code == 200
                taken.set()
                release.wait(30)

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert taken.wait(10)
        page.wait_for_selector("#live.off", timeout=10_000)
        time.sleep(4)  # the page's reconnect got 429: EventSource is closed for good
        release.set()
        holder.join(10)
        page.wait_for_selector("#live.on", timeout=20_000)
    finally:
        server.stop()
