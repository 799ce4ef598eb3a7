"""Outbound HTTP of the notification channels (SMS providers, webhooks), on aiohttp.

Why aiohttp and not httpx here: in a storm the alerting process sends hundreds of requests a
second, and the client's CPU per request decides how fast the last SMS leaves. Measured against
the project's SMS simulator on the 2-core benchmark machine (800 keep-alive POSTs, 32 at once):
httpx 0.97 ms of CPU per request (≈ 1,000 req/s), aiohttp 0.24 ms (≈ 3,300 req/s). The tests and
tools keep httpx; only this hot path changed.

Adapters see only :class:`HttpClient.post` and :class:`HttpAnswer` (status, headers, body), so
they do not depend on the client library. A transport failure or timeout becomes a retryable
:class:`~alerting.errors.ProviderError`: the outbox backs off and tries again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from alerting.errors import ProviderError

__all__ = ["HttpAnswer", "HttpClient"]


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A provider's answer, read whole. ``headers`` is case-insensitive (aiohttp's multidict)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.body)


class HttpClient:
    """One keep-alive connection pool of at most ``max_connections`` to the provider.

    The aiohttp session is made on first use, inside the running event loop (aiohttp binds a
    session to its loop), so a client can be built anywhere."""

    def __init__(self, name: str, *, timeout_s: float = 5.0, max_connections: int = 32) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.max_connections = max(1, max_connections)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30.0)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                cookie_jar=aiohttp.DummyCookieJar(),  # a provider's cookies are no state of ours
            )
        return self._session

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> HttpAnswer:
        try:
            async with self._get_session().post(url, data=body, headers=dict(headers)) as resp:
                return HttpAnswer(resp.status, resp.headers, await resp.read())
        except TimeoutError:  # aiohttp's timeouts are asyncio.TimeoutError (= TimeoutError on 3.11)
            raise ProviderError(f"{self.name}: timeout after {self.timeout_s:g} s", retryable=True) from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{self.name}: {exc!r}"[:300], retryable=True) from None

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            # let the connector's transports close before the loop ends (aiohttp's advice)
            await asyncio.sleep(0)
        self._session = None
