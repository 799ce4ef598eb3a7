"""``hazmon canary``: the canary publisher (:mod:`ingest.canary`), registered through the
``hazmon.commands`` entry point ``canary``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from hazmon.runner import run_until_signalled
from hazmon.settings import Settings, override

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("canary", help="publish the canary devices (devices.is_canary) through the real MQTT broker "
                                      "every canary.every_s: the 监测链路 watch (issue 20)")
    p.add_argument("--every", dest="every_s", type=float, default=None, metavar="S",
                   help="seconds between two canaries of a device (default: canary.every_s, 10)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.metrics import serve_metrics
    from ingest.canary import CanaryPublisher

    if args.every_s is not None:
        settings = override(settings, "canary", {"every_s": args.every_s})
    publisher = CanaryPublisher(settings)

    async def body(stop: asyncio.Event) -> int:
        serve_metrics(settings.metrics_port)
        await publisher.run(stop)
        return 0

    return run_until_signalled(body)
