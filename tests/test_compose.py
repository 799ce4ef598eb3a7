"""docker-compose.yml: parses, every hazmon service's environment is valid Settings, every
command is a real `hazmon` subcommand, every mounted file exists. No container engine runs
here, so this uses `docker compose config` only when a client with compose is present."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hazmon.cli import build_parser
from hazmon.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
_INTERP = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def _interpolate(value: str) -> str:
    return _INTERP.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value).replace("$$", "$")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _is_settings_field(env_key: str) -> bool:
    model: Any = Settings
    for part in env_key.removeprefix("HAZMON_").lower().split("__"):
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return False
        model = fields[part].annotation
    return True


def _hazmon_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in _compose()["services"].items()
        if svc.get("image", "").startswith("hazmon") or "build" in svc
    }


def test_compose_parses_with_expected_services() -> None:
    services = _compose()["services"]
    for required in ("kafka", "timescaledb", "mosquitto", "bridge", "detect", "alerting", "console", "prometheus"):
        assert required in services, required
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "timescale" in services["timescaledb"]["image"]


@pytest.mark.parametrize("name", sorted(_hazmon_services()))
def test_service_environment_is_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _hazmon_services()[name]["environment"]
    assert isinstance(env, dict) and env, f"{name}: no environment"
    for key in list(os.environ):
        if key.startswith("HAZMON_"):
            monkeypatch.delenv(key)
    script = " ".join(map(str, _hazmon_services()[name].get("command", [])))
    for key, value in env.items():
        if not key.startswith("HAZMON_"):
            # a plain variable is allowed only where the service's own script uses it
            assert f"${key}" in script.replace("$$", "$"), f"{name}: {key} is neither a setting nor used"
            continue
        assert _is_settings_field(key), f"{name}: {key} names no field of hazmon.settings.Settings"
        monkeypatch.setenv(key, _interpolate(str(value)))
    settings = load_settings()  # raises ConfigError naming the key on any mismatch
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.postgres.dsn.endswith("@timescaledb:5432/hazmon")
    assert settings.mqtt.host == "mosquitto"


@pytest.mark.parametrize("name", sorted(_hazmon_services()))
def test_service_command_parses_as_a_hazmon_command(name: str) -> None:
    """Each command line (flags included) is accepted by the real `hazmon` argument parser."""
    svc = _hazmon_services()[name]
    if svc.get("entrypoint") == ["sh", "-c"]:
        script = _interpolate(svc["command"][0])
        invocations = [shlex.split(part)[1:] for part in re.split(r"\s*&&\s*", script) if part.strip()]
    else:
        invocations = [[str(a) for a in svc["command"]]]
    assert invocations, f"{name}: no hazmon command"
    parser = build_parser()
    for argv in invocations:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{name}: `hazmon {' '.join(argv)}` is not a valid hazmon command line")
        assert callable(args.handler)


def test_mounted_files_exist_and_prometheus_scrapes_services() -> None:
    compose = _compose()
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} missing"
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    scraped = {cfg["job_name"].removeprefix("hazmon-") for cfg in prom["scrape_configs"]}
    assert scraped == {"bridge", "detect", "alerting", "console"}
    assert all(s in compose["services"] for s in scraped)
    conf = (ROOT / "deploy/compose/mosquitto.conf").read_text(encoding="utf-8")
    assert "allow_anonymous false" in conf and "acl_file" in conf and "password_file" in conf


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker compose client on this machine; YAML checks above cover the file",
)
def test_docker_compose_config_accepts_file() -> None:
    proc = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
