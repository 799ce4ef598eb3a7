"""Ingest subcommands: ``hazmon bridge``, ``hazmon mqtt-auth``, ``hazmon mqtt-tls``.

(``hazmon simulate`` is a tool: :mod:`sim.cli`.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hazmon.cli import run_async
from hazmon.settings import Settings, override

if TYPE_CHECKING:
    from ingest.bridge import Bridge

__all__ = ["register", "serve", "run_module"]

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    b = sub.add_parser("bridge", help="run the MQTT → Kafka ingest bridge (one process; run N for scale-out)")
    b.add_argument("--instance", default=None,
                   help="suffix of the MQTT client id, distinct per process (default: ingest.instance)")
    b.add_argument("--stats-every", dest="stats_every_s", type=float, default=None, metavar="S",
                   help="log counters every S seconds (default: ingest.stats_every_s)")
    b.set_defaults(handler=_bridge)

    a = sub.add_parser("mqtt-auth", help="write the mosquitto password files and ACL for every registered vendor")
    a.add_argument("--out", type=Path, default=Path("deploy/mosquitto"),
                   help="directory for passwd (project accounts), passwd.vendors, acl, credentials.json")
    a.add_argument("--bridge-password", default=None, help="password of the hazmon-bridge account (default: generated/kept)")
    a.add_argument("--sim-password", default=None,
                   help="add the hazmon-sim account (writes anywhere: demo only) with this password")
    a.add_argument("--with-sim", action="store_true", help="add the hazmon-sim account (password generated/kept)")
    a.add_argument("--with-admin", action="store_true", help="add the hazmon-admin account (everything: not for production)")
    a.add_argument("--owner", default=None, metavar="UID:GID|USER",
                   help="owner of the broker's files (mosquitto drops root before reading them), mode 0640")
    a.set_defaults(handler=_mqtt_auth)

    t = sub.add_parser("mqtt-tls", help="write a private CA and the broker's TLS server certificate (kept across runs)")
    t.add_argument("--out", type=Path, required=True, help="directory for ca.crt, ca.key, server.crt, server.key")
    t.add_argument("--host", action="append", required=True, metavar="NAME_OR_IP",
                   help="a host name or IP address vendors connect to (repeatable; comma-separated accepted)")
    t.add_argument("--owner", default=None, metavar="UID:GID|USER", help="owner of server.key/server.crt (the broker's user)")
    t.set_defaults(handler=_mqtt_tls)


def _bridge(args: argparse.Namespace, settings: Settings) -> int:
    """Its knobs are the ``mqtt`` and ``ingest`` settings sections; a flag overrides one for this run."""
    given = {k: v for k in ("instance", "stats_every_s") if (v := getattr(args, k)) is not None}
    return _run_bridge(override(settings, "ingest", given))


def _run_bridge(settings: Settings) -> int:
    from hazmon.runner import run_until_signalled
    from ingest.bridge import build

    bridge = build(settings)
    return run_until_signalled(lambda stop: serve(bridge, stop))


async def serve(bridge: Bridge, stop: asyncio.Event) -> int:
    """Run ``bridge`` until ``stop``, serving metrics and logging its counters every
    ``ingest.stats_every_s``."""
    from hazmon.metrics import serve_metrics
    from ingest.diagnostics import report_every

    s = bridge.settings
    serve_metrics(s.metrics_port)
    def counters() -> dict[str, Any]:
        return {**bridge.stats.__dict__, "in_flight": bridge._in_flight}

    reporter = asyncio.create_task(report_every(s.ingest.stats_every_s, counters, bridge.diagnostics))
    try:
        await bridge.run(stop)
    finally:
        reporter.cancel()
    return 0


def run_module(argv: list[str]) -> int:
    """``python -m ingest.bridge [INSTANCE]``: the bridge, INSTANCE as ``ingest.instance``."""
    from hazmon.logs import setup_logging
    from hazmon.settings import load_settings

    settings = load_settings()
    settings = override(settings, "ingest", {"instance": argv[0]} if argv else {})
    setup_logging(settings.log_level)
    return _run_bridge(settings)


def _mqtt_tls(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.stack.tls import write_tls_files
    from ingest.acl import parse_owner

    hosts = [h for arg in args.host for h in arg.split(",")]
    owner = parse_owner(args.owner) if args.owner else None
    files = write_tls_files(args.out, hosts, owner=owner)
    print(f"{'wrote' if files.renewed else 'kept'} {files.server_cert} for {', '.join(h.strip() for h in hosts if h.strip())}; "
          f"give vendors {files.ca_cert}")
    return 0


def _mqtt_auth(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.acl import parse_owner, write_auth_files
    from ingest.directory import pg_loader
    from ingest.pipeline import vendor_topics_from_settings

    owner = parse_owner(args.owner) if args.owner else None

    async def go() -> int:
        directory = await pg_loader(settings.postgres.dsn)()
        files = write_auth_files(
            directory.vendors.values(),
            args.out,
            topic_root=settings.mqtt.topic_root,
            vendor_topics=vendor_topics_from_settings(settings.mqtt.vendor_topics),
            bridge_password=args.bridge_password,
            sim_password=args.sim_password,
            with_sim=args.with_sim,
            with_admin=args.with_admin,
            owner=owner,
        )
        print(f"wrote {files.password_file}, {files.vendor_password_file} and {files.acl_file} for "
              f"{len(directory.vendors)} vendor(s); passwords in {files.credentials_file} (keep it secret)")
        return 0

    return run_async(go())
