"""The console's API routers, one module per subject; ``ROUTERS`` is what the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from console.routes import (
    ack,
    alerts,
    attachments,
    auth,
    board_views,
    broadcasts,
    diagnostics,
    events,
    field,
    field_view,
    hazard_steps,
    hazards,
    health,
    key_periods,
    kpis,
    matrix,
    notices,
    otp,
    otp_pages,
    page,
    registry,
    replay,
    reports,
    silences,
    stream,
    system,
    users,
    workorders,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    auth.router,
    otp.router,
    otp_pages.router,
    users.router,
    registry.router,
    health.router,
    events.router,
    diagnostics.router,
    stream.router,
    board_views.router,
    alerts.router,
    workorders.router,
    field.router,
    field_view.router,
    attachments.router,
    silences.router,
    reports.router,
    key_periods.router,
    broadcasts.router,
    matrix.router,
    hazards.router,
    hazard_steps.router,
    notices.router,
    kpis.router,
    replay.router,
    system.router,
    ack.router,
    page.router,
]
