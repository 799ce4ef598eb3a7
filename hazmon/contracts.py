"""Message contracts shared by every stage (the wire format on Kafka).

Every record is a pydantic v2 model serialised as JSON. Each carries ``v`` (the schema
version) so a consumer can refuse a record from a future producer instead of misreading it.
The Kafka key of every per-device record is the device id, so one device's records stay in
one partition and keep their order.

Stages parse at the edge (ingest adapters) and trust these types inside.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_serializer,
    field_validator,
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

SCHEMA_VERSION: Final = 1

#: The domains shipped today. The set is open: a new domain is configuration plus a detector
#: module (DOMAIN.md: 重大危险源 online monitoring), so contracts accept any well-formed name.
KNOWN_DOMAINS: frozenset[str] = frozenset({"gas", "elevator", "fire"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (UTC expected)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 has no UTC time
        raise ValueError("timestamp out of range once converted to UTC") from None


# --- what PostgreSQL (and every stage after ingest) can take --------------------------------
# The rules bad input broke (issue 17): PostgreSQL refuses U+0000 in text and jsonb, Python
# cannot encode a lone surrogate to UTF-8, ``bigint`` ends at 2⁶³−1, jsonb has no NaN/Infinity,
# and json.dumps refuses integers of more than 4300 digits. Checked here, once, so every
# adapter and every consumer of a contract gets the same answer.

#: PostgreSQL ``bigint`` (readings.seq)
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
#: a name, code or label: no control character at all (C0, DEL, C1), no lone surrogate
_NOT_LABEL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: free text: tab, newline and carriage return allowed
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: a JSON object from a device (DeviceEvent.detail): bounded, so jsonb and every reader take it
JSON_MAX_DEPTH: Final = 8
JSON_MAX_NODES: Final = 2000
JSON_MAX_STRING: Final = 2000


def text_problem(value: str, *, free_text: bool = False) -> str | None:
    """What makes ``value`` unstorable (a control character or a lone surrogate), or None."""
    m = (_NOT_TEXT if free_text else _NOT_LABEL).search(value)
    if m is None:
        return None
    return f"holds control character U+{ord(m.group()):04X} at position {m.start()}"


def json_problem(value: Any, where: str = "detail") -> str | None:
    """What makes a decoded JSON value unstorable as jsonb, or None: text with a control
    character, an integer beyond 64 bits, NaN/±inf, more than ``JSON_MAX_DEPTH`` levels or
    ``JSON_MAX_NODES`` values, a string longer than ``JSON_MAX_STRING``."""
    nodes = 0
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        v, path, depth = stack.pop()
        nodes += 1
        if nodes > JSON_MAX_NODES:
            return f"{where}: more than {JSON_MAX_NODES} values"
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not INT64_MIN <= v <= INT64_MAX:
                return f"{path}: integer out of 64-bit range"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return f"{path}: {v} is not a finite number"
        elif isinstance(v, str):
            if len(v) > JSON_MAX_STRING:
                return f"{path}: string longer than {JSON_MAX_STRING}"
            p = text_problem(v, free_text=True)
            if p:
                return f"{path}: {p}"
        elif isinstance(v, dict | list | tuple):
            if depth >= JSON_MAX_DEPTH:
                return f"{path}: nested deeper than {JSON_MAX_DEPTH} levels"
            if isinstance(v, dict):
                for k, item in v.items():
                    if not isinstance(k, str):
                        return f"{path}: key {k!r} is not a string"
                    p = text_problem(k) if len(k) <= 64 else "key longer than 64"
                    if p:
                        return f"{path}: key {k[:64]!r}: {p}"
                    stack.append((item, f"{path}.{k[:64]}", depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(v))
        else:
            return f"{path}: {type(v).__name__} is not a JSON value"
    return None


def _label(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _text(value: str) -> str:
    problem = text_problem(value, free_text=True)
    if problem:
        raise ValueError(problem)
    return value


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


_ESCAPE = re.compile(r"[\x00\ud800-\udfff]")


def safe_text(value: str) -> str:
    """``value`` with what PostgreSQL or UTF-8 cannot take (U+0000, lone surrogates) written as
    ``\\uXXXX``: for the places that must take anything (dead letters, logs of bad input)."""
    if _ESCAPE.search(value) is None:
        return value
    return _ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


#: a name, code, unit or label (no control characters)
Label = Annotated[str, AfterValidator(_label)]
#: free text (tab and newline allowed, no other control character)
Text = Annotated[str, AfterValidator(_text)]
#: what a PostgreSQL ``bigint`` holds
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]

UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]
DeviceId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
Domain = Annotated[str, StringConstraints(min_length=2, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_label)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = SCHEMA_VERSION


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
    summary: Annotated[str, StringConstraints(max_length=500), AfterValidator(_text)] = ""
    evidence: tuple[Evidence, ...] = ()
    labels: dict[Annotated[str, StringConstraints(max_length=64), AfterValidator(_label)],
                 Annotated[str, StringConstraints(max_length=500), AfterValidator(_text)]] = Field(default_factory=dict)


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


# --- alerting records ---------------------------------------------------------------------


class NoticeLevel(StrEnum):
    """四单工作法: the escalation ladder of formal notices, lowest first."""

    REMINDER = "reminder"  # 工作提醒单
    WARNING = "warning"  # 风险警示单
    SUPERVISION = "supervision"  # 问题督办单 (挂牌督办, with a deadline)
    ACCOUNTABILITY = "accountability"  # 问责建议单

    @property
    def zh(self) -> str:
        return _NOTICE_ZH[self]

    @property
    def step(self) -> int:
        return _NOTICE_STEP[self]


_NOTICE_ZH = {
    NoticeLevel.REMINDER: "工作提醒单",
    NoticeLevel.WARNING: "风险警示单",
    NoticeLevel.SUPERVISION: "问题督办单",
    NoticeLevel.ACCOUNTABILITY: "问责建议单",
}
_NOTICE_STEP = {
    NoticeLevel.REMINDER: 1,
    NoticeLevel.WARNING: 2,
    NoticeLevel.SUPERVISION: 3,
    NoticeLevel.ACCOUNTABILITY: 4,
}


class Verdict(StrEnum):
    """研判 outcome of an alarm."""

    REAL = "real"  # 真实警情
    FALSE = "false"  # 误报
    TEST = "test"  # 测试
    FAULT = "fault"  # 设备故障


class AlertPhase(StrEnum):
    """Closed loop (闭环管理): 报警 → 研判 → 推送 → 处置 → 反馈 → 办结."""

    ALARM = "alarm"  # 报警
    VERIFIED = "verified"  # 研判
    DISPATCHED = "dispatched"  # 推送
    HANDLING = "handling"  # 处置
    FEEDBACK = "feedback"  # 反馈
    CLOSED = "closed"  # 办结


class RecipientRole(StrEnum):
    """Who a recipient is in the responsibility matrix (责任矩阵)."""

    BUSINESS = "business"  # 企业主体责任
    GRID_MEMBER = "grid_member"  # 网格员 (属地)
    TOWNSHIP = "township"  # 镇/街道 值班 (属地)
    DEPARTMENT = "department"  # 行业监管部门 (三管三必须)
    LEADER = "leader"  # 责任领导
    COVERING_LEADER = "covering_leader"  # 包保领导
    DUTY_OPERATOR = "duty_operator"  # 中心值班员: the catch-all, never dropped


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: RecipientRole
    name: str
    unit: str = ""
    phone: str | None = None
    rule: str  # which matrix rule chose this recipient, recorded with every notification


class NotificationRequest(_Record):
    """A message to send, as written to the outbox (one per recipient and alert and step)."""

    id: str  # deterministic: dedup key of (alert, recipient, notice step, template)
    alert_id: str
    channel: Literal["sms", "webhook", "console"]
    recipient: Recipient
    notice_level: NoticeLevel | None = None
    template: str
    body: str
    created_at: UtcDatetime


class NotificationOutcome(_Record):
    id: str
    status: Literal["sent", "delivered", "failed", "retrying", "suppressed"]
    provider_message_id: str = ""
    error: str = ""
    at: UtcDatetime
