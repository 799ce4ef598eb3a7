"""The paho-mqtt overrides behind :class:`ingest.mqtt.MqttClient`'s read path.

paho reads a packet header byte by byte: reads here come from a 64 KiB user-space buffer (one
``recv`` serves many packets). And a QoS 0/1 PUBLISH is decoded without paho's ``MQTTMessage``
and v5 ``Properties`` objects, which cost more than the rest of the read path.

These override private paho methods (``_sock_recv``, ``_handle_publish``) and use private
members (``_send_puback``, ``_in_packet``, ``_protocol``, ``_manual_ack``; ingest/mqtt.py calls
``_sock_close``): pyproject.toml pins paho-mqtt to the minor they were written against, and
tests/ingest/test_paho_private.py fails when one of them changes.
"""

from __future__ import annotations

from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

__all__ = ["BufferedClient"]


class BufferedClient(paho.Client):
    """paho client whose socket reads come from a 64 KiB user-space buffer, with a lean PUBLISH hook."""

    _hz_buf: bytes = b""
    _hz_pos: int = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._hz_buf, self._hz_pos
        if pos >= len(buf):
            data = super()._sock_recv(65536)  # raises BlockingIOError when nothing is there
            if not data:
                return data  # EOF: paho sees the connection lost
            buf, pos = self._hz_buf, self._hz_pos = data, 0
        chunk = buf[pos : pos + bufsize]
        self._hz_pos = pos + len(chunk)
        return chunk

    #: lean PUBLISH hook: (topic, payload, qos, mid, dup, retain) → None
    _hz_on_publish: Callable[[str, bytes, int, int, bool, bool], None] | None = None

    def _handle_publish(self) -> MQTTErrorCode:
        """QoS 0/1 PUBLISH decoded without paho's MQTTMessage and v5 Properties objects (the
        bridge uses no publish property); they cost more than the rest of the read path."""
        hook = self._hz_on_publish
        cmd = self._in_packet["command"]
        qos = (cmd & 0x06) >> 1
        if hook is None or qos == 2 or self._protocol != paho.MQTTv5:
            return super()._handle_publish()
        pkt = self._in_packet["packet"]
        try:
            slen = (pkt[0] << 8) | pkt[1]
            topic = bytes(pkt[2 : 2 + slen]).decode("utf-8")
            pos = 2 + slen
            mid = 0
            if qos:
                mid = (pkt[pos] << 8) | pkt[pos + 1]
                pos += 2
            plen, mult = 0, 1
            while True:  # properties length: a variable byte integer; the properties are skipped
                b = pkt[pos]
                pos += 1
                plen += (b & 127) * mult
                mult *= 128
                if not b & 128:
                    break
            if mult > 128**4:
                return MQTTErrorCode.MQTT_ERR_PROTOCOL
            payload = bytes(pkt[pos + plen :])
        except (IndexError, UnicodeDecodeError):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        hook(topic, payload, qos, mid, bool(cmd & 0x08), bool(cmd & 0x01))
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _hz_pending(self) -> bool:
        return self._hz_pos < len(self._hz_buf)

    def _hz_reset(self) -> None:
        self._hz_buf, self._hz_pos = b"", 0
