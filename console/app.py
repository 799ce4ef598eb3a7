"""The console's FastAPI application factory.

``create_app(settings, pool=None)``: the HTTP API under ``/api`` (OpenAPI at
``/api/openapi.json``, every operation carrying its ``x-roles`` access rule), the Chinese web
page at ``/`` with its static files, and the live board hub. When no pool is given the app
opens one on ``settings.postgres.dsn`` at start-up and closes it at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.auth import LoginLimits, PasswordChecks, SecurityHeaders, parse_networks
from console.board import BoardHub
from console.otp import OtpLimits
from console.pool import DB_DOWN, DB_UNAVAILABLE_DETAIL
from console.refusals import error_zh, problem_zh, validation_zh
from console.routes import ROUTERS
from console.routes.page import STATIC_DIR
from hazmon import heartbeat
from hazmon.errors import HazmonError
from hazmon.logs import kv
from hazmon.settings import Settings

__all__ = ["build", "create_app", "iter_api_routes"]

log = logging.getLogger(__name__)


def iter_api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every APIRoute of the app, also inside included routers (newer FastAPI keeps included
    routers as branches instead of copying their routes): what the authorization test walks."""

    def walk(routes: list[Any]) -> Iterator[APIRoute]:
        for r in routes:
            if isinstance(r, APIRoute):
                yield r
            elif getattr(r, "original_router", None) is not None:
                yield from walk(r.original_router.routes)

    yield from walk(app.routes)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build(settings: Settings) -> FastAPI:
    """The console stage wired from its settings (``hazmon console``): what uvicorn serves.
    Tests that move time or share a pool call :func:`create_app` with those parts."""
    return create_app(settings)


def create_app(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Callable[[], datetime] = _utcnow,
    login_limits: LoginLimits | None = None,
    otp_limits: OtpLimits | None = None,
    board_poll_s: float = 1.0,
    board_recheck_s: float = 30.0,
) -> FastAPI:
    """Build the console app. ``clock`` is injectable so tests can move time (session expiry,
    stale sensors); ``board_poll_s`` is how often the live board looks for changed alerts,
    ``board_recheck_s`` how often it re-checks the sessions of open streams."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_pool = pool is None
        app.state.pool = pool or await asyncpg.create_pool(
            settings.postgres.dsn, min_size=settings.postgres.pool_min, max_size=settings.postgres.pool_max
        )
        app.state.board = BoardHub(
            app.state.pool, clock=clock, poll_s=board_poll_s,
            per_user=settings.console.streams_per_user, max_streams=settings.console.streams_max,
            recheck_s=board_recheck_s,
        )
        await app.state.board.start()
        beat_stop = asyncio.Event()  # its stage_heartbeats row (hazmon/heartbeat.py, issue 20)
        beat = asyncio.create_task(heartbeat.run(settings.postgres.dsn, "console", beat_stop))
        log.info("console started %s", kv(own_pool=own_pool))
        try:
            yield
        finally:
            beat_stop.set()
            beat.cancel()
            await app.state.board.stop()
            if own_pool:
                await app.state.pool.close()

    app = FastAPI(
        title="hazmon console API (城市安全风险监测预警平台)",
        version="1",
        description="Operator console of the district work-safety monitoring centre. "
        "Every operation lists the roles it admits in `x-roles`; data is scoped per user.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI loads from a CDN: not allowed here
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.login_limits = login_limits or LoginLimits()
    app.state.otp_limits = otp_limits or OtpLimits()  # 短信验证码登录 (console/otp.py)
    app.state.password_checks = PasswordChecks(settings.console.login_concurrency)
    app.state.trusted_proxies = parse_networks(settings.console.trusted_proxies)
    app.state.pool = pool
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders, hsts=settings.console.secure_cookies)

    @app.exception_handler(asyncpg.DataError)
    async def _bad_data(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # e.g. a value PostgreSQL cannot store; the input is wrong, not the server
        log.info("bad input reached the database %s", kv(path=request.url.path, error=str(exc)))
        return JSONResponse({"detail": problem_zh("invalid input: "), "error": str(exc)}, status_code=400)

    async def _db_down(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL restarting or unreachable: the caller may retry; not a bug of ours
        log.warning("database unavailable %s", kv(path=request.url.path, error=repr(exc)))
        return JSONResponse({"detail": problem_zh(DB_UNAVAILABLE_DETAIL)}, status_code=503,
                            headers={"Retry-After": "5"})

    for exc_type in DB_DOWN:
        app.add_exception_handler(exc_type, _db_down)

    @app.exception_handler(HazmonError)
    async def _domain_error(request: Request, exc: HazmonError) -> Response:
        if isinstance(exc, StarletteHTTPException):  # a refusal that carries its own status and words
            return await http_exception_handler(request, exc)
        return JSONResponse({"detail": problem_zh(str(exc))}, status_code=400)

    # every error a person may read is Chinese (console/refusals.py, issue 14): an HTTPException's
    # detail translated, FastAPI's 422 list as one sentence (the list kept under "errors")
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        zh = HTTPException(exc.status_code, error_zh(exc.detail), headers=getattr(exc, "headers", None))
        return await http_exception_handler(request, zh)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors())
        return JSONResponse({"detail": validation_zh(errors), "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error %s", kv(path=request.url.path, method=request.method))
        return JSONResponse({"detail": problem_zh("internal error")}, status_code=500)

    return app

