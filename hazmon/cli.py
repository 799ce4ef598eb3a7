"""The ``hazmon`` console script.

Each stage (and the tools package) contributes its subcommands through a ``register(subparsers)``
function in its own ``cli`` module, named by an entry point of the ``hazmon.commands`` group in
pyproject.toml: the spine names no stage, and this file stays the same as stages are added.
Plugins register in the order of their entry-point names, so a plugin may add a subcommand to
a command of one named before it (``tools`` adds ``registry sample``).
Every deliberate error (:class:`~hazmon.errors.HazmonError`) becomes one line on stderr and
exit status 2; a bad setting never produces a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from aiokafka.errors import KafkaConnectionError

from hazmon.errors import HazmonError
from hazmon.logs import setup_logging
from hazmon.settings import Settings, load_settings

__all__ = ["COMMANDS_GROUP", "main", "run_async", "build_parser", "plugins", "subcommands"]

#: the entry-point group every stage's ``cli`` module registers under (pyproject.toml)
COMMANDS_GROUP = "hazmon.commands"

log = logging.getLogger("hazmon")


def run_async(coro: Any) -> int:
    """Run a command coroutine; Ctrl-C ends it with status 130 after its cleanup ran."""
    try:
        result = asyncio.run(coro)
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def plugins() -> list[EntryPoint]:
    """The installed ``hazmon.commands`` entry points, in the order they register (by name)."""
    return sorted(entry_points(group=COMMANDS_GROUP), key=lambda ep: ep.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hazmon", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for ep in plugins():
        ep.load().register(sub)
    return parser


def subcommands() -> set[str]:
    """The names of the ``hazmon`` subcommands of the stages installed here."""
    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 - argparse keeps subparsers here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return set(action.choices)
    return set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings: Settings = load_settings()
        setup_logging(args.log_level or settings.log_level)
        handler: Callable[[argparse.Namespace, Settings], int] = args.handler
        return handler(args, settings)
    except HazmonError as exc:
        print(f"hazmon: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, KafkaConnectionError) as exc:
        # an unreachable service: one line naming it, not a traceback
        print(f"hazmon: error: cannot reach a service: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
