"""Settings: env and YAML sources, and one clear line naming the key for a bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hazmon.errors import ConfigError
from hazmon.settings import load_settings


def test_env_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAZMON_KAFKA__BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("HAZMON_MQTT__PORT", "2883")
    s = load_settings()
    assert s.kafka.bootstrap == "kafka:9092"
    assert s.mqtt.port == 2883
    assert s.kafka.topics.readings == "hazmon.readings.v1"


def test_config_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "hazmon.yaml"
    cfg.write_text("kafka:\n  topic_prefix: district7\n  partitions: 8\nmetrics_port: 9109\n", encoding="utf-8")
    monkeypatch.setenv("HAZMON_CONFIG", str(cfg))
    monkeypatch.setenv("HAZMON_KAFKA__PARTITIONS", "3")
    s = load_settings()
    assert s.kafka.topic_prefix == "district7"
    assert s.kafka.partitions == 3
    assert s.metrics_port == 9109


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("HAZMON_KAFKA__PARTITIONS", "0", "HAZMON_KAFKA__PARTITIONS: Input should be greater than or equal to 1"),
        ("HAZMON_MQTT__PORT", "not-a-port", "HAZMON_MQTT__PORT: Input should be a valid integer"),
        ("HAZMON_POSTGRES__DSN", "mysql://x", "HAZMON_POSTGRES__DSN: Value error, must start with postgresql://"),
        ("HAZMON_SMS__PROVIDER", "carrier-pigeon", "HAZMON_SMS__PROVIDER: Input should be 'webhook', 'aliyun' or 'tencent'"),
    ],
)
def test_bad_value_names_the_key(monkeypatch: pytest.MonkeyPatch, key: str, value: str, expected: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith(expected)


def test_unknown_key_in_config_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "hazmon.yaml"
    cfg.write_text("kafka:\n  bootstrp: x:1\n", encoding="utf-8")
    monkeypatch.setenv("HAZMON_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="HAZMON_KAFKA__BOOTSTRP: Extra inputs are not permitted"):
        load_settings()


def test_missing_or_broken_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HAZMON_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="no such file"):
        load_settings()
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("HAZMON_CONFIG", str(bad))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings()


def test_cli_prints_one_line_and_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "db", "migrate"],
        env={"HAZMON_KAFKA__PARTITIONS": "-1", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["hazmon: error: HAZMON_KAFKA__PARTITIONS: Input should be greater than or equal to 1 (got '-1')"]


def test_each_stage_has_its_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stages' knobs are settings (HAZMON_<SECTION>__<KEY>), not environment reads of their own."""
    monkeypatch.setenv("HAZMON_DETECTORS__MAX_RECORDS", "500")
    monkeypatch.setenv("HAZMON_DETECTORS__PRESENCE_CHECK_S", "0.5")
    monkeypatch.setenv("HAZMON_INGEST__INSTANCE", "b2")
    monkeypatch.setenv("HAZMON_POSTGRES__MIGRATIONS_DIR", "/srv/sql")
    s = load_settings()
    assert s.detectors.max_records == 500 and s.detectors.presence_check_s == 0.5
    assert s.detectors.group_id == "hazmon-detectors"
    assert s.ingest.instance == "b2"
    assert s.postgres.migrations_dir == Path("/srv/sql")


def test_clock_skew_is_one_figure() -> None:
    """The bridge flags ts_future and the engine skips detection by the same setting."""
    from detectors.engine import Engine
    from hazmon.settings import CLOCK_SKEW_S
    from ingest.validation import Limits

    s = load_settings()
    assert s.mqtt.clock_skew_s == CLOCK_SKEW_S == Engine().max_skew_s == Limits().skew_s


def test_detect_flags_override_the_section() -> None:
    import argparse

    from detectors.cli import _overridden

    s = load_settings()
    args = argparse.Namespace(group_id=None, max_records=50, idle_exit_s=None)
    assert _overridden(args, s).detectors.max_records == 50
    assert _overridden(args, s).detectors.group_id == s.detectors.group_id
    with pytest.raises(ConfigError, match=r"^detectors.max_records: Input should be greater than or equal to 1"):
        _overridden(argparse.Namespace(group_id=None, max_records=0, idle_exit_s=None), s)


def test_no_stage_reads_the_environment_itself() -> None:
    """Every knob goes through the one settings model (HAZMON_CONFIG, read by settings.py, picks
    the file). Child-process environments (hazmon/procs.py, the embedded stack) are not knobs."""
    import re

    root = Path(__file__).resolve().parents[1]
    allowed = {"hazmon/settings.py", "hazmon/procs.py"}
    reads = re.compile(r"os\.environ|os\.getenv|getenv\(")
    found = []
    for package in ("hazmon", "ingest", "detectors", "alerting", "console"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in allowed or rel.startswith("hazmon/stack/"):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if reads.search(line):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "read a setting instead:\n" + "\n".join(found)


def test_each_stage_is_built_from_its_settings() -> None:
    """One way to wire a stage: ``build(settings)`` returns it ready to run; nothing is connected yet."""
    from fastapi import FastAPI

    from console.app import build as build_console
    from detectors.service import build as build_detectors
    from hazmon.settings import DetectorSettings, IngestSettings, Settings
    from ingest.bridge import build as build_bridge

    s = Settings(ingest=IngestSettings(instance="b2"), detectors=DetectorSettings(max_records=77))
    assert build_bridge(s).client_id == "hazmon-bridge-b2"
    detector = build_detectors(s)
    assert detector.options.max_records == 77 and detector.config is not None
    assert isinstance(build_console(s), FastAPI)
