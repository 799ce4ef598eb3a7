"""``hazmon detect``: run the detector stage (consume → detect → store → produce → commit)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from hazmon.cli import run_async
from hazmon.metrics import serve_metrics
from hazmon.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("detect", help="run the detectors: readings/status/device events → events + TimescaleDB")
    p.add_argument("--group", default="hazmon-detectors", help="Kafka consumer group (default: %(default)s)")
    p.add_argument("--max-records", type=int, default=2000, help="records per poll (default: %(default)s)")
    p.add_argument("--idle-exit", type=float, default=None, metavar="S",
                   help="exit after S seconds without records (default: run forever)")
    p.add_argument("--check-config", action="store_true", help="validate the thresholds file and exit")
    p.set_defaults(handler=_detect)


def _detect(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.config import load_config

    config = load_config(settings.detectors_file if settings.detectors_file.is_file() else None)
    if args.check_config:
        print(f"thresholds ok: {config.source}")
        return 0

    async def go() -> int:
        from detectors.service import DetectorService, ServiceOptions

        serve_metrics(settings.metrics_port)
        service = DetectorService(
            settings,
            ServiceOptions(group_id=args.group, max_records=args.max_records, idle_exit_s=args.idle_exit),
            config,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, service.stop)
        stats = await service.run()
        print(f"detect: readings={stats.readings} events={stats.events} dead_letters={stats.deadletters}")
        return 0

    return run_async(go())
