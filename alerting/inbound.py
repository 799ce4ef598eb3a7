"""Inbound HTTP for alerting: delivery receipts (回执) and SMS replies (回复码).

* ``POST /sms/receipt/{provider}`` — receipts in the provider's callback shape (阿里云 SmsReport
  list, 腾讯云 status-report list, the webhook gateway's object or list);
* ``POST /sms/reply/{provider}`` — SMS sent back (阿里云 SmsUp list, 腾讯云 reply object, webhook
  object or list): the sender's own 6-digit 回复码, or 收到 / 确认 / 1 for the number's most
  recent open alert, acknowledges (alerting/ack_reply.py);
* ``POST /api/v2/alerts`` — Prometheus's own alerts, Alertmanager-compatible (bearer token),
  published on the ``events`` topic into the normal path (alerting/am_receiver.py).

The short link in the SMS (短链接确认) is not served here: the console serves it, on a
rate-limited POST behind the TLS proxy (console/routes/ack.py; the flow: docs/delivery.md,
*Acknowledgement*).

Authentication, as each provider authenticates its callbacks: the webhook gateway signs the
body (``X-Hazmon-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, the callback secret);
阿里云 (HTTP 批量推送 SmsReport/SmsUp) and 腾讯云 (状态回调/回复回调) sign nothing, so their
callback URL carries a secret token (``?token=…``, :func:`callback_token`), configured in the
provider's console. A refused callback is answered 401 (429 once its address has failed
``per_ip_failures`` times in the window) and audited.

Bounds: a body over ``max_body_bytes`` is refused 413 before it is read whole; more than
``max_items`` receipts or replies in one request, 413. Receipts are queued (bounded; full →
503, the provider retries) and written by one task on its own connection, many per statement
(:func:`alerting.receipts.record_receipts`): a flood of receipts for unknown messages never
holds a connection of the service's pool, nor waits inside a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from alerting import metrics
from alerting.ack_reply import ReplyConfirm, handle_reply, parse_replies
from alerting.acks import AckLimits, audit, count_failure, prune_limits
from alerting.am_receiver import AM_CHANNEL, AM_PROVIDER, AlertsRefused, bearer_problem, parse_alerts
from alerting.clock import Clock
from alerting.errors import AlertingError
from alerting.notify.sms_webhook import callback_token, webhook_signature
from alerting.receipts import Receipt, record_receipts
from alerting.voice_inbound import VoicePolicy, voice_routes
from hazmon.errors import ConfigError
from hazmon.logs import kv
from hazmon.proxies import client_address, parse_networks

__all__ = ["InboundConfig", "InboundApp", "build_app", "callback_token", "handle_reply", "parse_receipts",
           "parse_replies"]

log = logging.getLogger(__name__)
PROVIDERS = ("webhook", "aliyun", "tencent")
#: a receipt that matched nothing is looked up again after these delays (it may have overtaken
#: the write of the send result: a busy sender writes its results seconds after the provider
#: answered), then logged as unknown
_RETRY_S = (0.3, 1.5, 5.0, 15.0, 30.0)


@dataclass(frozen=True, slots=True)
class InboundConfig:
    """What the inbound app needs (from ``hazmon.settings.InboundSettings``)."""

    secret: str
    max_body_bytes: int = 64 * 1024
    max_items: int = 100
    window_s: int = 15 * 60
    per_ip_failures: int = 30
    per_phone_failures: int = 5
    per_alert_attempts: int = 30
    receipt_queue: int = 10_000
    #: reverse proxies whose X-Forwarded-For names the client (``inbound.trusted_proxies``)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    #: ``POST /api/v2/alerts``: Prometheus's bearer token ('' = off) and where its alerts go
    alertmanager_token: str = ""
    kafka_bootstrap: str = ""
    events_topic: str = ""
    #: call receipts (alerting/voice_inbound.py): calls per notification, first redial delay
    voice_max_attempts: int = 3
    voice_retry_delay_s: float = 60.0
    #: the confirmation SMS to a reply that acknowledged (alerting/ack_reply.py)
    confirm: ReplyConfirm = ReplyConfirm()

    @classmethod
    def from_settings(cls, settings: Any) -> InboundConfig:
        ib = settings.inbound
        secret = ib.callback_secret.get_secret_value() or settings.sms.access_key_secret.get_secret_value()
        return cls(secret=secret, max_body_bytes=ib.max_body_bytes, max_items=ib.max_items,
                   window_s=ib.window_s, per_ip_failures=ib.per_ip_failures,
                   per_phone_failures=ib.per_phone_failures,
                   per_alert_attempts=ib.per_alert_attempts, receipt_queue=ib.receipt_queue,
                   trusted_proxies=parse_networks(ib.trusted_proxies),
                   alertmanager_token=ib.alertmanager_token.get_secret_value(),
                   kafka_bootstrap=settings.kafka.bootstrap, events_topic=settings.kafka.topics.events,
                   voice_max_attempts=settings.voice.max_attempts,
                   voice_retry_delay_s=settings.voice.retry_delay_s,
                   confirm=ReplyConfirm(sign_name=settings.sms.sign_name, duty_phone=settings.sms.duty_phone,
                                        provider=settings.sms.provider))

    @property
    def limits(self) -> AckLimits:
        return AckLimits.from_settings(self)


def _items(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        yield from (d for d in data if isinstance(d, dict))
    elif isinstance(data, dict):
        yield data


def _count(data: Any) -> int:
    return len(data) if isinstance(data, list) else 1


def parse_receipts(provider: str, data: Any) -> list[Receipt]:
    out = []
    for d in _items(data):
        if provider == "aliyun":
            out.append(Receipt(provider, str(d.get("biz_id", "")), d.get("success") is True,
                               str(d.get("err_code", "")), str(d.get("out_id", ""))))
        elif provider == "tencent":
            out.append(Receipt(provider, str(d.get("sid", "")), d.get("report_status") == "SUCCESS",
                               str(d.get("errmsg", ""))))
        else:
            out.append(Receipt(provider, str(d.get("message_id", "")), d.get("status") == "delivered",
                               str(d.get("error", "")), str(d.get("id", ""))))
    return [r for r in out if r.message_id or r.notification]


def _provider_ok(provider: str) -> JSONResponse:
    """The acknowledgement each provider expects (anything else makes it push again)."""
    if provider == "aliyun":
        return JSONResponse({"code": 0, "msg": "成功"})
    if provider == "tencent":
        return JSONResponse({"result": 0, "errmsg": "OK"})
    return JSONResponse({"ok": True})


class _TooLarge(AlertingError):
    """A callback body over ``max_body_bytes``: answered 413 and audited, never read whole."""


class InboundApp:
    """The ASGI app and its receipt writer. Serve it with uvicorn; :meth:`aclose` at the end.

    ``dsn``: the receipt writer's own connection (one); None = it borrows one connection of
    ``pool`` per pass (tests)."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, config: InboundConfig, dsn: str | None = None
                 ) -> None:
        if not config.secret:
            raise ConfigError("HAZMON_INBOUND__CALLBACK_SECRET: empty (and no "
                              "HAZMON_SMS__ACCESS_KEY_SECRET): callbacks could not be authenticated")
        self.pool, self.clock, self.config, self.dsn = pool, clock, config, dsn
        self._queue: asyncio.Queue[tuple[Receipt, int]] = asyncio.Queue(maxsize=config.receipt_queue)
        self._writer: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self.unknown_receipts = 0
        self._background: set[asyncio.Task[None]] = set()
        self.router = Router(routes=[
            Route("/sms/receipt/{provider}", self._receipt, methods=["POST"]),
            Route("/sms/reply/{provider}", self._reply, methods=["POST"]),
            Route("/api/v2/alerts", self._am_alerts, methods=["POST"]),
            *voice_routes(self, VoicePolicy(config.voice_max_attempts, config.voice_retry_delay_s)),
        ])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.router.lifespan(scope, receive, send)
        if self._pruner is None or self._pruner.done():
            self._pruner = asyncio.create_task(self._prune(), name="inbound-limits-prune")
        await self.router(scope, receive, send)

    async def _prune(self) -> None:
        """Drop limit windows that can no longer refuse anything, every window."""
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await prune_limits(conn, now=self.clock.now(), window_s=self.config.window_s)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("inbound limits prune failed %s", kv(error=repr(exc)[:200]))
            await asyncio.sleep(self.config.window_s)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run ``coro`` beside the requests (work a callback's answer need not wait for);
        cancelled by :meth:`aclose`."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    # --- common ---------------------------------------------------------------------------------

    def _ip(self, request: Request) -> str:
        """The client: the peer, or — from a trusted proxy — the right-most X-Forwarded-For hop
        that is not a trusted proxy (behind a proxy every peer is the proxy, and a per-address
        limit would be one limit for everybody)."""
        peer = request.client.host if request.client else ""
        return client_address(peer, request.headers.get("x-forwarded-for", ""), self.config.trusted_proxies)

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _authentic(self, provider: str, request: Request, raw: bytes) -> str:
        """'' if the callback is the provider's, else what is wrong (in Chinese)."""
        secret = self.config.secret
        if provider == "webhook":
            got = request.headers.get("x-hazmon-signature", "")
            if not got:
                return "缺少签名 X-Hazmon-Signature"
            return "" if hmac.compare_digest(got, webhook_signature(secret, raw)) else "签名无效"
        got = request.query_params.get("token", "")
        if not got:
            return "缺少回调令牌 token"
        return "" if hmac.compare_digest(got, callback_token(secret, provider)) else "回调令牌无效"

    async def _refuse(self, request: Request, channel: str, provider: str, outcome: str, status: int,
                      error: str, **detail: Any) -> JSONResponse:
        ip = self._ip(request)
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            if outcome == "forged" and await count_failure(conn, f"ip:{ip}", self.config.per_ip_failures,
                                                           window_s=self.config.window_s, now=now):
                status, error, outcome = 429, "失败次数过多，请稍后再试", "rate_limited"
            await audit(conn, at=now, channel=channel, provider=provider, outcome=outcome, ip=ip,
                        detail={"error": error, **detail})
        headers = {"Retry-After": str(self.config.window_s)} if status == 429 else None
        return JSONResponse({"error": error}, status_code=status, headers=headers)

    async def _callback(self, request: Request, channel: str) -> tuple[str, Any] | Response:
        """Authenticated, bounded, parsed JSON of a callback, or the refusal."""
        provider = request.path_params["provider"]
        if provider not in PROVIDERS:
            return JSONResponse({"error": f"未知的短信服务商 {provider[:20]!r}"}, status_code=404)
        try:
            raw = await self._body(request)
        except _TooLarge:
            return await self._refuse(request, channel, provider, "too_large", 413,
                                      f"请求体超过 {self.config.max_body_bytes} 字节")
        problem = self._authentic(provider, request, raw)
        if problem:
            return await self._refuse(request, channel, provider, "forged", 401, problem)
        try:
            data = json.loads(raw)
        except ValueError:
            return await self._refuse(request, channel, provider, "bad_request", 400, "请求体不是 JSON")
        n = _count(data)
        if n > self.config.max_items:
            return await self._refuse(request, channel, provider, "too_large", 413,
                                      f"一次最多 {self.config.max_items} 条，收到 {n} 条", items=n)
        return provider, data

    # --- receipts -------------------------------------------------------------------------------

    async def _receipt(self, request: Request) -> Response:
        got = await self._callback(request, "receipt")
        if isinstance(got, Response):
            return got
        provider, data = got
        receipts = parse_receipts(provider, data)
        if self._queue.maxsize - self._queue.qsize() < len(receipts):
            log.warning("receipt queue full %s", kv(provider=provider, receipts=len(receipts)))
            return JSONResponse({"error": "回执队列已满，请稍后重试"}, status_code=503,
                                headers={"Retry-After": "5"})
        for r in receipts:
            self._queue.put_nowait((r, 0))
        self._ensure_writer()
        if provider == "webhook":
            return JSONResponse({"ok": True, "queued": len(receipts)})
        return _provider_ok(provider)

    def _ensure_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_receipts(), name="inbound-receipts")

    async def _connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        if self.dsn is None:
            return self.pool.acquire()  # type: ignore[no-any-return]
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn)

        @contextlib.asynccontextmanager
        async def own() -> Any:
            yield self._conn

        return own()

    async def _write_receipts(self) -> None:
        """Drain the queue in batches, one statement each; unmatched receipts are retried after
        :data:`_RETRY_S`, then logged as unknown."""
        later: list[tuple[float, Receipt, int]] = []
        while True:
            timeout = max(min(t for t, _, _ in later) - time.monotonic(), 0.0) if later else None
            batch: list[tuple[Receipt, int]] = []
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), timeout))
            except TimeoutError:
                pass
            while not self._queue.empty() and len(batch) < 1000:
                batch.append(self._queue.get_nowait())
            now_m = time.monotonic()
            batch += [(r, k) for t, r, k in later if t <= now_m]
            later = [x for x in later if x[0] > now_m]
            if not batch:
                continue
            try:
                async with await self._connection() as conn:
                    matched = await record_receipts(conn, [r for r, _ in batch], at=self.clock.now())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                metrics.ERRORS.labels("inbound").inc()
                log.warning("receipt write failed; retrying %s",
                            kv(receipts=len(batch), error=repr(exc)[:200]))
                self._conn = None
                later += [(time.monotonic() + 1.0, r, k) for r, k in batch]
                continue
            for (r, k), ok in zip(batch, matched, strict=True):
                if ok:
                    continue
                if k < len(_RETRY_S):
                    later.append((time.monotonic() + _RETRY_S[k], r, k + 1))
                else:
                    self.unknown_receipts += 1
                    metrics.NOTIFICATIONS.labels("sms", "receipt_unknown").inc()
                    log.warning("receipt for an unknown message %s",
                                kv(provider=r.provider, message_id=r.message_id[:60]))

    # --- replies --------------------------------------------------------------------------------

    async def _reply(self, request: Request) -> Response:
        got = await self._callback(request, "sms_reply")
        if isinstance(got, Response):
            return got
        provider, data = got
        ip = self._ip(request)
        results = []
        async with self.pool.acquire() as conn:
            for phone, text in parse_replies(provider, data):
                out = await handle_reply(conn, provider=provider, phone=phone, text=text,
                                         now=self.clock.now(), limits=self.config.limits, ip=ip,
                                         confirm=self.config.confirm)
                results.append(out)
        if provider != "webhook":  # the clouds push again on anything but their success answer
            resp = _provider_ok(provider)
            return resp
        if isinstance(data, dict) and results:
            out = results[0]
            if out.status >= 400:
                return JSONResponse({"error": out.message, "outcome": out.outcome}, status_code=out.status)
            return JSONResponse({"ok": True, "outcome": out.outcome, "message": out.message})
        return JSONResponse({"ok": True, "results": [
            {"outcome": o.outcome, "status": o.status, "message": o.message} for o in results]})


    # --- Prometheus's alerts (Alertmanager API v2) -----------------------------------------------

    async def _am_alerts(self, request: Request) -> Response:
        """Authenticated, bounded, fresh alerts of Prometheus onto the events topic (200 once
        the broker acknowledged them; 503 — Prometheus retries — while it cannot)."""
        cfg = self.config
        if not cfg.alertmanager_token or not cfg.events_topic:
            log.warning("alertmanager endpoint called but not configured %s", kv(ip=self._ip(request)))
            return JSONResponse({"error": "未配置 inbound.alertmanager_token：不接收 Prometheus 告警"},
                                status_code=503)
        try:
            raw = await self._body(request)
        except _TooLarge:
            return await self._refuse(request, AM_CHANNEL, AM_PROVIDER, "too_large", 413,
                                      f"请求体超过 {cfg.max_body_bytes} 字节")
        problem = bearer_problem(request.headers.get("authorization", ""), cfg.alertmanager_token)
        if problem:
            return await self._refuse(request, AM_CHANNEL, AM_PROVIDER, "forged", 401, problem)
        try:
            events = parse_alerts(raw, now=self.clock.now(), max_items=cfg.max_items)
        except AlertsRefused as exc:
            return await self._refuse(request, AM_CHANNEL, AM_PROVIDER, exc.outcome, exc.status, exc.message)
        try:
            async with self._producer_lock:
                if self._producer is None:
                    producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka_bootstrap, acks="all")
                    await producer.start()
                    self._producer = producer
            for e in events:
                await self._producer.send_and_wait(cfg.events_topic, e.model_dump_json().encode(),
                                                   key=e.device_id.encode())
        except (KafkaError, OSError) as exc:
            metrics.ERRORS.labels("inbound").inc()
            log.warning("prometheus alerts not published %s", kv(alerts=len(events), error=repr(exc)[:200]))
            return JSONResponse({"error": "事件主题暂不可写，请稍后重试"}, status_code=503,
                                headers={"Retry-After": "10"})
        log.info("prometheus alerts published %s", kv(alerts=len(events), ip=self._ip(request)))
        return JSONResponse({"ok": True, "alerts": len(events)})


def build_app(pool: asyncpg.Pool, clock: Clock, *, config: InboundConfig, dsn: str | None = None
              ) -> InboundApp:
    return InboundApp(pool, clock, config, dsn)
