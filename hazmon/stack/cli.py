"""``hazmon stack up [--duration S]`` and ``hazmon stack env``: the embedded stack by hand.

``up`` starts what is not reachable (see :mod:`hazmon.stack.facade`), prints the endpoints and
a line of ``export HAZMON_...`` settings for other shells, then waits; Ctrl-C (or the duration)
stops every service it started. ``env`` prints the exports of a stack started by ``up`` in the
same run directory.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import threading
from pathlib import Path
from typing import Any

from hazmon.settings import Settings
from hazmon.stack.facade import Stack

__all__ = ["register"]

_ENV_FILE = "stack.env.json"


def register(sub: Any) -> None:
    stack = sub.add_parser("stack", help="embedded brokers and database (Tansu, mosquitto, PostgreSQL)")
    ssub = stack.add_subparsers(dest="stack_command", metavar="ACTION")
    ssub.required = True
    up = ssub.add_parser("up", help="start the stack, print endpoints, wait (Ctrl-C stops it)")
    up.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: run until Ctrl-C)")
    up.add_argument("--run-dir", type=Path, default=None, help="logs and data (default: settings.run_dir, .run)")
    up.add_argument("--kafka-storage", choices=("memory", "s3"), default="memory",
                    help="Tansu storage; s3 keeps topics/offsets across a broker kill -9 (local moto server)")
    up.add_argument("--embedded", action="store_true", help="start every service even when configured ones answer")
    up.set_defaults(handler=_up)
    env = ssub.add_parser("env", help="print export lines for a stack started by `hazmon stack up`")
    env.add_argument("--run-dir", type=Path, default=None)
    env.set_defaults(handler=_env)


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())


def _up(args: argparse.Namespace, settings: Settings) -> int:
    run_dir: Path = (args.run_dir or settings.run_dir).resolve()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    env_file = run_dir / _ENV_FILE
    try:
        with Stack(settings, run_dir, kafka_storage=args.kafka_storage, prefer_embedded=args.embedded) as stack:
            for line in stack.describe():
                print(line)
            env_file.write_text(json.dumps(stack.env(), indent=1) + "\n", encoding="utf-8")
            env_file.chmod(0o600)
            print("\n# point other hazmon processes at this stack:")
            print(_exports(stack.env()))
            print("\nrunning" + (f" for {args.duration:g}s" if args.duration else "; Ctrl-C stops"), flush=True)
            try:
                stop.wait(args.duration)
            except KeyboardInterrupt:
                pass
            print("stopping", flush=True)
    except KeyboardInterrupt:  # Ctrl-C while starting: Stack.start() already stopped what it began
        print("interrupted; stack stopped", flush=True)
        return 130
    finally:
        env_file.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, previous)
    return 0


def _env(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.errors import StackError

    env_file = (args.run_dir or settings.run_dir).resolve() / _ENV_FILE
    try:
        env = json.loads(env_file.read_text(encoding="utf-8"))
    except OSError:
        raise StackError(f"no running stack found ({env_file} missing); start one with `hazmon stack up`") from None
    print(_exports(env))
    return 0
