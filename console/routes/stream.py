"""报警看板: the board snapshot and its live stream (server-sent events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from alerting import queries, queries_board
from console.auth import access
from console.board import END, StreamLimitError, board_item
from console.overdue import overdue_words
from console.pool import acquire
from console.routes._common import Conn, CurrentPrincipal, CurrentScope, DomainFilter, IdFilter
from console.routes.registry import SITE_READERS
from console.scope import build_scope

__all__ = ["router", "HEARTBEAT_S"]

router = APIRouter(prefix="/api", tags=["board"])
HEARTBEAT_S = 15.0
#: the phases of an open alarm: 研判 (alarm, verified), 派发 (dispatched), 处置 (handling), 反馈 (feedback)
OpenPhase = Literal["alarm", "verified", "dispatched", "handling", "feedback"]
#: EventSource reconnect delay
RETRY_MS = 3000


@router.get("/board", summary="报警看板 (open alerts by colour 红/橙/黄/蓝)", **access(*SITE_READERS))
async def board(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    township_id: IdFilter = None,
    domain: DomainFilter = None,
    phase: Annotated[list[OpenPhase] | None, Query(description="闭环阶段, repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict:
    """Filtered on the server (镇街, 领域, 阶段): a district's open list can be long. Each item
    carries ``overdue``, the words of what is past its time (console/overdue.py)."""
    snapshot = await queries.board(conn, scope, township_id=township_id, domain=domain,
                                   phases=tuple(phase or ()), limit=limit)
    marks = await queries_board.overdue_marks(conn, [r["id"] for r in snapshot.rows])
    now = request.app.state.clock()
    items = []
    for r in snapshot.rows:
        item = board_item(r)
        item["overdue"] = overdue_words(marks.get(r["id"]), now)
        items.append(item)
    counts = {s: snapshot.counts.get(s, 0) for s in ("red", "orange", "yellow", "blue")}
    return {"counts": counts, "items": items}


@router.get(
    "/stream",
    summary="看板实时推送 (text/event-stream; events: alert, resync, bye)",
    response_class=StreamingResponse,
    responses={429: {"description": "too many live streams of this user (实时推送连接过多)"}},
    **access(*SITE_READERS),
)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    once: Annotated[bool, Query(description="send the greeting and end (for probes)")] = False,
) -> StreamingResponse:
    """The stream holds no database connection: the scope is read with a borrowed one, then
    the board hub's one shared poller feeds every open stream."""
    app = request.app
    hub = app.state.board
    async with acquire(app) as conn:
        scope = await build_scope(conn, principal)
    try:
        sub = hub.subscribe(scope, username=principal.username, session_hash=request.state.session_hash)
    except StreamLimitError as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(RETRY_MS // 1000)}) from None

    async def events() -> AsyncIterator[str]:
        try:
            yield f"retry: {RETRY_MS}\n\nevent: hello\ndata: {{}}\n\n"
            if once:
                return
            while True:
                if sub.overflowed:
                    sub.overflowed = False
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    yield "event: resync\ndata: {}\n\n"
                try:
                    data = await asyncio.wait_for(sub.queue.get(), timeout=HEARTBEAT_S)
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                if data == END:  # hub stopping, or the session ended
                    yield f"event: bye\ndata: {json.dumps({'reason': sub.ended})}\n\n"
                    return
                yield f"event: alert\ndata: {data}\n\n"
        finally:
            hub.unsubscribe(sub)

    async def release() -> None:
        hub.unsubscribe(sub)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # a client gone before the first chunk never runs the generator's finally: free its place here too
        # (an async function: a plain one would run in a worker thread, racing the hub's loop)
        background=BackgroundTask(release),
    )
