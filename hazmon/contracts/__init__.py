"""Message contracts shared by every stage (the wire format on Kafka).

Every record is a pydantic v2 model serialised as JSON. Each carries ``v`` (the schema
version) so a consumer can refuse a record from a future producer instead of misreading it.
The Kafka key of every per-device record is the device id, so one device's records stay in
one partition and keep their order.

Stages parse at the edge (ingest adapters) and trust these types inside. Import every name
from ``hazmon.contracts``; the private modules hold them by what produces them:

================== =========================================================================
``_fields``        the schema version, field types, what PostgreSQL can store (text, jsonb,
                   ``bigint``)
``_readings``      ingest's records: readings, device status, device events, bridge beats
``_events``        the detectors' anomaly episodes and their severity (四色预警)
``_dead_letters``  what any stage could not use, with the raw bytes
``_alerting``      alerting's records: 四单 levels, verdicts, phases, recipients, the outbox
================== =========================================================================
"""

from __future__ import annotations

from hazmon.contracts._alerting import (
    AlertPhase,
    ContactChannel,
    ContactChannelName,
    NoticeLevel,
    NotificationOutcome,
    NotificationRequest,
    Recipient,
    RecipientRole,
    Verdict,
)
from hazmon.contracts._dead_letters import DeadLetter, DeadLetterReason
from hazmon.contracts._events import Event, EventState, Evidence, Severity, event_id
from hazmon.contracts._fields import (
    INT64_MAX,
    INT64_MIN,
    KNOWN_DOMAINS,
    SCHEMA_VERSION,
    DeviceId,
    Domain,
    Int64,
    Label,
    Text,
    json_problem,
    safe_text,
    text_problem,
    utcnow,
)
from hazmon.contracts._readings import (
    INGEST_BEAT_KEY_PREFIX,
    DeviceEvent,
    DeviceStatus,
    IngestBeat,
    PresenceState,
    Reading,
    ReadingBatch,
    ReadingFlag,
    Sample,
)

__all__ = [
    "SCHEMA_VERSION",
    "KNOWN_DOMAINS",
    "DeviceId",
    "Domain",
    "Severity",
    "EventState",
    "PresenceState",
    "ReadingFlag",
    "Sample",
    "Reading",
    "ReadingBatch",
    "DeviceStatus",
    "DeviceEvent",
    "IngestBeat",
    "INGEST_BEAT_KEY_PREFIX",
    "Evidence",
    "Event",
    "DeadLetter",
    "DeadLetterReason",
    "NoticeLevel",
    "Verdict",
    "AlertPhase",
    "RecipientRole",
    "Recipient",
    "ContactChannel",
    "ContactChannelName",
    "NotificationRequest",
    "NotificationOutcome",
    "event_id",
    "utcnow",
    "INT64_MIN",
    "INT64_MAX",
    "Int64",
    "Label",
    "Text",
    "text_problem",
    "json_problem",
    "safe_text",
]
