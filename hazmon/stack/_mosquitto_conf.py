"""mosquitto.conf as hazmon writes it: for the embedded broker (:class:`~hazmon.stack.MosquittoBroker`,
regenerated on every start) and for ``deploy/mosquitto/mosquitto.conf`` (:func:`deploy_config`,
the official image in docker-compose; tests/test_stack.py keeps the committed file in sync).

Pure text: no process, no file written here. Why each setting is there (persistence, queue
limits, the packet-size cap, one password file per listener) is said in the file itself and in
:mod:`hazmon.stack.mosquitto`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PACKET_MARGIN_BYTES", "VendorListener", "MosquittoConfig", "render_config", "deploy_config"]

#: headroom above settings.mqtt.max_payload_bytes: oversized payloads still reach the bridge
#: (and land in dead-letter with a reason) instead of being cut off by the broker
PACKET_MARGIN_BYTES = 64 * 1024


@dataclass
class VendorListener:
    """The listener vendors' gateways connect to: its own password file (vendor accounts only),
    client id := user name, optionally TLS (``cafile``/``certfile``/``keyfile``)."""

    port: int
    bind_address: str
    password_file: str
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""


@dataclass
class MosquittoConfig:
    """What :func:`render_config` needs; paths are written verbatim into the file."""

    port: int
    bind_address: str
    persistence_dir: str
    password_file: str
    acl_file: str
    max_payload_bytes: int = 256 * 1024
    autosave_interval_s: int = 1
    #: True: save after every ``autosave_interval_s`` *changes* instead of seconds
    autosave_on_changes: bool = False
    run_as_root: bool = False
    extra_conf: str = ""
    log_dest: str = "stderr"  # unbuffered: nothing lost from the log on kill -9
    header: list[str] = field(default_factory=list)
    vendor_listener: VendorListener | None = None
    #: comment on the main listener (what it is for, who may reach it)
    listener_note: str = "the project's accounts (bridges, tools); vendors use their own listener"


def render_config(cfg: MosquittoConfig) -> str:
    """The project's mosquitto.conf. Every tuning line says why it is there."""
    max_packet = cfg.max_payload_bytes + PACKET_MARGIN_BYTES
    lines = [
        *(f"# {h}" for h in cfg.header),
        "# hazmon mosquitto configuration (mosquitto >= 2.0)",
        "# each listener has its own password file: project accounts cannot log in where vendors",
        "# do, vendor accounts cannot log in on the project's listener",
        "per_listener_settings true",
        "",
        f"# --- {cfg.listener_note}",
        f"listener {cfg.port}" + (f" {cfg.bind_address}" if cfg.bind_address else ""),
        "allow_anonymous false",
        f"password_file {cfg.password_file}",
        f"acl_file {cfg.acl_file}",
        "",
        "# --- persistence: persistent sessions and their queued QoS 1 messages survive a restart.",
        "# The whole state is saved every autosave_interval seconds and on clean shutdown; a kill -9",
        "# loses what arrived since the last save (<= autosave_interval). Saving on every change",
        "# would rewrite the database per message, too slow for the ingest rate.",
        "persistence true",
        f"persistence_location {cfg.persistence_dir.rstrip('/')}/",
        "persistence_file mosquitto.db",
        f"autosave_on_changes {'true' if cfg.autosave_on_changes else 'false'}",
        f"autosave_interval {cfg.autosave_interval_s}",
        "",
        "# --- queues: a bridge outage must not drop readings (mosquitto's default queue is 1000 messages)",
        "max_inflight_messages 1000",
        "max_inflight_bytes 0",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "",
        f"# --- size cap: settings.mqtt.max_payload_bytes ({cfg.max_payload_bytes}) + {PACKET_MARGIN_BYTES} bytes,",
        "# so a payload a little too large reaches the bridge and is dead-lettered with a reason",
        f"max_packet_size {max_packet}",
        "",
        "set_tcp_nodelay true",
        *_vendor_listener_lines(cfg),
        f"log_dest {cfg.log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if cfg.run_as_root:
        lines += ["", "# the project's own child process: keep the caller's user (no drop to 'mosquitto')", "user root"]
    if cfg.extra_conf.strip():
        lines += ["", "# --- extra configuration given by the caller", cfg.extra_conf.strip()]
    return "\n".join(lines) + "\n"


def _vendor_listener_lines(cfg: MosquittoConfig) -> list[str]:
    v = cfg.vendor_listener
    if v is None:
        return []
    lines = [
        "",
        "# --- vendors' gateways: their accounts only (passwd.vendors from `hazmon mqtt-auth`);",
        "# the client id is the user name, so no vendor can take a bridge's (hazmon-*) client id",
        "# and destroy or resume its persistent session. One connection per vendor account.",
        f"listener {v.port}" + (f" {v.bind_address}" if v.bind_address else ""),
        "allow_anonymous false",
        f"password_file {v.password_file}",
        f"acl_file {cfg.acl_file}",
        "use_username_as_clientid true",
    ]
    if v.certfile:
        lines += [
            "# TLS: a private CA generated by `hazmon mqtt-tls` (give vendors ca.crt)",
            f"cafile {v.cafile}",
            f"certfile {v.certfile}",
            f"keyfile {v.keyfile}",
            "tls_version tlsv1.2",
        ]
    return lines + [""]


def deploy_config() -> str:
    """``deploy/mosquitto/mosquitto.conf``: the same configuration for the official
    eclipse-mosquitto image (docker-compose), files under ``/mosquitto``: plain 1883 for the
    project's accounts on the internal network (not published), TLS 8883 for vendors."""
    return render_config(
        MosquittoConfig(
            port=1883,
            bind_address="",
            persistence_dir="/mosquitto/data",
            password_file="/mosquitto/auth/passwd",
            acl_file="/mosquitto/auth/acl",
            listener_note="plain MQTT for the project's accounts (bridges): compose's internal network only, never published",
            vendor_listener=VendorListener(
                port=8883,
                bind_address="",
                password_file="/mosquitto/auth/passwd.vendors",
                cafile="/mosquitto/tls/ca.crt",
                certfile="/mosquitto/tls/server.crt",
                keyfile="/mosquitto/tls/server.key",
            ),
            header=[
                "generated by hazmon.stack.mosquitto.deploy_config(); tests/test_stack.py keeps it in sync.",
                "passwd, passwd.vendors, acl: `hazmon mqtt-auth`; tls/: `hazmon mqtt-tls` (docker-compose: hazmon-init).",
                "max_packet_size assumes HAZMON_MQTT__MAX_PAYLOAD_BYTES=262144 (the default).",
            ],
        )
    )
