"""Issue 17: the broker's accounts on a real mosquitto, with the files `hazmon mqtt-auth` and
`hazmon mqtt-tls` write and the configuration :mod:`hazmon.stack.mosquitto` renders.

* a vendor using a bridge's client id cannot take over (or clean) the bridge's persistent
  session, so the bridge's backlog survives; vendor accounts cannot log in on the project's
  listener;
* the bridges docker-compose runs have distinct client ids and share the ``$share`` group
  without knocking each other off;
* mosquitto running as its own (non-root) user reads the files;
* the vendors' listener speaks TLS with the generated CA, and nothing else.
"""

from __future__ import annotations

import os
import shlex
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from ingest_helpers import KafkaReader
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.cli import build_parser
from hazmon.stack import BRIDGE_USER, MosquittoBroker
from hazmon.stack.mosquitto import mqtt_connect_ok
from hazmon.stack.tls import write_tls_files
from ingest.acl import write_auth_files
from ingest.directory import VendorInfo

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
VENDOR = VendorInfo("gasco", "gasjson", "gasco-mqtt", name="燃气宝")


class Session:
    """A paho MQTT v5 client with a persistent session (sync)."""

    def __init__(self, host: str, port: int, user: str, password: str, client_id: str, *, clean: bool,
                 tls_ca: Path | None = None) -> None:
        self.payloads: list[bytes] = []
        self.connected = threading.Event()
        self.reason: Any = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca), cert_reqs=ssl.CERT_REQUIRED)

        def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
            self.reason = reason
            self.connected.set()

        self.client.on_connect = on_connect
        self.client.on_message = lambda c, u, m: self.payloads.append(m.payload)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect(host, port, keepalive=30, clean_start=clean, properties=props)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK"

    @property
    def accepted(self) -> bool:
        return not getattr(self.reason, "is_failure", True)

    def wait_for(self, n: int, within_s: float = 5.0) -> int:
        deadline = time.monotonic() + within_s
        while len(self.payloads) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.payloads)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_vendor_cannot_take_over_the_bridge_session(mosquitto_factory: Callable[..., MosquittoBroker], tmp_path: Path) -> None:
    files = write_auth_files([VENDOR], tmp_path / "auth")
    broker = mosquitto_factory(password_file=files.password_file, acl_file=files.acl_file,
                               vendor_password_file=files.vendor_password_file)
    assert broker.vendor_port and broker.vendor_port != broker.port
    bridge_pw, vendor_pw = files.users[BRIDGE_USER], files.users["gasco-mqtt"]
    # the bridge's persistent session, offline with its subscription: the backlog queues there
    bridge = Session(broker.host, broker.port, BRIDGE_USER, bridge_pw, "hazmon-bridge-1", clean=False)
    bridge.client.subscribe("$share/hazmon-ingest/hazmon/v1/#", qos=1)
    time.sleep(0.3)
    bridge.close()
    gateway = Session(broker.host, broker.vendor_port, "gasco-mqtt", vendor_pw, "gasco-gw-1", clean=True)
    assert gateway.accepted
    for i in range(20):
        info = gateway.client.publish(f"hazmon/v1/gasco/d{i}/telemetry", b"r%d" % i, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
    gateway.close()
    # the vendor asks for the bridge's client id with a clean start (which would drop the session)
    thief = Session(broker.host, broker.vendor_port, "gasco-mqtt", vendor_pw, "hazmon-bridge-1", clean=True)
    assert thief.accepted  # connected, but as client id 'gasco-mqtt' (use_username_as_clientid)
    thief.close()
    # and vendor accounts cannot log in on the project's listener at all
    ok, reason = mqtt_connect_ok(broker.host, broker.port, "gasco-mqtt", vendor_pw)
    assert not ok, reason
    ok, reason = mqtt_connect_ok(broker.host, broker.vendor_port, BRIDGE_USER, bridge_pw)
    assert not ok, reason  # nor the project's accounts on the vendors' listener
    back = Session(broker.host, broker.port, BRIDGE_USER, bridge_pw, "hazmon-bridge-1", clean=False)
    try:
        assert back.wait_for(20) == 20, f"bridge backlog after a vendor used its client id: {len(back.payloads)}/20"
    finally:
        back.close()
    log = broker.log_path.read_text(errors="replace")
    assert "Client hazmon-bridge-1 already connected" not in log


def _compose_bridge_instances() -> list[str]:
    """The --instance of every bridge process docker-compose runs (replicas expanded)."""
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    parser = build_parser()
    instances = []
    for svc in services.values():
        cmd = [str(a) for a in svc.get("command", [])] if isinstance(svc.get("command"), list) else shlex.split(svc.get("command", ""))
        if cmd[:1] != ["bridge"]:
            continue
        args = parser.parse_args(cmd)
        instances += [args.instance] * int(svc.get("deploy", {}).get("replicas", 1))
    return instances


async def test_compose_bridges_share_the_group_without_knocking_each_other_off(ingest_env: Any) -> None:
    instances = _compose_bridge_instances()
    assert len(instances) == 2, instances
    env = await ingest_env(20)
    bridges = [await env.start_bridge(instance=i) for i in instances]
    ids = [b.client_id for b in bridges]
    assert len(set(ids)) == 2, f"compose's bridges share a client id: {ids}"
    n = 200
    async with env.publisher() as pub:
        for i in range(n):
            d = env.devices[i % len(env.devices)]
            await pub.publish(f"{env.settings.mqtt.topic_root}/{d.vendor}/{d.device_id}/telemetry",
                              b'{"ts": %d, "values": {"gas_lel": %d}}' % (int(time.time()) - n + i, i % 10))
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        await kr.until(lambda v: len(v) >= n, timeout_s=60)
    received = [b.stats.received for b in bridges]
    assert sum(received) == n and all(r > 0 for r in received), received  # both in the $share group
    log = env.mqtt.log_path.read_text(errors="replace")
    for cid in ids:
        assert f"Client {cid} already connected" not in log


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """pytest's tmp dirs are 0700 root; a broker running as 'mosquitto' must reach its files."""
    base = Path(tempfile.mkdtemp(prefix="hazmon-nonroot-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start mosquitto as another user")
def test_mosquitto_as_its_own_user_reads_the_mqtt_auth_files(world_readable_dir: Path) -> None:
    import pwd

    entry = pwd.getpwnam("mosquitto")  # created by Debian's mosquitto package
    auth = world_readable_dir / "auth"
    files = write_auth_files([VENDOR], auth, owner=(entry.pw_uid, entry.pw_gid))
    auth.chmod(0o755)
    # what production has: mode 0640 owned by the broker, credentials.json root's only
    for path in (files.password_file, files.vendor_password_file, files.acl_file):
        st = path.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (entry.pw_uid, 0o640), path
    assert files.credentials_file.stat().st_mode & 0o777 == 0o600 and files.credentials_file.stat().st_uid == 0
    tls = write_tls_files(world_readable_dir / "tls", ["127.0.0.1", "localhost"], owner=(entry.pw_uid, entry.pw_gid))
    broker = MosquittoBroker(world_readable_dir / "mqtt", password_file=files.password_file, acl_file=files.acl_file,
                             vendor_password_file=files.vendor_password_file, tls_dir=world_readable_dir / "tls",
                             user="mosquitto")
    broker.start()
    try:
        ok, reason = mqtt_connect_ok(broker.host, broker.port, BRIDGE_USER, files.users[BRIDGE_USER])
        assert ok, reason
        assert broker.vendor_port is not None
        vendor = Session(broker.host, broker.vendor_port, "gasco-mqtt", files.users["gasco-mqtt"], "", clean=True,
                         tls_ca=tls.ca_cert)
        assert vendor.accepted, vendor.reason
        vendor.close()
    finally:
        broker.stop()


def test_vendor_listener_speaks_tls_with_the_generated_ca(mosquitto_factory: Callable[..., MosquittoBroker],
                                                          tmp_path: Path) -> None:
    files = write_auth_files([VENDOR], tmp_path / "auth")
    tls = write_tls_files(tmp_path / "tls", ["127.0.0.1", "mqtt.example.gov.cn"])
    again = write_tls_files(tmp_path / "tls", ["127.0.0.1", "mqtt.example.gov.cn"])
    assert tls.renewed and not again.renewed  # the CA and a valid certificate are kept
    broker = mosquitto_factory(password_file=files.password_file, acl_file=files.acl_file,
                               vendor_password_file=files.vendor_password_file, tls_dir=tmp_path / "tls")
    assert broker.vendor_port is not None
    pw = files.users["gasco-mqtt"]
    vendor = Session(broker.host, broker.vendor_port, "gasco-mqtt", pw, f"gw-{uuid.uuid4().hex[:6]}", clean=True,
                     tls_ca=tls.ca_cert)
    assert vendor.accepted, vendor.reason
    vendor.close()
    # plain MQTT on the TLS port gets no CONNACK
    ok, reason = mqtt_connect_ok(broker.host, broker.vendor_port, "gasco-mqtt", pw, timeout_s=2)
    assert not ok, reason
    # a CA the vendor was not given is refused by the client (the broker's certificate does not verify)
    other = write_tls_files(tmp_path / "other", ["127.0.0.1"])
    with pytest.raises(ssl.SSLError):
        Session(broker.host, broker.vendor_port, "gasco-mqtt", pw, "gw-x", clean=True, tls_ca=other.ca_cert)


def test_new_vendor_after_mqtt_auth_and_sighup(mosquitto_factory: Callable[..., MosquittoBroker], tmp_path: Path) -> None:
    """A registry change needs no broker restart: re-run mqtt-auth, send the broker SIGHUP."""
    import signal

    files = write_auth_files([VENDOR], tmp_path / "auth")
    broker = mosquitto_factory(password_file=files.password_file, acl_file=files.acl_file,
                               vendor_password_file=files.vendor_password_file)
    assert broker.vendor_port is not None
    liftco = VendorInfo("liftco", "elevator_json", "liftco-mqtt")
    files = write_auth_files([VENDOR, liftco], tmp_path / "auth")
    assert not mqtt_connect_ok(broker.host, broker.vendor_port, "liftco-mqtt", files.users["liftco-mqtt"])[0]
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not (ok := mqtt_connect_ok(broker.host, broker.vendor_port, "liftco-mqtt", files.users["liftco-mqtt"]))[0]:
        assert time.monotonic() < deadline, ok
        time.sleep(0.2)
    # the existing vendor keeps its password
    assert mqtt_connect_ok(broker.host, broker.vendor_port, "gasco-mqtt", files.users["gasco-mqtt"])[0]


def test_mqtt_tls_command_keeps_the_ca(tmp_path: Path) -> None:
    import subprocess
    import sys

    from cryptography import x509

    hazmon = str(Path(sys.executable).parent / "hazmon")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    cmd = [hazmon, "mqtt-tls", "--out", str(tmp_path / "tls"), "--host", "mqtt.example.gov.cn,10.1.2.3"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stdout and "give vendors" in first.stdout
    ca = (tmp_path / "tls" / "ca.crt").read_bytes()
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "server.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(map(str, san.get_values_for_type(x509.DNSName))) == ["mqtt.example.gov.cn"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert (tmp_path / "tls" / "ca.key").stat().st_mode & 0o777 == 0o600
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout.startswith("kept"), again.stdout + again.stderr
    renamed = subprocess.run([*cmd[:-1], "mqtt2.example.gov.cn"], env=env, capture_output=True, text=True, timeout=60)
    assert renamed.returncode == 0 and renamed.stdout.startswith("wrote")
    assert (tmp_path / "tls" / "ca.crt").read_bytes() == ca  # vendors keep the CA they were given
    bad = subprocess.run([hazmon, "mqtt-tls", "--out", str(tmp_path / "x"), "--host", " "], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "mqtt-tls: --host" in bad.stderr


def test_mqtt_auth_refuses_an_empty_secret(tmp_path: Path) -> None:
    """compose passes the demo's ${HAZMON_SIM_MQTT_PASSWORD:-}: empty must not become an account."""
    from hazmon.errors import ConfigError

    with pytest.raises(ConfigError, match="HAZMON_SIM_MQTT_PASSWORD"):
        write_auth_files([VENDOR], tmp_path / "auth", sim_password="")
    with pytest.raises(ConfigError, match="HAZMON_BRIDGE_MQTT_PASSWORD"):
        write_auth_files([VENDOR], tmp_path / "auth", bridge_password="")
    assert not (tmp_path / "auth").exists()
