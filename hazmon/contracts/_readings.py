"""What ingest publishes about devices: readings (topic ``readings``), status and presence
(``status``, with the bridges' watermarks), and the alarms devices report themselves
(``device-events``)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_serializer

from hazmon.contracts._fields import (
    DeviceId,
    Domain,
    Ident,
    Int64,
    Label,
    UtcDatetime,
    _json_object,
    _label,
    _Record,
)

__all__ = [
    "ReadingFlag", "Sample", "Reading", "ReadingBatch", "PresenceState", "DeviceStatus", "DeviceEvent",
    "INGEST_BEAT_KEY_PREFIX", "IngestBeat",
]

class ReadingFlag(StrEnum):
    """Quality flags set at the edge; a flagged reading is stored, never silently dropped."""

    TS_MISSING = "ts_missing"  # device sent no time: ts = received time
    TS_FUTURE = "ts_future"  # device clock ahead beyond the skew tolerance: ts clamped to received
    TS_PAST = "ts_past"  # older than the far-past bound
    OUT_OF_RANGE = "out_of_range"  # outside the sensor's physical range
    NOT_FINITE = "not_finite"  # NaN or ±inf from the device
    UNIT_CONVERTED = "unit_converted"  # e.g. ppm → %LEL
    UNKNOWN_METRIC = "unknown_metric"


class Sample(BaseModel):
    """One measured value inside a ReadingBatch (the device fields live on the batch)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_label)]
    value: float | None
    unit: Annotated[str, StringConstraints(max_length=16), AfterValidator(_label)] = ""
    ts: UtcDatetime
    seq: Int64 | None = None
    flags: tuple[ReadingFlag, ...] = ()

    @field_serializer("value")
    def _finite_or_null(self, value: float | None) -> float | None:
        # JSON has no NaN; a non-finite value travels as null with the NOT_FINITE flag.
        if value is None or not math.isfinite(value):
            return None
        return value


class Reading(BaseModel):
    """A single reading, flat: the shape storage and the console use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: DeviceId
    site_id: Ident
    domain: Domain
    vendor: Ident
    metric: Label
    value: float | None
    unit: Label = ""
    ts: UtcDatetime
    received_at: UtcDatetime
    seq: Int64 | None = None
    flags: tuple[ReadingFlag, ...] = ()


class ReadingBatch(_Record):
    """Readings of one device from one MQTT message (gateways batch: SenML packs, arrays).

    Topic: ``readings``; key: ``device_id``. ``source`` is the MQTT topic the message came on
    (for diagnostics; not stored). A replay after a bridge crash is recognised downstream by
    the readings' own key — device, metric and ``ts`` (the primary key of ``readings``) — not
    by the batch.
    """

    device_id: DeviceId
    site_id: Ident
    domain: Domain
    vendor: Ident
    model: Annotated[str, StringConstraints(max_length=128), AfterValidator(_label)] = ""
    received_at: UtcDatetime
    source: Annotated[str, StringConstraints(max_length=1000), AfterValidator(_label)] = ""
    samples: tuple[Sample, ...] = Field(min_length=1)
    #: the bridge instance that carried it: set on a canary device's batch only (issue 20; the
    #: canary's arrival records which bridge carried it, alerting/canary.py), '' otherwise
    bridge: Annotated[str, StringConstraints(max_length=64), AfterValidator(_label)] = ""

    def readings(self) -> list[Reading]:
        return [
            Reading(
                device_id=self.device_id,
                site_id=self.site_id,
                domain=self.domain,
                vendor=self.vendor,
                metric=s.metric,
                value=s.value,
                unit=s.unit,
                ts=s.ts,
                received_at=self.received_at,
                seq=s.seq,
                flags=s.flags,
            )
            for s in self.samples
        ]


class PresenceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceStatus(_Record):
    """Device health and online/offline transitions. Topic: ``status``; key: ``device_id``.

    ``reason`` says what produced it: ``lwt`` (MQTT Last Will), ``heartbeat``, ``silence``
    (no data for k × the expected interval), ``reported`` (the device's own status message).
    """

    device_id: DeviceId
    site_id: Ident
    vendor: Ident
    state: PresenceState | None = None
    reason: Literal["lwt", "heartbeat", "silence", "reported", "data"] = "reported"
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    signal_dbm: float | None = Field(default=None, ge=-150, le=0)
    mains_power: bool | None = None
    ts: UtcDatetime
    received_at: UtcDatetime


class DeviceEvent(_Record):
    """A discrete alarm/fault the device itself reports (a panel's fire alarm, an elevator's
    trapped-passenger code, a gas detector's fault). Topic: ``device-events``; key: ``device_id``.

    ``code`` is normalised per domain, e.g. ``fire_alarm``, ``fault``, ``supervisory``,
    ``shielded``, ``trapped``, ``door_lock_fault``, ``gas_high``. ``component`` names the
    part within the device (a detector loop/address on a panel, a sensor channel).
    """

    device_id: DeviceId
    site_id: Ident
    domain: Domain
    vendor: Ident
    code: Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_label)]
    active: bool = True
    component: Annotated[str, StringConstraints(max_length=64), AfterValidator(_label)] = ""
    zone: Annotated[str, StringConstraints(max_length=128), AfterValidator(_label)] = ""
    detail: Annotated[dict[str, Any], AfterValidator(_json_object)] = Field(default_factory=dict)
    ts: UtcDatetime
    received_at: UtcDatetime


#: Kafka key prefix of :class:`IngestBeat` records (device ids cannot start with "_")
INGEST_BEAT_KEY_PREFIX: Final = b"_beat/"


class IngestBeat(_Record):
    """An ingest bridge's watermark, written to *every* partition of the status topic every
    few seconds while its MQTT subscription is up. Key: ``_beat/{bridge}``.

    ``at``: everything this bridge received from MQTT before ``at`` is already on Kafka (it is
    the oldest receive time still in flight, or now). The detectors bound their silence verdicts
    by the smallest live watermark, so devices are not declared offline while their messages are
    stuck upstream (bridges down, broker queueing); see docs/detectors.md ("Presence").
    """

    bridge: Ident
    at: UtcDatetime
    sent_at: UtcDatetime
