"""The tools' subcommands (entry point ``tools`` of the ``hazmon.commands`` group):

* ``hazmon simulate`` — publish simulated telemetry for registered devices (:mod:`sim.devices`);
* ``hazmon sms-sim [--port N]`` — the SMS gateway simulator (:mod:`sim.gateway`);
* ``hazmon registry sample DIR`` — write the deterministic sample district (:mod:`sim.sample`),
  added to the ``registry`` command when the registry's plugin registered it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

from hazmon.cli import run_async
from hazmon.errors import ConfigError
from hazmon.logs import kv
from hazmon.runner import run_until_signalled
from hazmon.settings import Settings
from sim.devices import FireAlarm, GasLeak, Incident, Offline, Trapped

__all__ = ["INCIDENT_KINDS", "parse_incident", "register"]

log = logging.getLogger(__name__)

#: ``--incident KIND:…`` names (the demo's incident file uses the same ones)
INCIDENT_KINDS: dict[str, type[GasLeak | Trapped | FireAlarm | Offline]] = {
    "gas_leak": GasLeak, "trapped": Trapped, "fire_alarm": FireAlarm, "silence": Offline,
}


def register(sub: Any) -> None:
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

    sms = sub.add_parser("sms-sim", help="run the SMS gateway simulator")
    sms.add_argument("--host", default="127.0.0.1")
    sms.add_argument("--port", type=int, default=18090)
    sms.add_argument("--callback-url", default="", help="base URL for receipts/replies (the alerting http port)")
    sms.add_argument("--auto-reply", action="store_true", help="reply with the 回复码 of each message")
    sms.set_defaults(handler=_sms_sim)

    registry = _subcommands_of(sub.choices.get("registry"))
    if registry is not None and "sample" not in registry.choices:
        from sim.sample import add_arguments

        smp = registry.add_parser("sample", help="write the deterministic sample district as CSV files")
        add_arguments(smp)
        smp.set_defaults(handler=_sample)


def _subcommands_of(parser: argparse.ArgumentParser | None) -> Any:
    """The sub-command action of ``parser`` (None when it has none or is absent)."""
    for action in parser._actions if parser is not None else ():  # noqa: SLF001 - argparse keeps them here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action
    return None


def parse_incident(text: str) -> Incident:
    """``KIND:DEVICE:START_S`` → the scripted incident."""
    try:
        kind, device, start = text.split(":", 2)
        return INCIDENT_KINDS[kind](device, float(start))
    except (ValueError, KeyError):
        raise ConfigError(
            f"--incident {text!r}: expected KIND:DEVICE:START_S with KIND in {', '.join(INCIDENT_KINDS)}"
        ) from None


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.directory import pg_loader
    from ingest.mqtt import MqttClient
    from sim.devices import Simulator, devices_from_directory

    incidents = [parse_incident(t) for t in args.incident]

    async def go() -> int:
        directory = await pg_loader(settings.postgres.dsn)()
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


def _sms_sim(args: argparse.Namespace, settings: Settings) -> int:
    from sim.gateway import SimulatorConfig, SmsSimulator

    async def body(stop: asyncio.Event) -> int:
        secret = settings.sms.access_key_secret.get_secret_value()
        sim = SmsSimulator(SimulatorConfig(webhook_secret=secret, keys={settings.sms.access_key_id: secret},
                                           callback_url=args.callback_url, auto_reply=args.auto_reply,
                                           callback_secret=settings.inbound.callback_secret.get_secret_value(),
                                           ack_url=settings.sms.ack_base_url, duty_phone=settings.sms.duty_phone,
                                           lift_phone=settings.lift.emergency_phone))
        url = await sim.start(args.host, args.port)
        print(f"SMS simulator at {url}: POST /webhook/sms, /aliyun, /tencent; GET /messages; POST /admin/mode",
              flush=True)
        try:
            await stop.wait()
        finally:
            await sim.stop()
        return 0

    return run_until_signalled(body)


def _sample(args: argparse.Namespace, settings: Settings) -> int:
    from sim.sample import run

    return run(args)
