"""Ingest subcommands: ``hazmon bridge``, ``hazmon mqtt-auth``, ``hazmon mqtt-tls``, ``hazmon simulate``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from hazmon.cli import run_async
from hazmon.logs import kv
from hazmon.settings import Settings

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    b = sub.add_parser("bridge", help="run the MQTT → Kafka ingest bridge (one process; run N for scale-out)")
    b.add_argument("--instance", default="", help="instance suffix of the MQTT client id (distinct per process)")
    b.add_argument("--stats-every", type=float, default=10.0, metavar="S", help="log counters every S seconds")
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

    s = sub.add_parser("simulate", help="publish simulated device telemetry for registered devices")
    s.add_argument("--devices", type=int, default=100, help="how many registered devices to simulate")
    s.add_argument("--domain", default="", help="only devices of this domain")
    s.add_argument("--batch", type=int, default=1, help="records per message (gateways batch)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--duration", type=float, default=60.0, help="seconds of wall time (paced mode)")
    s.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    s.add_argument("--blast", type=int, default=0, metavar="N", help="publish N messages as fast as possible instead")
    s.add_argument("--incident", action="append", default=[], metavar="KIND:DEVICE:START_S",
                   help="gas_leak|trapped|fire_alarm|silence:DEVICE:START_S (repeatable)")
    s.add_argument("--username", default=None)
    s.add_argument("--password", default=None)
    s.set_defaults(handler=_simulate)


def _bridge(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.bridge import main

    return run_async(main(settings, instance=args.instance, stats_every_s=args.stats_every))


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
    from ingest.bridge import _pg_loader
    from ingest.pipeline import vendor_topics_from_settings

    owner = parse_owner(args.owner) if args.owner else None

    async def go() -> int:
        directory = await _pg_loader(settings.postgres.dsn)()
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


def _parse_incident(text: str) -> Any:
    from hazmon.simulator import FireAlarm, GasLeak, Silence, Trapped

    kinds = {"gas_leak": GasLeak, "trapped": Trapped, "fire_alarm": FireAlarm, "silence": Silence}
    try:
        kind, device, start = text.split(":", 2)
        return kinds[kind](device, float(start))
    except (ValueError, KeyError):
        from hazmon.errors import ConfigError

        raise ConfigError(f"--incident {text!r}: expected KIND:DEVICE:START_S with KIND in {', '.join(kinds)}") from None


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.simulator import Simulator, devices_from_directory
    from ingest.bridge import _pg_loader
    from ingest.mqtt import MqttClient

    incidents = [_parse_incident(t) for t in args.incident]

    async def go() -> int:
        directory = await _pg_loader(settings.postgres.dsn)()
        devices = [d for d in devices_from_directory(directory) if not args.domain or d.domain == args.domain][: args.devices]
        sim = Simulator(devices, seed=args.seed, batch=args.batch, topic_root=settings.mqtt.topic_root, incidents=incidents)
        m = settings.mqtt
        password = args.password or (m.password.get_secret_value() if m.password else None)
        async with MqttClient(m.host, m.port, client_id="", username=args.username or m.username, password=password) as client:
            if args.blast:
                report = await sim.blast(client, args.blast)
            else:
                report = await sim.run(client, args.duration, speed=args.speed)
        log.info("simulation done %s", kv(devices=len(devices), published=report.published, readings=report.readings,
                                          failed=report.failed, seconds=round(report.seconds, 2)))
        print(json.dumps({"devices": len(devices), "published": report.published, "readings": report.readings,
                          "failed": report.failed, "seconds": round(report.seconds, 3)}))
        return 0 if report.failed == 0 else 1

    return run_async(go())


