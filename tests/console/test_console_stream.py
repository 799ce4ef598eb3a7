"""The live board over server-sent events, through a real uvicorn: a new alarm reaches the open
page of a user whose scope covers it, and only theirs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from console_district import make_alert
from console_server import ConsoleServer

from hazmon.contracts import Severity

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _next_alert(lines, wait_s: float = 15.0) -> dict:
    async def read() -> dict:
        event = None
        async for line in lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "alert":
                return json.loads(line[6:])["alert"]
        raise AssertionError("stream ended")

    return await asyncio.wait_for(read(), wait_s)


async def test_new_alarm_is_pushed_to_scoped_viewers_only(fresh_api):
    api = fresh_api
    server = await asyncio.to_thread(lambda: ConsoleServer(api.dsn).start())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            async with client.stream("GET", "/api/stream", headers=api.auth("town-t1")) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                lines = resp.aiter_lines()
                async for line in lines:  # wait for the greeting: subscribed from here on
                    if line.startswith("event: hello"):
                        break
                now = datetime.now(UTC)
                async with api.pool.acquire() as conn:
                    other = await make_alert(conn, "F1", "S3", "fire", "fire.alarm", Severity.RED, now=now,
                                             township_id="T2", department_ids=("D-YJ",), summary="T2 火警")
                    mine = await make_alert(conn, "G1", "S1", "gas", "gas.high", Severity.ORANGE, now=now,
                                            township_id="T1", department_ids=("D-ZJ",), summary="T1 燃气")
                got = await _next_alert(lines)
                assert got["id"] == mine and got["id"] != other
                assert got["severity"] == "orange" and got["site_name"] == "老王饭店"
                # an action on it is pushed too (the board moves the card / drops it when 办结)
                r = await client.post(f"/api/alerts/{mine}/acknowledge", json={}, headers=api.auth("centre1"))
                assert r.status_code == 200
                got = await _next_alert(lines)
                assert got["id"] == mine and got["acked_by"] == "centre:centre1"
    finally:
        await asyncio.to_thread(server.stop)
