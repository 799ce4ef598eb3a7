"""模拟回放 (what-if replay, alerting/replay.py) for the centre: the period, a proposed thresholds
file (pasted or uploaded, per vendor model) and/or routes file in, the difference against the live
configuration out. Reads only; nothing live changes.

A file that fails validation is answered 422 with the loaders' own ``file: path: problem`` lines
under ``problems`` (the words above them Chinese); a refused period (too long, not begun, no
readings) 422 with alerting's Chinese sentence."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import asyncpg
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from alerting.errors import InvalidAction, RouteConfigError
from alerting.replay import Proposal, ReplayResult, detectors_from_text, replay, routes_from_text
from alerting.replay_data import ReplayScope, scope_options
from console.auth import access
from console.routes._common import TEXT_FILTER, Conn
from console.scope import Role
from hazmon.errors import ConfigError
from hazmon.settings_replay import ReplaySettings

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["replay"])
CENTRE = (Role.CENTRE, Role.ADMIN)
_FILE_MAX = 200_000


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("须为带时区的时间")
    return at


class ReplayBody(BaseModel):
    """A replay request: the period, the proposed files' text (empty: the live file), the scope."""

    model_config = ConfigDict(extra="forbid")

    start: Annotated[datetime, AfterValidator(_aware)]
    end: Annotated[datetime, AfterValidator(_aware)]
    detectors_yaml: str = Field(default="", max_length=_FILE_MAX)
    routes_yaml: str = Field(default="", max_length=_FILE_MAX)
    model: str = Field(default="", max_length=128, pattern=TEXT_FILTER)
    vendor: str = Field(default="", max_length=64, pattern=TEXT_FILTER)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


@router.get("/replay/options", summary="模拟回放：可选的厂商型号与现行配置文件", **access(*CENTRE))
async def options(request: Request, conn: Conn) -> dict:
    settings = request.app.state.settings
    return {
        "models": await scope_options(conn),
        "max_days": settings.replay.max_days,
        "detectors_yaml": _read(Path(settings.detectors_file)),
        "routes_yaml": _read(Path(settings.routes_file)),
    }


def _refused(what: str, exc: ConfigError) -> JSONResponse:
    lines = (
        [f"{exc.file}: {p}: {m}" for p, m in exc.problems]
        if isinstance(exc, RouteConfigError)
        else str(exc).split("; ")
    )
    return JSONResponse(
        {"detail": f"{what}校验未通过，请按下列问题修改后重试（文件: 位置: 问题）", "problems": lines},
        status_code=422,
    )


#: one replay at a time: it reads a period and runs two detector engines (CPU for up to minutes)
_RUNNING = asyncio.Lock()


def _in_thread(
    dsn: str, proposal: Proposal, body: ReplayBody, now: datetime, limits: ReplaySettings
) -> ReplayResult:
    """The replay on its own connection and event loop in a worker thread, so the detector
    engines' CPU does not hold up the console's loop (the duty board, the live stream)."""

    async def go() -> ReplayResult:
        conn = await asyncpg.connect(dsn)
        try:
            return await replay(
                conn,
                proposal,
                start=body.start,
                end=body.end,
                now=now,
                scope=ReplayScope(model=body.model, vendor=body.vendor),
                limits=limits,
            )
        finally:
            await conn.close()

    return asyncio.run(go())


@router.post(
    "/replay",
    summary="模拟回放：拟议阈值/路由与现行配置的差异（只读）",
    response_model=None,
    **access(*CENTRE),
)
async def run_replay(request: Request, body: ReplayBody) -> dict | JSONResponse:
    settings = request.app.state.settings
    try:
        live = Proposal.from_files(settings.detectors_file, settings.routes_file)
    except ConfigError as exc:
        return _refused("现行配置文件", exc)
    try:
        detectors = (
            detectors_from_text(body.detectors_yaml, "detectors.yaml")
            if body.detectors_yaml.strip()
            else None
        )
    except ConfigError as exc:
        return _refused("阈值文件", exc)
    try:
        routes = routes_from_text(body.routes_yaml, "routes.yaml") if body.routes_yaml.strip() else None
    except ConfigError as exc:
        return _refused("路由文件", exc)
    proposal = Proposal(live.live_detectors, live.live_routes, detectors, routes)
    if _RUNNING.locked():
        raise HTTPException(429, "已有一个模拟回放正在进行，请稍后再试")
    async with _RUNNING:
        try:
            result = await asyncio.to_thread(
                _in_thread, settings.postgres.dsn, proposal, body, request.app.state.clock(), settings.replay
            )
        except InvalidAction as exc:
            raise HTTPException(422, str(exc)) from None
    out = result.to_json()
    out["live_detectors_file"] = Path(result.live_detectors_file).name  # no server paths in the page
    out["live_routes_file"] = Path(result.live_routes_file).name
    return out
