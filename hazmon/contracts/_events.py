"""What detectors publish: an anomaly episode (topic ``events``), its four-colour severity
(四色预警) and its evidence."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from hazmon.contracts._fields import DeviceId, Domain, Ident, Label, Text, UtcDatetime, _label, _Record, _text

__all__ = ["Severity", "EventState", "Evidence", "event_id", "Event"]

class Severity(StrEnum):
    """Four-colour alarm level (四色预警): 红 > 橙 > 黄 > 蓝."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    BLUE = "blue"

    @property
    def zh(self) -> str:
        return _SEVERITY_ZH[self]

    @property
    def rank(self) -> int:
        """Higher is more severe: red=4 … blue=1."""
        return _SEVERITY_RANK[self]


_SEVERITY_ZH = {Severity.RED: "红", Severity.ORANGE: "橙", Severity.YELLOW: "黄", Severity.BLUE: "蓝"}
_SEVERITY_RANK = {Severity.RED: 4, Severity.ORANGE: 3, Severity.YELLOW: 2, Severity.BLUE: 1}


class EventState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ts: UtcDatetime
    metric: Label
    value: float | None
    note: Text = ""

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        # evidence is stored as jsonb, which has no NaN
        return value if value is None or math.isfinite(value) else None


def event_id(device_id: str, kind: str, started_at: datetime) -> str:
    """Deterministic event id: the same episode detected twice (replay) gets the same id."""
    key = f"{device_id}|{kind}|{started_at.astimezone(UTC).isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Event(_Record):
    """An anomaly episode found by a detector. Topic: ``events``; key: ``device_id``.

    The same ``id`` is sent when the episode fires and again when it resolves.
    ``starts_at`` is the device's time; ``received_at`` when hazmon heard of it.
    """

    id: Annotated[str, StringConstraints(min_length=8, max_length=64)]
    kind: Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[a-z_]+\.[a-z0-9_.]+$")]
    domain: Domain
    severity: Severity
    state: EventState
    device_id: DeviceId
    site_id: Ident
    component: Annotated[str, StringConstraints(max_length=64), AfterValidator(_label)] = ""
    zone: Annotated[str, StringConstraints(max_length=128), AfterValidator(_label)] = ""
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None = None
    detected_at: UtcDatetime
    #: when hazmon received the record that opened the episode (ingest's clock), so alerting
    #: counts a late alarm's escalation from there, not from the device's ``starts_at``
    #: (issue 18). Optional: records of v1 producers without it still decode (alerting then
    #: takes ``detected_at``).
    received_at: UtcDatetime | None = None
    summary: Annotated[str, StringConstraints(max_length=500), AfterValidator(_text)] = ""
    evidence: tuple[Evidence, ...] = ()
    labels: dict[
        Annotated[str, StringConstraints(max_length=64), AfterValidator(_label)],
        Annotated[str, StringConstraints(max_length=500), AfterValidator(_text)],
    ] = Field(default_factory=dict)
