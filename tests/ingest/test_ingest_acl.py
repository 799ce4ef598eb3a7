"""Vendor security: files from `hazmon mqtt-auth` on a real mosquitto; a vendor's credentials
cannot publish under another vendor's prefix, and such a message never reaches Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from ingest_helpers import KafkaReader

from hazmon.errors import ConfigError
from hazmon.stack import BRIDGE_USER
from ingest.acl import acl_text, password_text, write_auth_files
from ingest.directory import VendorInfo
from ingest.mqtt import MqttClient, MqttError
from ingest.pipeline import VendorTopic

pytestmark = pytest.mark.timeout(120)


def test_acl_text_confines_each_vendor_to_its_prefix() -> None:
    text = acl_text([VendorInfo("gasco", "gasjson", "gasco-mqtt"), VendorInfo("liftco", "elevator_json", "liftco-mqtt")], "hazmon/v1",
                    [VendorTopic("gasco/{device_id}/up", "gasco", "gasjson")])
    block = text[text.index("user gasco-mqtt"):].split("\n\n")[0]
    assert "topic write hazmon/v1/gasco/#" in block and "topic write gasco/+/up" in block
    assert "liftco" not in block and "read" not in block.replace("# vendor", "")


@pytest.mark.parametrize(
    ("vendor", "problem"),
    [
        (VendorInfo("gasco\ntopic read #", "gasjson", "gasco-mqtt"), "vendor id 'gasco\\ntopic read #'"),
        (VendorInfo("gas#", "gasjson", "gasco-mqtt"), "vendor id 'gas#'"),
        (VendorInfo("gas+co", "gasjson", "gasco-mqtt"), "vendor id 'gas+co'"),
        (VendorInfo("gas co", "gasjson", "gasco-mqtt"), "vendor id 'gas co'"),
        (VendorInfo("gasco", "gasjson", "gasco\ntopic read #"), "MQTT user name 'gasco\\ntopic read #'"),
        (VendorInfo("gasco", "gasjson", "gas co"), "MQTT user name 'gas co'"),
        (VendorInfo("gasco", "gasjson", "#"), "MQTT user name '#'"),
        (VendorInfo("gasco", "gasjson", ""), "MQTT user name ''"),
        (VendorInfo("gasco", "gasjson", "hazmon-bridge-2"), "'hazmon-bridge-2' is reserved"),
    ],
)
def test_acl_refuses_what_is_not_an_identifier(vendor: VendorInfo, problem: str, tmp_path: Path) -> None:
    """Even given directly (a row inserted into the database by hand), a value that is not an
    identifier never reaches the ACL or the password file: the whole write is refused."""
    with pytest.raises(ConfigError) as err:
        acl_text([vendor], "hazmon/v1")
    assert problem in str(err.value) and str(err.value).startswith(f"mqtt-auth: vendor {vendor.id!r}")
    with pytest.raises(ConfigError):
        write_auth_files([vendor], tmp_path / "auth")
    assert not (tmp_path / "auth" / "acl").exists() and not (tmp_path / "auth" / "passwd").exists()


@pytest.mark.parametrize("user", ["a\nb", "a b", "a:b", "#", "a+", "", "a\x00"])
def test_password_file_refuses_user_names_that_are_not_identifiers(user: str) -> None:
    with pytest.raises(ConfigError):
        password_text({user: "pw"})


def test_acl_escapes_a_vendor_name_with_a_newline() -> None:
    """The name is only a comment; a newline in it must not start an ACL line of its own."""
    text = acl_text([VendorInfo("gasco", "gasjson", "gasco-mqtt", name="燃气宝\ntopic read #\r\nuser x")], "hazmon/v1")
    lines = text.splitlines()
    assert "topic read #" not in lines and "user x" not in lines
    assert not any(line.startswith("topic read #") for line in lines)
    assert any(line.startswith("# vendor gasco") and "燃气宝" in line for line in lines)


async def test_mqtt_auth_command_keeps_passwords(pg_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES ('gasco', '燃气宝', 'gasjson', 'gasco-mqtt')")
    finally:
        await conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")} | {"HAZMON_POSTGRES__DSN": pg_dsn}
    cmd = [str(Path(sys.executable).parent / "hazmon"), "mqtt-auth", "--out", str(tmp_path)]
    run = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    first = json.loads((tmp_path / "credentials.json").read_text())
    assert (await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, timeout=60)).returncode == 0
    assert json.loads((tmp_path / "credentials.json").read_text()) == first
    assert "gasco-mqtt:$7$" in (tmp_path / "passwd.vendors").read_text()
    assert "gasco-mqtt" not in (tmp_path / "passwd").read_text()  # not on the project's listener
    assert "user gasco-mqtt" in (tmp_path / "acl").read_text()
    # production: no account that writes anywhere unless asked for (the demo profile)
    assert [line.split(":")[0] for line in (tmp_path / "passwd").read_text().splitlines()] == [BRIDGE_USER]
    assert "topic readwrite #" not in (tmp_path / "acl").read_text()


async def test_mqtt_auth_command_refuses_a_bad_vendor_row_from_the_database(pg_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A row that bypassed the registry importer (inserted by hand) never reaches the ACL."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES "
                           "('gasco', '燃气宝', 'gasjson', E'gasco\ntopic read #')")
    finally:
        await conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")} | {"HAZMON_POSTGRES__DSN": pg_dsn}
    cmd = [str(Path(sys.executable).parent / "hazmon"), "mqtt-auth", "--out", str(tmp_path / "auth")]
    run = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "mqtt-auth: vendor 'gasco': MQTT user name 'gasco\\ntopic read #' is not an identifier" in run.stderr, run.stderr
    assert not (tmp_path / "auth" / "acl").exists()


async def test_vendor_cannot_publish_as_another_vendor(ingest_env, mosquitto_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # two vendors, each with one device
    vendors = [VendorInfo("sim-hazmon-json", "hazmon_json", "sim-hazmon-json"), VendorInfo("sim-gasjson", "gasjson", "sim-gasjson")]
    files = write_auth_files(vendors, tmp_path / "auth", topic_root="hazmon/v1")
    broker = mosquitto_factory(password_file=files.password_file, acl_file=files.acl_file,
                               vendor_password_file=files.vendor_password_file)
    env = await ingest_env(4, adapters=(("hazmon_json", "gas"), ("gasjson", "gas")), mqtt=broker,
                           credentials=(BRIDGE_USER, files.users[BRIDGE_USER]), root="hazmon/v1")
    bridge = await env.start_bridge()
    own, other = env.devices[0], env.devices[1]  # vendors sim-hazmon-json and sim-gasjson
    assert (own.vendor, other.vendor) == ("sim-hazmon-json", "sim-gasjson")
    user = own.vendor
    async with MqttClient(broker.host, broker.vendor_port, client_id="vendor-a", username=user, password=files.users[user]) as pub:
        # under the other vendor's prefix: refused or silently dropped by the broker
        spoof = json.dumps({"sn": other.device_id, "conc": 99, "unit": "%LEL", "alarm": "high"}).encode()
        try:
            await pub.publish(f"hazmon/v1/{other.vendor}/{other.device_id}/telemetry", spoof, timeout_s=5)
        except MqttError:
            pass
        # its own prefix works
        await pub.publish(f"hazmon/v1/{own.vendor}/{own.device_id}/telemetry", b'{"ts": %d, "values": {"gas_lel": 1.5}}' % int(time.time()))
    with pytest.raises(MqttError):  # a wrong password is refused outright
        async with MqttClient(broker.host, broker.vendor_port, client_id="vendor-x", username=user, password="wrong"):
            pass
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        await kr.until(lambda v: any(r["device_id"] == own.device_id for r in v), timeout_s=30)
        await asyncio.sleep(1.0)
        await kr.poll()
    assert all(r["device_id"] != other.device_id for r in kr.values)
    assert bridge.stats.received == 1  # the spoofed message never even reached the bridge
