"""The ``canary`` section of :class:`hazmon.settings.Settings` (``HAZMON_CANARY__*``): the canary
publisher (``hazmon canary``, ingest/canary.py; docs/operations.md *The canary*), in a module of
its own so settings.py stays under the spine's size cap."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CanarySettings"]


class CanarySettings(BaseModel):
    """How the canary devices (``devices.is_canary``) are published through the real MQTT broker.

    Alerting raises 监测链路中断 after three intervals without a canary (alerting/canary.py; it
    reads the interval from the publisher's heartbeat)."""

    model_config = ConfigDict(extra="forbid")

    #: seconds between two canaries of each device
    every_s: float = Field(default=10.0, ge=1, le=300)
    #: the publisher's MQTT account (its ACL must let it write the canary vendors' topics);
    #: empty: ``mqtt.username`` / ``mqtt.password``
    mqtt_username: str = ""
    mqtt_password: str = ""
    #: seconds to wait for the broker's PUBACK before a round counts as not published
    ack_timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: this publisher's name (its ``stage_heartbeats`` row); empty: host:pid
    instance: str = Field(default="", pattern=r"^[A-Za-z0-9._:-]{0,64}$")
    #: seconds between two reads of the registry's canary devices
    registry_refresh_s: float = Field(default=60.0, gt=0)
