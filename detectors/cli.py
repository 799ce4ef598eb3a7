"""``hazmon detect``: run the detector stage (intake → engine → write → commit).

Its knobs are the settings section ``detectors`` (``HAZMON_DETECTORS__*``); a flag given here
overrides the setting for this run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from hazmon.metrics import serve_metrics
from hazmon.runner import run_until_signalled
from hazmon.settings import Settings, override

if TYPE_CHECKING:
    from detectors.config import DetectorConfig

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
    p.add_argument("--check-config", action="store_true",
                   help="validate the thresholds file (and, when the database answers, its site_classes keys "
                        "against the registry's site classes) and exit")
    p.set_defaults(handler=_detect)


async def _unused_site_classes(config: DetectorConfig, settings: Settings) -> list[str]:
    """The thresholds file's ``site_classes`` keys no registry site uses; none checked (said on
    stderr) when the database does not answer."""
    import asyncpg

    from hazmon.registry import load_registry

    try:
        conn = await asyncpg.connect(settings.postgres.dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"registry not reachable ({exc}): site_classes keys not checked against it", file=sys.stderr)
        return []
    try:
        reg = await load_registry(conn)
    finally:
        await conn.close()
    return config.unused_site_classes(s.site_class for s in reg.sites.values())


def _overridden(args: argparse.Namespace, settings: Settings) -> Settings:
    given = {k: v for k in ("group_id", "max_records", "idle_exit_s") if (v := getattr(args, k)) is not None}
    return override(settings, "detectors", given)


def _detect(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.service import build

    settings = _overridden(args, settings)
    service = build(settings)  # reads and validates the thresholds file
    if args.check_config:
        source = service.config.source if service.config else "(defaults)"
        problems = asyncio.run(_unused_site_classes(service.config, settings)) if service.config else []
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"thresholds refused: {len(problems)} site_classes key(s) match no site in the registry",
                  file=sys.stderr)
            return 1
        print(f"thresholds ok: {source}")
        return 0

    async def body(stop: asyncio.Event) -> int:
        serve_metrics(settings.metrics_port)
        stats = await service.run(stop)
        print(f"detect: readings={stats.readings} events={stats.events} dead_letters={stats.deadletters}")
        return 0

    return run_until_signalled(body)
