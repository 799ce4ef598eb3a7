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
    p.add_argument("--once", action="store_true", help="one round of checks, print the verdict and exit "
                                                       "(0 ok, 1 degraded, 2 down); pages as a round does")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.metrics import serve_metrics
    from hazwatch.service import build

    watchdog = build(settings)

    async def body(stop: asyncio.Event) -> int:
        try:
            if args.once:
                await watchdog.round()
                for f in watchdog.findings:
                    print(f"{'ok ' if f['ok'] else 'BAD'} {f['check']}: {f['detail']}")
                print(f"verdict: {watchdog.verdict}")
                return {"ok": 0, "degraded": 1, "down": 2}[watchdog.verdict]
            serve_metrics(settings.metrics_port)
            await watchdog.run(stop)
            return 0
        finally:
            await watchdog.aclose()

    return run_until_signalled(body)
