"""ingest/paho_fast.py (``BufferedClient``) and ingest/mqtt.py override and call private
paho-mqtt members: they are not part of paho's API and may change in any release.
pyproject.toml pins paho-mqtt to the minor they were written against; this test fails when a
new paho changes one of them, so an upgrade of the pin starts by re-reading those overrides."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ingest.paho_fast import BufferedClient

#: the minor of the pin in pyproject.toml (``paho-mqtt>=2.2,<2.3``)
PINNED_MINOR = "2.2"

#: private methods ingest/paho_fast.py and ingest/mqtt.py override or call, as paho-mqtt 2.2 has them
PRIVATE_METHODS = {
    "_sock_recv": "(self, bufsize: 'int') -> 'bytes'",
    "_handle_publish": "(self) -> 'MQTTErrorCode'",
    "_send_puback": "(self, mid: 'int') -> 'MQTTErrorCode'",
    "_sock_close": "(self) -> 'None'",
}

#: private attributes read by the PUBLISH fast path
PRIVATE_ATTRIBUTES = ("_in_packet", "_protocol", "_manual_ack")


def test_installed_paho_is_the_pinned_minor() -> None:
    assert version("paho-mqtt").startswith(PINNED_MINOR + "."), (
        f"paho-mqtt {version('paho-mqtt')} installed, ingest/mqtt.py was checked against {PINNED_MINOR}")


def test_private_methods_keep_their_signatures() -> None:
    for name, expected in PRIVATE_METHODS.items():
        method = getattr(paho.Client, name, None)
        assert method is not None, f"paho-mqtt {version('paho-mqtt')}: Client.{name} is gone"
        assert str(inspect.signature(method)) == expected, (
            f"paho-mqtt {version('paho-mqtt')}: Client.{name} changed")


def test_private_attributes_are_there() -> None:
    client = BufferedClient(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                            manual_ack=True)
    for name in PRIVATE_ATTRIBUTES:
        assert hasattr(client, name), f"paho-mqtt {version('paho-mqtt')}: Client.{name} is gone"
    # the fast path reads the packet type byte and the packet body of the current packet
    assert {"command", "packet"} <= set(client._in_packet)
    assert isinstance(client._in_packet["packet"], bytearray)
    assert client._protocol == paho.MQTTv5 and client._manual_ack is True
