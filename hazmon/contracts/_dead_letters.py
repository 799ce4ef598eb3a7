"""What could not be used, by any stage, with the raw bytes kept (topic ``deadletter``)."""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_serializer, field_validator

from hazmon.contracts._fields import UtcDatetime, _Record, safe_text

__all__ = ["DeadLetterReason", "DeadLetter"]

class DeadLetterReason(StrEnum):
    MALFORMED = "malformed"  # not parseable in the adapter's format
    SCHEMA = "schema"  # parsed but wrong types / missing fields
    CHECKSUM = "checksum"  # GB/T 26875.3 frame checksum mismatch
    TRUNCATED = "truncated"
    OVERSIZED = "oversized"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_VENDOR = "unknown_vendor"
    FORBIDDEN_TOPIC = "forbidden_topic"  # vendor publishing outside its prefix
    UNKNOWN_METRIC = "unknown_metric"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    UNSUPPORTED_VERSION = "unsupported_version"
    REFUSED = "refused"  # passed the contracts, refused by the database (detail: SQLSTATE and message)
    INTERNAL = "internal"
    TOO_LARGE = "too_large"  # its Kafka records would exceed the record limit (ingest/pipeline.py)
    RETAINED = "retained"  # a vendor's retained telemetry/event publish (replayed stale to every subscriber)
    RATE_LIMITED = "rate_limited"  # over the vendor's message rate at the bridge (flood control)
    #: a GB/T 26875.3 部件地址 (§8.2) not in the device's registered component list; the record
    #: itself is still used (a fire alarm still alarms), this letter only tells the registry is short
    UNREGISTERED_PART = "unregistered_part"


class DeadLetter(_Record):
    """What could not be used, with the raw bytes kept. Topic: ``deadletter``."""

    id: str
    stage: Literal["ingest", "detectors", "alerting"]
    source: str  # MQTT topic or Kafka topic:partition:offset
    vendor: str = ""
    device_id: str = ""
    reason: DeadLetterReason
    detail: str = Field(default="", max_length=2000)
    raw: bytes = b""
    received_at: UtcDatetime

    @field_serializer("raw")
    def _b64(self, raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    @field_validator("source", "vendor", "device_id", "detail", mode="before")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        # the landing place of bad input takes anything: what PostgreSQL cannot store is
        # escaped, an over-long detail cut (the raw bytes keep the original)
        if isinstance(value, str):
            value = safe_text(value)
            if info.field_name == "detail":
                value = value[:2000]
        return value

    @field_validator("raw", mode="before")
    @classmethod
    def _unb64(cls, value: Any) -> Any:
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
        return value
