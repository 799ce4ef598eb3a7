"""``hazmon registry import|export``: the registry on the command line.

Loaded by the ``hazmon`` console script, which calls :func:`register`; the tools package adds
``hazmon registry sample`` (the sample district lives outside the product, in :mod:`sim.sample`)
to the ``registry`` command registered here.

``import`` prints every bad row as ``file:line: field: problem`` on stderr (one per line) and
exits 2 having loaded nothing; warnings are printed too but do not stop the import (unless
``--strict``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hazmon.cli import run_async
from hazmon.errors import RegistryError
from hazmon.registry._import import export_registry, import_registry
from hazmon.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    reg = sub.add_parser(
        "registry", help="district registry: townships, sites, devices, responsibility matrix"
    )
    rsub = reg.add_subparsers(dest="registry_command", metavar="ACTION")
    rsub.required = True

    imp = rsub.add_parser(
        "import",
        help="validate and load YAML/CSV registry files (all or nothing)",
        description="Validate every row; load nothing if any row is bad (exit 2), "
        "else load all in one transaction.",
    )
    imp.add_argument(
        "paths", nargs="+", metavar="FILE_OR_DIR", help="a YAML file, CSV files, or a directory of them"
    )
    imp.add_argument(
        "--replace", action="store_true", help="delete rows of the given tables that the files do not name"
    )
    imp.add_argument(
        "--strict", action="store_true", help="treat warnings (e.g. a site without contacts) as errors"
    )
    imp.add_argument("--dry-run", action="store_true", help="validate and report, then roll back")
    imp.set_defaults(handler=_import)

    exp = rsub.add_parser("export", help="write the registry as CSV files (the import format)")
    exp.add_argument("out_dir", metavar="DIR")
    exp.set_defaults(handler=_export)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> int:
        try:
            report = await import_registry(
                settings.postgres.dsn,
                args.paths,
                replace=args.replace,
                strict=args.strict,
                dry_run=args.dry_run,
            )
        except RegistryError as exc:
            for err in exc.errors:
                print(str(err), file=sys.stderr)
            warnings = [w for w in getattr(exc, "warnings", []) if not args.strict]
            for warn in warnings:
                print(str(warn), file=sys.stderr)
            print(
                f"hazmon: registry import refused: {len(exc.errors)} error(s), nothing loaded",
                file=sys.stderr,
            )
            return 2
        for warn in report.warnings:
            print(str(warn), file=sys.stderr)
        print(report.summary())
        return 0

    return run_async(go())


def _export(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> int:
        counts = await export_registry(settings.postgres.dsn, args.out_dir)
        print(f"wrote {args.out_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0

    return run_async(go())
