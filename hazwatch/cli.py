"""``hazmon watchdog [--once]``: the out-of-band watchdog (:mod:`hazwatch.service`)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from hazmon.runner import run_until_signalled
from hazmon.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("watchdog", help="the out-of-band watchdog: pages the duty operator when alerting, "
                                        "the database or the canary loop fails (no Kafka)")
    p.add_argument("--once", action="store_true", help="one round of checks, print the findings and exit "
                                                       "(0 ok, 1 degraded, 2 a problem it would page); pages "
                                                       "nothing, records nothing but its heartbeat")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.metrics import serve_metrics
    from hazwatch.service import build

    watchdog = build(settings)

    async def body(stop: asyncio.Event) -> int:
        try:
            if args.once:
                await watchdog.round(page=False)
                for f in watchdog.findings:
                    mark = "?  " if f.get("unknown") else "ok " if f["ok"] else "BAD"
                    print(f"{mark} {f['check']}: {f['detail']}")
                pageable = any(o.bad for o in watchdog.observations)
                status = 2 if pageable else 1 if not all(f["ok"] for f in watchdog.findings) else 0
                print(f"verdict: {('ok', 'degraded', 'down')[status]}")
                return status
            serve_metrics(settings.metrics_port)
            await watchdog.run(stop)
            return 0
        finally:
            await watchdog.aclose()

    return run_until_signalled(body)
