"""The ``hazmon`` console script is assembled from entry points: every stage's (and the tools')
``register(subparsers)`` named in pyproject.toml's ``hazmon.commands`` group, none by name in
the spine."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hazmon.cli import COMMANDS_GROUP, build_parser, plugins, subcommands
from hazmon.errors import ConfigError

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


def test_registry_sample_from_the_tools_writes_the_sample_district(tmp_path: Path) -> None:
    from hazmon.cli import main
    from sim.sample import main as sample_main

    assert main(["registry", "sample", str(tmp_path / "cli"), "--devices", "50", "--sites", "10"]) == 0
    assert sample_main([str(tmp_path / "direct"), "--devices", "50", "--sites", "10"]) == 0
    files = sorted(p.name for p in (tmp_path / "direct").iterdir())
    assert files and sorted(p.name for p in (tmp_path / "cli").iterdir()) == files
    for name in files:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "direct" / name).read_bytes(), name


def test_simulate_refuses_a_bad_incident_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from hazmon.cli import main
    from sim.cli import parse_incident
    from sim.devices import FireAlarm, Offline

    assert parse_incident("fire_alarm:FP-1:30") == FireAlarm("FP-1", 30.0)
    assert parse_incident("silence:GAS-2:5") == Offline("GAS-2", 5.0)
    assert main(["simulate", "--incident", "flood:GAS-1:10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hazmon: error: --incident 'flood:GAS-1:10': expected KIND:DEVICE:START_S")
    assert err.count("\n") == 1
    with pytest.raises(ConfigError, match="expected KIND"):
        parse_incident("gas_leak:GAS-1")
