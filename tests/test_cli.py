"""The ``hazmon`` console script is assembled from entry points: every stage's (and the tools')
``register(subparsers)`` named in pyproject.toml's ``hazmon.commands`` group, none by name in
the spine."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

from hazmon.cli import COMMANDS_GROUP, build_parser, plugins, subcommands

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return dict(project["entry-points"][COMMANDS_GROUP])


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def test_installed_entry_points_are_the_declared_ones() -> None:
    # a stale editable install (pyproject changed, not reinstalled) would fail here, not later
    assert {ep.name: ep.value for ep in plugins()} == _declared()


def test_every_entry_point_loads_and_registers_a_command() -> None:
    for ep in plugins():
        sub = argparse.ArgumentParser(prog="hazmon").add_subparsers(dest="command")
        if ep.name == "tools":  # it adds `registry sample` to the registry plugin's command
            next(p for p in plugins() if p.name == "registry").load().register(sub)
        before = set(sub.choices)
        ep.load().register(sub)
        added = set(sub.choices) - before
        assert added, f"entry point {ep.name} = {ep.value} registered no command"
        for name in added:
            assert callable(sub.choices[name].get_default("handler")) or _choices(sub.choices[name]), name


def test_the_commands_of_every_stage_and_tool() -> None:
    names = subcommands()
    for expected in ("db", "topics", "stack", "registry", "bridge", "mqtt-auth", "mqtt-tls", "detect",
                     "alerting", "report", "silence", "broadcast", "routes", "console", "users",
                     "demo", "simulate", "sms-sim"):
        assert expected in names, expected
    registry = _choices(build_parser())["registry"]
    assert set(_choices(registry)) >= {"import", "export", "sample"}


def test_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "hazmon.cli", "--help"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    for name in subcommands():
        assert f"    {name} " in out or f"    {name}\n" in out, name


def test_the_spine_names_no_stage_module() -> None:
    text = (ROOT / "hazmon" / "cli.py").read_text(encoding="utf-8")
    for stage in ("ingest", "detectors", "alerting", "console", "sim"):
        assert f'"{stage}.' not in text and f"import {stage}" not in text, stage
