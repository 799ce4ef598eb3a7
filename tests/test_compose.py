"""docker-compose.yml: parses, every hazmon service's environment is valid Settings, every
command is a real `hazmon` subcommand, every mounted file exists; and the production shape is
safe (issue 17): no default secret, the simulator's write-anywhere MQTT account only in the
demo profile, MQTT over TLS on the published port with the plain listener unpublished, each
bridge its own client id, Prometheus on 127.0.0.1, the console (Secure cookies) only behind the
TLS proxy whose address every SMS link uses; every HTTP port a setting, set and exposed here,
the SMS link the console's /ack (issue 16). No container engine runs here, so this uses
`docker compose config` only when a client with compose is present."""

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
_INTERP = re.compile(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}")
#: what an operator's .env (deploy/compose/make-env.sh) provides
ENV_FILE = {
    "HAZMON_PG_PASSWORD": "0f3c9a",
    "HAZMON_BRIDGE_MQTT_PASSWORD": "b7e1d2",
    "HAZMON_SMS_URL": "https://dysmsapi.aliyuncs.com/",
    "HAZMON_SMS_KEY_ID": "LTAI5t",
    "HAZMON_SMS_KEY_SECRET": "9d8e7f",
    "HAZMON_PUBLIC_BASE_URL": "https://yjzh.example.gov.cn",
    "HAZMON_MQTT_PUBLIC_HOST": "mqtt.example.gov.cn",
    "HAZMON_SIM_MQTT_PASSWORD": "5a6b7c",
    "HAZMON_ALERTMANAGER_TOKEN": "3e4f5a",
    "HAZMON_GRAFANA_ADMIN_PASSWORD": "7d8e9f",
    "HAZMON_DUTY_SMS_PHONE": "13900000000",
}
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY|TOKEN")


class MissingVariable(Exception):
    pass


def _interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``."""
    env = ENV_FILE if env is None else env

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        got = env.get(name, "")
        if op == ":?" and not got:
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        return got or (arg if op == ":-" else "")

    return _INTERP.sub(one, value).replace("$$", "$")


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
    for required in ("kafka", "timescaledb", "mosquitto", "bridge-1", "bridge-2", "detect", "alerting",
                     "console", "proxy", "prometheus"):
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
    targets = {t.split(":")[0] for cfg in prom["scrape_configs"] for sc in cfg["static_configs"]
               for t in sc["targets"]}
    assert targets == {"bridge-1", "bridge-2", "detect", "alerting", "console"}
    assert all(t in compose["services"] for t in targets)
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    assert "allow_anonymous false" in conf and "acl_file" in conf and "password_file" in conf


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker compose client on this machine; YAML checks above cover the file",
)
def test_docker_compose_config_accepts_file() -> None:
    proc = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- issue 17: production safety
def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _hazmon_argvs(svc: dict[str, Any]) -> list[list[str]]:
    """The hazmon command lines a service runs, its shell's ``$VAR`` taken from its environment."""
    if svc.get("entrypoint") == ["sh", "-c"]:
        env = {k: _interpolate(str(v)) for k, v in (svc.get("environment") or {}).items()}
        script = _interpolate(svc["command"][0])
        script = re.sub(r"\$([A-Z_][A-Z0-9_]*)", lambda m: env.get(m.group(1), ""), script)
        return [shlex.split(part)[1:] for part in re.split(r"\s*&&\s*", script) if part.strip()]
    return [[str(a) for a in svc.get("command", [])]]


def _published(svc: dict[str, Any]) -> list[str]:
    return [str(p) for p in svc.get("ports", [])]


def test_no_default_secret() -> None:
    """Every password/key is required (``${VAR:?…}``) or empty by default, never a value."""
    text = COMPOSE.read_text(encoding="utf-8")
    for m in _INTERP.finditer("\n".join(_strings(_compose()))):
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        if _SECRET_NAME.search(name):
            assert op == ":?" or (op == ":-" and arg == ""), f"${{{name}}} has a default: {m.group(0)}"
    for literal in ("change-me", "demo-secret", "demo-key", "hazmon:hazmon@", "POSTGRES_PASSWORD: hazmon"):
        assert literal not in text, literal
    # what every HAZMON_* secret setting resolves from: a variable, never a literal
    for name, svc in _compose()["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else ():
            if _SECRET_NAME.search(key.split("__")[-1]) or key == "POSTGRES_PASSWORD":
                assert "${" in str(value), f"{name}: {key} is a literal"
        dsn = str(env.get("HAZMON_POSTGRES__DSN", "")) if isinstance(env, dict) else ""
        if dsn:
            assert re.search(r"://[^:@/]+:\$\{[A-Z_]+:\?", dsn), \
                f"{name}: DSN password is not a required variable"


def test_compose_refuses_to_start_without_the_secrets() -> None:
    text = "\n".join(_strings(_compose()))  # what compose interpolates (not the comments)
    required = {m.group(1) for m in _INTERP.finditer(text) if m.group(2) == ":?"}
    assert {"HAZMON_PG_PASSWORD", "HAZMON_BRIDGE_MQTT_PASSWORD", "HAZMON_SMS_KEY_SECRET", "HAZMON_SMS_KEY_ID",
            "HAZMON_SMS_URL", "HAZMON_PUBLIC_BASE_URL", "HAZMON_MQTT_PUBLIC_HOST"} <= required
    for name in required:
        with pytest.raises(MissingVariable, match=name):
            _interpolate(text, {k: v for k, v in ENV_FILE.items() if k != name})
    # make-env.sh writes every one of them
    script = (ROOT / "deploy/compose/make-env.sh").read_text(encoding="utf-8")
    missing = sorted(n for n in required if f"\n{n}=" not in script)
    assert not missing, missing


def test_write_anywhere_mqtt_accounts_exist_only_in_the_demo_profile() -> None:
    parser = build_parser()
    for name, svc in _compose()["services"].items():
        demo = "demo" in svc.get("profiles", [])
        env = svc.get("environment") or {}
        if not demo:
            assert "hazmon-sim" not in _strings(svc) and "hazmon-admin" not in _strings(svc), name
        for argv in _hazmon_argvs(svc):
            if argv[:1] != ["mqtt-auth"]:
                continue
            args = parser.parse_args(argv)
            assert not args.with_admin, name
            if demo:
                assert args.sim_password == ENV_FILE["HAZMON_SIM_MQTT_PASSWORD"], name
            else:
                assert args.sim_password is None and not args.with_sim, \
                    f"{name} creates hazmon-sim outside the demo"
            assert args.owner == "1883:1883", f"{name}: files not owned by the eclipse-mosquitto image's user"
        if isinstance(env, dict) and env.get("HAZMON_MQTT__USERNAME") == "hazmon-sim":
            assert demo, name


def test_mqtt_published_only_over_tls_and_vendor_client_ids_bound() -> None:
    services = _compose()["services"]
    mqtt_svc = services["mosquitto"]
    assert _published(mqtt_svc) == ["8883:8883"]  # plain 1883 is not published
    mounts = {v.split(":")[1]: v.split(":")[0] for v in mqtt_svc["volumes"]}
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto/mosquitto.conf"
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    blocks = re.split(r"^listener ", conf, flags=re.M)[1:]
    listeners = {block.split("\n", 1)[0].split()[0]: block for block in blocks}
    assert set(listeners) == {"1883", "8883"}
    assert "per_listener_settings true" in conf
    tls = listeners["8883"]
    for line in ("certfile /mosquitto/tls/server.crt", "keyfile /mosquitto/tls/server.key",
                 "cafile /mosquitto/tls/ca.crt", "use_username_as_clientid true",
                 "password_file /mosquitto/auth/passwd.vendors", "allow_anonymous false"):
        assert line in tls, line
    plain = listeners["1883"]
    assert "certfile" not in plain and "password_file /mosquitto/auth/passwd\n" in plain
    # hazmon-init writes exactly the files the broker reads, into the volumes it mounts
    init = services["hazmon-init"]
    argvs = {a[0]: build_parser().parse_args(a) for a in _hazmon_argvs(init)}
    init_mounts = {v.split(":")[0]: v.split(":")[1] for v in init["volumes"]}
    assert mounts["/mosquitto/tls"] == "mosquitto-tls"
    assert init_mounts["mosquitto-tls"] == str(argvs["mqtt-tls"].out)
    assert mounts["/mosquitto/auth"] == "mosquitto-auth"
    assert init_mounts["mosquitto-auth"] == str(argvs["mqtt-auth"].out)
    assert argvs["mqtt-tls"].host == [ENV_FILE["HAZMON_MQTT_PUBLIC_HOST"]]


def test_each_bridge_has_its_own_client_id() -> None:
    parser = build_parser()
    instances = []
    for svc in _compose()["services"].values():
        argv = [str(a) for a in svc.get("command", [])]
        if argv[:1] == ["bridge"]:
            assert int(svc.get("deploy", {}).get("replicas", 1)) == 1, "replicas would share one client id"
            instances.append(parser.parse_args(argv).instance)
    assert len(instances) == 2 and len(set(instances)) == 2 and all(instances), instances


def test_only_the_proxy_and_mqtt_tls_are_published_prometheus_on_loopback() -> None:
    for name, svc in _compose()["services"].items():
        for port in _published(svc):
            if name == "proxy":
                assert port in ("443:443", "80:80"), port
            elif name == "mosquitto":
                assert port == "8883:8883"
            else:
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert _published(_compose()["services"]["prometheus"]) == ["127.0.0.1:9090:9090"]


def test_secure_cookies_only_behind_the_tls_proxy_and_links_use_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = _compose()["services"]
    console = services["console"]
    assert console["environment"]["HAZMON_CONSOLE__SECURE_COOKIES"] == "true"
    assert not console.get("ports"), \
        "the console (plain HTTP) must not be published; the proxy terminates TLS"
    proxy = services["proxy"]
    assert "caddy" in proxy["image"]
    assert "./deploy/proxy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    caddy = (ROOT / "deploy/proxy/Caddyfile").read_text(encoding="utf-8")
    assert re.search(r"^\{\$HAZMON_PUBLIC_BASE_URL\} \{$", caddy, re.M)
    assert "reverse_proxy console:8080" in caddy and "reverse_proxy @inbound alerting:8081" in caddy
    assert _settings_of("alerting", monkeypatch).inbound.port == 8081
    assert _interpolate(proxy["environment"]["HAZMON_PUBLIC_BASE_URL"]) == ENV_FILE["HAZMON_PUBLIC_BASE_URL"]
    # every SMS link is built on the public base URL (HAZMON_SMS__ACK_BASE_URL), never 127.0.0.1
    settings = _settings_of("alerting", monkeypatch)
    assert settings.sms.ack_base_url == "https://yjzh.example.gov.cn/ack"
    assert "127.0.0.1" not in settings.sms.ack_base_url and settings.sms.ack_base_url.startswith("https://")


# ------------------------------------------------------------------ issue 16: ports, the one ack link
#: every port setting of hazmon.settings.Settings that a hazmon process serves HTTP on, with the
#: compose services serving it (metrics_port: every process Prometheus scrapes)
HTTP_PORTS = {"console.port": ("console",), "inbound.port": ("alerting",), "watchdog.http_port": ("watchdog",),
              "metrics_port": ()}
#: the port settings that are not HTTP (MQTT; the embedded stack's own services)
OTHER_PORTS = {"mqtt.port", "mqtt.embedded_port", "kafka.embedded_port", "postgres.embedded_port"}


def _settings_of(name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a compose service's process runs with (its HAZMON_* environment alone)."""
    for key in list(os.environ):
        if key.startswith("HAZMON_"):
            monkeypatch.delenv(key)
    for key, value in (_compose()["services"][name].get("environment") or {}).items():
        if key.startswith("HAZMON_"):
            monkeypatch.setenv(key, _interpolate(str(value)))
    return load_settings()


def _port_settings(model: Any = Settings, prefix: str = "") -> set[str]:
    out = set()
    for field_name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and hasattr(info.annotation, "model_fields"):
            out |= _port_settings(info.annotation, f"{prefix}{field_name}.")
        elif field_name == "port" or field_name.endswith("_port"):
            out.add(prefix + field_name)
    return out


def _value(settings: Settings, key: str) -> int:
    node: Any = settings
    for part in key.split("."):
        node = getattr(node, part)
    return int(node)


def test_every_http_port_is_a_setting_set_and_exposed_in_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each HTTP port a process serves is a Settings key (a new port setting must be classified
    here), set in its service's environment (not a command-line flag) and listed in its
    ``expose``; the proxy and Prometheus reach exactly those ports."""
    assert _port_settings() == set(HTTP_PORTS) | OTHER_PORTS
    services = _compose()["services"]
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    scraped = [t for cfg in prom["scrape_configs"] for sc in cfg["static_configs"] for t in sc["targets"]]
    caddy = (ROOT / "deploy/proxy/Caddyfile").read_text(encoding="utf-8")
    upstreams = set(re.findall(r"reverse_proxy (?:@\w+ )?([\w-]+:\d+)", caddy))
    serving = {**HTTP_PORTS, "metrics_port": tuple(sorted({t.split(":")[0] for t in scraped}))}
    for key, names in serving.items():
        env_key = "HAZMON_" + key.upper().replace(".", "__")
        assert names, key
        for name in names:
            svc = services[name]
            assert env_key in svc["environment"], f"{name}: {env_key} not set (an HTTP port is a setting)"
            flags = [str(a) for a in svc.get("command", [])]
            assert not any("port" in a for a in flags), f"{name}: a port given as a flag"
            port = _value(_settings_of(name, monkeypatch), key)
            exposed = [str(p) for p in svc.get("expose", [])]
            assert port > 0 and str(port) in exposed, f"{name}: {key}={port} not exposed"
            if key == "metrics_port":
                assert f"{name}:{port}" in scraped, f"Prometheus does not scrape {name}:{port}"
            else:
                assert f"{name}:{port}" in upstreams, f"the proxy does not reach {name}:{port}"
    served = {f"{n}:{_value(_settings_of(n, monkeypatch), k)}" for k, ns in HTTP_PORTS.items() for n in ns}
    assert upstreams == served


def test_the_sms_link_is_the_consoles_ack_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """One acknowledgement page, the console's rate-limited /ack (console/routes/ack.py): the
    default link is the console's, and behind the proxy /ack/… goes to the console, never to
    alerting's inbound server (which has no such route)."""
    for key in list(os.environ):
        if key.startswith("HAZMON_"):
            monkeypatch.delenv(key)
    defaults = load_settings()
    assert defaults.sms.ack_base_url == f"http://127.0.0.1:{defaults.console.port}/ack"
    caddy = (ROOT / "deploy/proxy/Caddyfile").read_text(encoding="utf-8")
    matchers = re.findall(r"^\s*@inbound path (.+)$", caddy, re.M)
    assert matchers == ["/sms/*"], matchers  # everything else, /ack/ included, is the console's
    link = _settings_of("alerting", monkeypatch).sms.ack_base_url
    assert link == ENV_FILE["HAZMON_PUBLIC_BASE_URL"] + "/ack"
