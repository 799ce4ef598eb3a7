"""``hazmon detect``: run the detector stage (intake → engine → write → commit).

Its knobs are the settings section ``detectors`` (``HAZMON_DETECTORS__*``); a flag given here
overrides the setting for this run.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from hazmon.metrics import serve_metrics
from hazmon.runner import run_until_signalled
from hazmon.settings import Settings, override

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("detect",
                       help="run the detectors: readings/status/device events → events + TimescaleDB")
    p.add_argument("--group", dest="group_id", default=None,
                   help="Kafka consumer group (default: detectors.group_id)")
    p.add_argument("--max-records", type=int, default=None,
                   help="records per poll (default: detectors.max_records)")
    p.add_argument("--idle-exit", dest="idle_exit_s", type=float, default=None, metavar="S",
                   help="exit after S seconds without records (default: detectors.idle_exit_s: run until "
                        "signalled)")
    p.add_argument("--check-config", action="store_true", help="validate the thresholds file and exit")
    p.set_defaults(handler=_detect)


def _overridden(args: argparse.Namespace, settings: Settings) -> Settings:
    given = {k: v for k in ("group_id", "max_records", "idle_exit_s") if (v := getattr(args, k)) is not None}
    return override(settings, "detectors", given)


def _detect(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.service import build

    settings = _overridden(args, settings)
    service = build(settings)  # reads and validates the thresholds file
    if args.check_config:
        print(f"thresholds ok: {service.config.source if service.config else '(defaults)'}")
        return 0

    async def body(stop: asyncio.Event) -> int:
        serve_metrics(settings.metrics_port)
        stats = await service.run(stop)
        print(f"detect: readings={stats.readings} events={stats.events} dead_letters={stats.deadletters}")
        return 0

    return run_until_signalled(body)
