"""The project's own MQTT broker: ``mosquitto -c <generated conf>``.

Why not the system mosquitto: hazmon needs its own configuration: persistence (so QoS 1
messages queued for an offline persistent session survive a broker restart), queue limits large
enough that a bridge outage does not drop readings (mosquitto's default ``max_queued_messages`` is
1000), a packet-size cap matched to ``settings.mqtt.max_payload_bytes``, and password + ACL files.
The configuration is generated into the run directory by :func:`render_config` (the same
function produces ``deploy/mosquitto/mosquitto.conf``; a test keeps the two in sync); the
configuration text is :mod:`hazmon.stack._mosquitto_conf`'s, re-exported here, and this module
is the process: accounts, files, start and readiness.

Persistence trade-off (measured in tests/test_stack.py): mosquitto writes its in-memory state to
``mosquitto.db`` every ``autosave_interval`` seconds (1 s here) and on a clean shutdown (SIGTERM).
After a **kill -9**, anything that arrived since the last autosave is lost — sessions and queued
QoS 1 messages of up to ~1 s. Saving on every change (``autosave_on_changes``) would shrink that
window but rewrites the whole database per message, which does not survive a 20,000 msg/s
bridge (``autosave_on_changes=True`` makes ``autosave_interval_s`` a number of changes, for a
fault test that wants a narrower window at a throughput cost). What *is* guaranteed and tested:
messages queued for an offline persistent subscriber at least one autosave interval before the
kill are delivered after the restart; a clean stop loses nothing. Measured here (2 cores): a
kill -9 right after queueing 200 messages (and creating the session) loses all of them, session
included; saving after every change kept 2000/2000 but queueing them took 11.9 s instead of
0.5 s (every save rewrites the whole database, so it gets slower as the queue grows).

Accounts: unless whole files are passed, the broker gets a password file with ``hazmon-bridge``
(reads every hazmon topic, also via ``$share/…``; may publish presence under
``{root}/_hazmon/#`` and ``{root}/+/+/presence``), ``hazmon-sim`` (the test/demo device simulator:
publish and subscribe anywhere) and ``hazmon-admin`` (everything), with random passwords kept in
``credentials.json`` in the run directory; ``extra_users`` / ``extra_acl`` add vendor accounts.
Vendors connect on a listener of their own (``vendor_password_file``: the vendor accounts
``hazmon mqtt-auth`` writes to ``passwd.vendors``; optionally TLS): there ``use_username_as_clientid``
makes every vendor's client id its user name, and user names starting with ``hazmon-`` are
refused by the registry and by :mod:`ingest.acl`, so no vendor can take a bridge's client id
and, by resuming or cleaning its persistent session, steal or destroy the bridge's backlog.
The project accounts log in only on the main listener (``per_listener_settings true``: each
listener has its own password file), which production does not publish.
The accounts, their ACL and the ``$7$`` password hashes are :mod:`hazmon.mqtt_auth`'s (shared
with ``hazmon mqtt-auth``; re-exported here).

When ``mosquitto`` is not on PATH there is deliberately **no** pure-Python fallback (amqtt has no
equivalent persistence/queue/ACL configuration): :class:`StackError` says to run
``scripts/setup_system.sh`` (``apt-get install mosquitto``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hazmon.errors import StackError
from hazmon.mqtt_auth import (
    ADMIN_USER,
    BRIDGE_USER,
    PROJECT_PREFIX,
    SIM_USER,
    default_acl,
    password_file_text,
    password_hash,
)
from hazmon.mqtt_auth import PROJECT_USERS as _DEFAULT_USERS
from hazmon.stack._mosquitto_conf import (
    PACKET_MARGIN_BYTES,
    MosquittoConfig,
    VendorListener,
    deploy_config,
    render_config,
)
from hazmon.stack._net import free_port, port_is_free
from hazmon.stack._process import ManagedProcess

__all__ = [
    "BRIDGE_USER",
    "SIM_USER",
    "ADMIN_USER",
    "PROJECT_PREFIX",
    "VendorListener",
    "MosquittoBroker",
    "MosquittoConfig",
    "password_hash",
    "password_file_text",
    "default_acl",
    "PACKET_MARGIN_BYTES",
    "render_config",
    "deploy_config",
    "mqtt_connect_ok",
]

def mqtt_connect_ok(
    host: str, port: int, username: str | None, password: str | None, timeout_s: float = 3.0
) -> tuple[bool, str]:
    """One MQTT CONNECT with paho: (accepted?, reason). ``(False, "no answer")`` when the broker
    did not send a CONNACK in time."""
    import paho.mqtt.client as mqtt

    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        result["reason"] = reason
        done.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"hazmon-probe-{secrets.token_hex(4)}",
        protocol=mqtt.MQTTv311,
    )
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        return False, f"connect failed: {exc}"
    try:
        client.loop_start()
        if not done.wait(timeout_s):
            return False, "no answer"
        reason = result["reason"]
        failed = bool(getattr(reason, "is_failure", False))
        return (not failed), str(reason)
    finally:
        client.disconnect()
        client.loop_stop()


class MosquittoBroker(ManagedProcess):
    """mosquitto on ``127.0.0.1:port`` with the generated configuration.

    ``password_file`` / ``acl_file``: whole files used verbatim instead of the generated ones.
    ``extra_users`` ({user: password}) and ``extra_acl`` (ACL text) are appended to the generated
    ones. ``extra_conf`` is appended to mosquitto.conf. The project accounts' passwords are in
    ``.users``; ``.username`` / ``.password`` are the admin account's.

    ``vendor_password_file`` (``passwd.vendors`` from ``hazmon mqtt-auth``) adds the vendors'
    listener on ``.vendor_port`` (client id := user name); with ``tls_dir`` (``hazmon mqtt-tls``:
    ``ca.crt``, ``server.crt``, ``server.key``) it speaks TLS only. ``user``: run mosquitto as
    this system user (its data directory is chowned to it), as a container does.
    """

    name = "mqtt"
    start_timeout_s = 15.0
    grace_s = 5.0

    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        *,
        max_payload_bytes: int = 256 * 1024,
        topic_root: str = "hazmon/v1",
        password_file: Path | None = None,
        acl_file: Path | None = None,
        extra_users: Mapping[str, str] | None = None,
        extra_acl: str = "",
        extra_conf: str = "",
        autosave_interval_s: int = 1,
        autosave_on_changes: bool = False,
        binary: str | None = None,
        vendor_password_file: Path | None = None,
        vendor_port: int | None = None,
        tls_dir: Path | None = None,
        user: str | None = None,
    ) -> None:
        super().__init__(run_dir)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.max_payload_bytes = max_payload_bytes
        self.topic_root = topic_root
        self.extra_conf = extra_conf
        self.autosave_interval_s = autosave_interval_s
        self.autosave_on_changes = autosave_on_changes
        self._binary = binary
        self._custom_password_file = Path(password_file).resolve() if password_file else None
        self._custom_acl_file = Path(acl_file).resolve() if acl_file else None
        self.config_path = self.run_dir / "mosquitto.conf"
        self.persistence_dir = self.run_dir / "data"
        self.password_file = self._custom_password_file or self.run_dir / "passwd"
        self.acl_file = self._custom_acl_file or self.run_dir / "acl"
        self.users: dict[str, str] = self._load_or_make_credentials()
        self.users.update(extra_users or {})
        self._extra_acl = extra_acl
        self.username = ADMIN_USER
        self.password = self.users[ADMIN_USER]
        self.vendor_password_file = Path(vendor_password_file).resolve() if vendor_password_file else None
        self.vendor_port = (vendor_port or free_port()) if self.vendor_password_file else None
        self.tls_dir = Path(tls_dir).resolve() if tls_dir else None
        self.user = user

    def _load_or_make_credentials(self) -> dict[str, str]:
        path = self.run_dir / "credentials.json"
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if all(isinstance(stored.get(u), str) for u in _DEFAULT_USERS):
                return {u: stored[u] for u in _DEFAULT_USERS}
        except (OSError, ValueError):
            pass
        users = {u: secrets.token_urlsafe(18) for u in _DEFAULT_USERS}
        path.write_text(json.dumps(users, indent=1) + "\n", encoding="utf-8")
        path.chmod(0o600)
        return users

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def binary(self) -> str:
        found = self._binary or shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
        )
        if not found:
            raise StackError(
                "mqtt: mosquitto is not installed; run scripts/setup_system.sh "
                "(or: apt-get install mosquitto mosquitto-clients)"
            )
        return found

    def command(self) -> Sequence[str]:
        return [self.binary(), "-c", str(self.config_path)]

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.user, "group": self.user} if self.user else {}

    def prepare(self) -> None:
        self.binary()
        if not port_is_free(self.port, self.host):
            raise StackError(f"mqtt: port {self.host}:{self.port} is already in use (log: {self.log_path})")
        self.persistence_dir.mkdir(parents=True, exist_ok=True)
        if self._custom_password_file is None:
            self.password_file.write_text(password_file_text(self.users), encoding="utf-8")
            self.password_file.chmod(0o600)
        if self._custom_acl_file is None:
            text = default_acl(self.topic_root)
            if self._extra_acl.strip():
                text += "\n" + self._extra_acl.strip() + "\n"
            self.acl_file.write_text(text, encoding="utf-8")
            self.acl_file.chmod(0o600)
        for path in (self.password_file, self.acl_file, self.vendor_password_file):
            if path is not None and not path.is_file():
                raise StackError(f"mqtt: no such file: {path}")
        vendor = None
        if self.vendor_password_file is not None and self.vendor_port is not None:
            if not port_is_free(self.vendor_port, self.host):
                raise StackError(f"mqtt: port {self.host}:{self.vendor_port} is already in use (log: {self.log_path})")
            tls = {}
            if self.tls_dir is not None:
                tls = {k: str(self.tls_dir / f) for k, f in
                       (("cafile", "ca.crt"), ("certfile", "server.crt"), ("keyfile", "server.key"))}
            vendor = VendorListener(self.vendor_port, self.host, str(self.vendor_password_file), **tls)
        if self.user:
            shutil.chown(self.persistence_dir, self.user, self.user)
        cfg = MosquittoConfig(
            port=self.port,
            bind_address=self.host,
            persistence_dir=str(self.persistence_dir),
            password_file=str(self.password_file),
            acl_file=str(self.acl_file),
            max_payload_bytes=self.max_payload_bytes,
            autosave_interval_s=self.autosave_interval_s,
            autosave_on_changes=self.autosave_on_changes,
            run_as_root=os.geteuid() == 0 and not self.user,
            extra_conf=self.extra_conf,
            vendor_listener=vendor,
            header=["generated by hazmon.stack.mosquitto on every start; edits are overwritten"],
        )
        self.config_path.write_text(render_config(cfg), encoding="utf-8")

    def ready(self) -> bool:
        if self._custom_password_file is None:
            ok, reason = mqtt_connect_ok(self.host, self.port, self.username, self.password, timeout_s=2.0)
            if not ok and reason not in ("no answer",) and not reason.startswith("connect failed"):
                raise StackError(f"mqtt: broker refused the admin account: {reason} (log: {self.log_path})")
            return ok
        # custom password file: any CONNACK (even "not authorised") proves the broker answers
        ok, reason = mqtt_connect_ok(self.host, self.port, self.username, self.password, timeout_s=2.0)
        return ok or (reason != "no answer" and not reason.startswith("connect failed"))

    def describe(self) -> str:
        return f"mosquitto {self.host}:{self.port} (config {self.config_path})"
