"""One settings model for every hazmon process.

Sources, highest first: ``HAZMON_*`` environment variables (nested with ``__``, e.g.
``HAZMON_KAFKA__BOOTSTRAP``), then the YAML file named by ``HAZMON_CONFIG`` (if any), then
defaults. A bad value stops start-up with one line naming the key (:func:`load_settings`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from hazmon.errors import ConfigError
from hazmon.proxies import validate_networks
from hazmon.settings_budget import SmsBudgetSettings
from hazmon.settings_canary import CanarySettings
from hazmon.settings_lift import LiftSettings
from hazmon.settings_replay import ReplaySettings
from hazmon.settings_watchdog import WatchdogSettings
from hazmon.topics import Topics

__all__ = [
    "MqttSettings", "IngestSettings", "DetectorSettings", "KafkaSettings", "PostgresSettings",
    "AlertingSettings",
    "SmsSettings", "VoiceSettings", "RobotsSettings", "InboundSettings", "ConsoleSettings",
    "Settings", "load_settings", "override", "CLOCK_SKEW_S",
]

_REPO = Path(__file__).resolve().parent.parent
_DEFAULT_DATA = _REPO / "data"

#: a device clock ahead of the bridge's receipt by more than this is not trusted: the bridge
#: flags the reading ``ts_future`` (``mqtt.clock_skew_s``) and the detectors store it without
#: detecting on it; one figure for both stages
CLOCK_SKEW_S = 300.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str = "hazmon-bridge"
    #: topic root of the documented convention ``{root}/{vendor}/{device_id}/{kind}``
    topic_root: str = "hazmon/v1"
    #: MQTT v5 shared-subscription group ($share/<group>/...) for scale-out; "" = plain subscription
    shared_group: str = "hazmon-ingest"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    #: messages in flight between MQTT receive and Kafka ack (backpressure bound)
    max_inflight: int = Field(default=2000, ge=1, le=65535)
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    #: port the embedded broker is started on when host:port above is not reachable
    embedded_port: int = Field(default=18830, ge=1, le=65535)
    #: MQTT v5 session expiry of the bridge's persistent session (messages queue while it is away)
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    #: device clock ahead of received time by more than this → flagged ts_future and clamped
    clock_skew_s: float = Field(default=CLOCK_SKEW_S, ge=0)
    #: device time older than this → flagged ts_past (kept)
    max_age_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    #: bridge-side silence judge: > 0 = offline after presence_k × expected interval, for a
    #: single bridge only; 0 (default) = judged by the detectors (detectors/offline.py), which
    #: see all of a device's traffic (N bridges on a shared subscription each see a part)
    presence_k: float = Field(default=0.0, ge=0)
    #: how often each bridge writes its watermark (IngestBeat) to every status partition;
    #: the detectors judge silence only up to it. 0 = off (detectors then cannot judge silence
    #: unless configured with device.silence_clock: consumed)
    beat_interval_s: float = Field(default=2.0, ge=0)
    #: how often the bridge reloads the device registry from PostgreSQL
    registry_refresh_s: float = Field(default=60.0, gt=0)
    #: extra vendor topic patterns → adapter, e.g. {"pattern": "acme/{device_id}/up", "vendor": "acme",
    #: "adapter": "gasjson", "kind": "telemetry"}
    vendor_topics: list[dict[str, str]] = Field(default_factory=list)


class IngestSettings(_Section):
    """The bridge process (``hazmon bridge``): its limits (docs/ingest.md, *Limits*), and the
    dead-letter store's retention."""

    #: suffix of this bridge's MQTT client id (``mqtt.client_id``-``instance``): distinct per
    #: process when N bridges share the subscription; ``hazmon bridge --instance`` overrides it
    instance: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,40}$")
    #: how often the bridge logs its counters and the latest rejections per vendor
    stats_every_s: float = Field(default=10.0, gt=0)

    #: largest Kafka record the bridge makes (keep it under the broker's max.message.bytes,
    #: Apache Kafka's default 1,048,588): a bigger readings batch is split, anything else is
    #: dead-lettered ``too_large``
    max_record_bytes: int = Field(default=1_000_000, ge=16 * 1024)
    #: a message making more records than this is dead-lettered ``too_large``
    max_records_per_message: int = Field(default=1000, ge=1)
    #: the bridge producer's max_request_size; a record over it is refused by the client
    #: (non-retryable: the message is dead-lettered ``too_large``, never retried)
    producer_max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=16 * 1024)
    #: per-vendor message rate (token bucket) at each bridge; 0 = unlimited. Above it the
    #: vendor's messages are dead-lettered ``rate_limited`` (one record per vendor and burst)
    vendor_rate_per_s: float = Field(default=20_000.0, ge=0)
    #: messages a vendor may send at once above its rate (the bucket's depth)
    vendor_burst: int = Field(default=40_000, ge=1)
    #: messages of one vendor in flight (received, not yet on Kafka) at most, while Kafka is
    #: acknowledging (a slow Kafka): above it the vendor's messages are dead-lettered
    #: ``rate_limited`` so the shared window stays open for the others. Not applied while Kafka
    #: acknowledges nothing (an outage: everything is held and delivered afterwards). 0 = off, the
    #: default: draining a backlog after an outage, the busiest vendor would be shed
    vendor_max_inflight: int = Field(default=0, ge=0)
    #: a vendor's retained telemetry/event publishes are dead-lettered ``retained``
    refuse_retained: bool = True
    #: dead letters older than this are deleted (the detectors' dead-letter store)
    deadletter_retention_days: float = Field(default=30.0, gt=0)
    #: dead letters kept per vendor within the retention; more are only counted
    deadletter_quota_rows: int = Field(default=10_000, ge=0)
    #: raw bytes kept per vendor within the retention; more are stored without their raw bytes
    deadletter_quota_raw_bytes: int = Field(default=64 * 1024 * 1024, ge=0)


class DetectorSettings(_Section):
    """The detector stage (``hazmon detect``, detectors/service.py). The thresholds are data:
    ``detectors_file``."""

    #: Kafka consumer group of every detector instance
    group_id: str = "hazmon-detectors"
    client_id: str = "hazmon-detectors"
    #: records per poll (≈ 20 readings each from gateways)
    max_records: int = Field(default=2000, ge=1)
    poll_timeout_ms: int = Field(default=200, ge=0, le=60_000)
    fetch_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    #: readings window replayed into the state after a restart (rate-of-rise, trapped timers)
    warmup_readings_s: float = Field(default=900.0, ge=0)
    #: device events window replayed after a restart (shields, fault windows)
    warmup_device_events_s: float = Field(default=2 * 86400.0, ge=0)
    #: how often the presence (silence) check runs; None = never (benchmarks)
    presence_check_s: float | None = Field(default=2.0, gt=0)
    #: how often the registry is re-read, so a device registered (or re-configured) while the
    #: detector runs gets its thresholds, labels and expected interval; None = only at start
    registry_refresh_s: float | None = Field(default=60.0, gt=0)
    #: a partition's clock is held back this much (fetch-to-poll race, produce latency)
    presence_margin_s: float = Field(default=5.0, ge=0)
    #: a bridge whose beats stop is left out of the watermark after this long (a restart is shorter)
    bridge_ttl_s: float = Field(default=60.0, gt=0)
    #: a watermark jump larger than this was an ingest blind period: silence counts from its end
    blind_gap_s: float = Field(default=10.0, gt=0)
    #: stop after this long without records (tests, benchmark; ``hazmon detect --idle-exit``);
    #: None = run until signalled
    idle_exit_s: float | None = Field(default=None, gt=0)
    #: stop after this many readings stored (benchmark); None = no limit
    stop_after_readings: int | None = Field(default=None, ge=1)


class KafkaSettings(_Section):
    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(default="hazmon", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    partitions: int = Field(default=4, ge=1, le=1024)
    linger_ms: int = Field(default=5, ge=0, le=10_000)
    max_batch_bytes: int = Field(default=1024 * 1024, ge=1024)
    acks: Literal["all", "1", "0"] = "all"
    #: how long a consumer lets the broker hold a fetch that finds nothing new (aiokafka's
    #: default). Apache Kafka answers a held fetch as soon as data arrives, so on it this adds no
    #: latency. Tansu holds the fetch the whole wait even when data arrives meanwhile, and with
    #: S3 storage it reads partitions until the wait is spent, so a short wait starves the
    #: partitions late in a fetch: the embedded stack sets the value its engine needs
    #: (:func:`hazmon.stack.kafka.tansu_fetch_wait_ms`: memory 25 ms, s3 500 ms)
    fetch_max_wait_ms: int = Field(default=500, ge=0, le=10_000)
    client_id: str = "hazmon"
    embedded_port: int = Field(default=19092, ge=1, le=65535)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


class PostgresSettings(_Section):
    dsn: str = "postgresql://postgres@127.0.0.1:5432/hazmon"
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=8, ge=1)
    #: try to enable TimescaleDB; skipped with a logged reason when the extension is absent
    timescaledb: bool = True
    embedded_port: int = Field(default=15432, ge=1, le=65535)
    #: versioned schema migrations ``NNN_name.sql`` applied by ``hazmon migrate`` (hazmon/db.py)
    migrations_dir: Path = _REPO / "deploy" / "sql"

    @field_validator("dsn")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// or postgres://")
        return value


class AlertingSettings(_Section):
    """The alerting stage (``hazmon alerting``, alerting/service.py); its routes are data:
    ``routes_file``."""

    #: Kafka consumer group of the alerting service
    group_id: str = "hazmon-alerting"
    #: this instance's name where several share one database (its outbox claims): unique per instance
    instance: str = Field(default="", max_length=64)
    #: seconds between timer passes (flush, escalate, send) when nothing wakes them sooner
    tick_s: float = Field(default=1.0, gt=0)
    #: group flushes / escalations run at once, each a transaction on the pool
    concurrency: int = Field(default=4, ge=1, le=64)
    #: how often the registry (责任矩阵) and the key-period calendar are read again
    registry_refresh_s: float = Field(default=60.0, gt=0)
    #: a loop pass taking this long is logged with what it did
    slow_pass_s: float = Field(default=0.5, gt=0)
    #: an alarm reported this long after its device time is late (a gateway's backlog): its
    #: 四单 ladder counts from when hazmon learned of it and its texts say so (alerting/late.py)
    late_after_s: float = Field(default=300.0, gt=0)
    #: a device time older than this (or before the device's installed_on) is a clock fault,
    #: not a date: flagged, and the ladder counts from the report as for a late alarm
    late_max_age_s: float = Field(default=30 * 86400.0, gt=0)


class SmsSettings(_Section):
    provider: Literal["webhook", "aliyun", "tencent"] = "webhook"
    url: str = "http://127.0.0.1:18090/webhook/sms"
    access_key_id: str = "demo-key"
    access_key_secret: SecretStr = SecretStr("demo-secret")
    sign_name: str = "区应急指挥中心"
    app_id: str = ""
    timeout_s: float = Field(default=5.0, gt=0)
    per_phone_per_hour: int = Field(default=20, ge=1)
    budget: SmsBudgetSettings = SmsBudgetSettings()  # providers' 频率限制 (hazmon/settings_budget.py)
    #: the provider's limit on concurrent send requests (the outbox keeps at most this many in flight)
    max_in_flight: int = Field(default=32, ge=1)
    #: base of the short acknowledgement link (链接确认) in every SMS: the console's ``/ack``
    #: (``console.port``; in production the TLS proxy's public address, docs/delivery.md)
    ack_base_url: str = "http://127.0.0.1:8080/ack"
    #: the centre's 24-hour duty room (值班电话), named in every alarm text: fixed text of the
    #: registered templates, so a landline or 400/95 number (阿里云 allows no mobile there)
    duty_phone: str = "0571-88001110"


class VoiceSettings(_Section):
    """The voice channel (语音通知, alerting/notify/voice.py; docs/delivery.md, *Voice*): a TTS
    call with "确认收到请按1", for landline duty rooms and as the escalation of a red alarm
    nobody acknowledged (routes.yaml ``voice_after``)."""

    #: ``aliyun`` (SingleCallByTts: mobiles and landlines) or ``tencent`` (SendTtsVoice: mobiles only)
    provider: Literal["aliyun", "tencent"] = "aliyun"
    #: the provider's endpoint; empty: https://dyvmsapi.aliyuncs.com/ or https://vms.tencentcloudapi.com/,
    #: or — while ``sms.url`` is a gateway that is no cloud (the simulator) — its ``/voice/{provider}``
    url: str = ""
    access_key_id: str = "demo-key"
    access_key_secret: SecretStr = SecretStr("demo-secret")
    #: the caller number shown (阿里云 CalledShowNumber, 专属模式; empty: 公共模式)
    caller_number: str = ""
    #: 腾讯云 VoiceSdkAppid
    app_id: str = ""
    #: times the script is played in one call (both APIs: 1–3)
    play_times: int = Field(default=2, ge=1, le=3)
    timeout_s: float = Field(default=5.0, gt=0)
    max_in_flight: int = Field(default=8, ge=1)
    #: calls of one notification in all (the first and the redials) before it escalates
    max_attempts: int = Field(default=3, ge=1, le=10)
    #: delay before the first redial of an unanswered or busy call (doubled each time); 阿里云
    #: calls one number at most once a minute
    retry_delay_s: float = Field(default=60.0, ge=0)


class RobotsSettings(_Section):
    """The units' group robots (企业微信 群机器人, 钉钉 自定义机器人; alerting/notify/robot.py,
    docs/delivery.md *Group robots*). Each unit's robot key/token and 加签 secret are registry
    data; here only the endpoints they are sent to (the providers', or the simulator's)."""

    #: 企业微信 group robot send endpoint; empty: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send``
    #: or — while ``sms.url`` is a gateway that is no cloud (the simulator) — its ``/robots/wecom/…``
    wecom_url: str = ""
    #: 钉钉 custom robot send endpoint; empty: ``https://oapi.dingtalk.com/robot/send`` or, as
    #: above, the simulator's ``/robots/dingtalk/robot/send``
    dingtalk_url: str = ""
    #: the console's address, for the link to the alert's page in each robot message; empty:
    #: ``sms.ack_base_url`` without its ``/ack`` (the console serves both)
    console_url: str = ""
    timeout_s: float = Field(default=5.0, gt=0)
    #: both providers allow a robot 20 messages a minute; held to it before sending
    per_robot_per_minute: int = Field(default=20, ge=1, le=20)
    #: robot requests under way at once, per provider
    max_in_flight: int = Field(default=8, ge=1)


class InboundSettings(_Section):
    """The alerting process's inbound HTTP (delivery receipts, SMS replies; docs/alerting.md,
    *Inbound*) and the acknowledgement limits, which the console's short link (``/ack``) takes
    too (docs/delivery.md, *Acknowledgement*)."""

    #: interface the inbound server binds; expose it through a reverse proxy, not 0.0.0.0
    host: str = "127.0.0.1"
    #: port of the inbound server (0 = not served: no receipts, no SMS replies)
    port: int = Field(default=18091, ge=0, le=65535)
    #: callback secret: the webhook gateway's HMAC-SHA256 key (``X-Hazmon-Signature`` over the
    #: body) and the key the 阿里云/腾讯云 callback URL tokens are derived from (those providers
    #: sign nothing). Empty: ``sms.access_key_secret``, the secret the gateway already shares
    callback_secret: SecretStr = SecretStr("")
    #: bearer token Prometheus sends to ``POST /api/v2/alerts`` (its alertmanager_config
    #: ``authorization: credentials``); empty: the Alertmanager-compatible endpoint is off (503)
    alertmanager_token: SecretStr = SecretStr("")
    #: largest request body accepted (413 above)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    #: receipts or replies one request may carry (413 above)
    max_items: int = Field(default=100, ge=1, le=10_000)
    #: rate-limit window (fixed windows, counted atomically in PostgreSQL)
    window_s: int = Field(default=15 * 60, ge=10)
    #: refused callbacks / unknown link tokens per client address and window
    per_ip_failures: int = Field(default=30, ge=1)
    #: reply attempts that did not acknowledge, per phone number and window
    per_phone_failures: int = Field(default=5, ge=1)
    #: acknowledgement attempts per alert and window
    per_alert_attempts: int = Field(default=30, ge=1)
    #: receipts waiting for the receipt writer; a full queue answers 503 (the provider retries)
    receipt_queue: int = Field(default=10_000, ge=1)
    #: comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For names the client
    #: (the per-address limit); empty: the peer address is the client
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        return validate_networks(v)


class ConsoleSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    session_ttl_s: int = Field(default=8 * 3600, ge=60)
    secure_cookies: bool = False
    #: live board streams (/api/stream) one user may hold open in one console process
    streams_per_user: int = Field(default=10, ge=1, le=1000)
    #: live board streams of all users in one console process
    streams_max: int = Field(default=1000, ge=1, le=100_000)
    #: argon2 password checks running at once (each takes a core and 64 MiB); the rest queue
    login_concurrency: int = Field(default=2, ge=1, le=64)
    #: how long a request waits for a database connection before answering 503
    db_acquire_timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For names the
    #: client (login throttling is per source address); empty: the peer address is the client
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        return validate_networks(v)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HAZMON_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    mqtt: MqttSettings = MqttSettings()
    ingest: IngestSettings = IngestSettings()
    detectors: DetectorSettings = DetectorSettings()
    kafka: KafkaSettings = KafkaSettings()
    postgres: PostgresSettings = PostgresSettings()
    alerting: AlertingSettings = AlertingSettings()
    sms: SmsSettings = SmsSettings()
    voice: VoiceSettings = VoiceSettings()
    robots: RobotsSettings = RobotsSettings()
    inbound: InboundSettings = InboundSettings()
    console: ConsoleSettings = ConsoleSettings()
    watchdog: WatchdogSettings = WatchdogSettings()
    canary: CanarySettings = CanarySettings()
    lift: LiftSettings = LiftSettings()  # 电梯: 96333, the 维保单位's 到场 limit (hazmon/settings_lift.py)
    replay: ReplaySettings = ReplaySettings()  # what-if 回放: its period and size limits (hazmon/settings_replay.py)
    #: responsibility matrix (责任矩阵), YAML; data, not code
    matrix_file: Path = _DEFAULT_DATA / "matrix.yaml"
    #: alert route tree, YAML
    routes_file: Path = _DEFAULT_DATA / "routes.yaml"
    #: detector thresholds per device model / site class, YAML
    detectors_file: Path = _DEFAULT_DATA / "detectors.yaml"
    #: where embedded services keep data and logs
    run_dir: Path = Path(".run")
    metrics_port: int = Field(default=0, ge=0, le=65535)  # 0 = do not serve
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``hazmon users add``: the new account's password (``HAZMON_NEW_PASSWORD``), for scripts;
    #: else ``--password-stdin`` or a prompt. No service reads it
    new_password: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("HAZMON_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def _env_name(loc: tuple[Any, ...]) -> str:
    return "HAZMON_" + "__".join(str(part).upper() for part in loc)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning any validation problem into one :class:`ConfigError` line
    such as ``HAZMON_KAFKA__PARTITIONS: Input should be greater than or equal to 1 (got 0)``."""
    config_file = os.environ.get("HAZMON_CONFIG")
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"HAZMON_CONFIG: no such file: {config_file}")
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"HAZMON_CONFIG: {config_file}: not valid YAML: {exc}") from None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            got = f" (got {err['input']!r})" if not isinstance(err.get("input"), dict) else ""
            problems.append(f"{_env_name(err['loc'])}: {err['msg']}{got}")
        raise ConfigError("; ".join(problems)) from None


def override(settings: Settings, section: str, values: dict[str, Any]) -> Settings:
    """``settings`` with some keys of one section replaced (a CLI flag for one run), validated
    like the rest: a bad value is one :class:`ConfigError` line naming the key."""
    if not values:
        return settings
    current = getattr(settings, section)
    try:
        updated = type(current).model_validate({**current.model_dump(), **values})
    except ValidationError as exc:
        problems = [f"{section}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err['input']!r})"
                    for err in exc.errors()]
        raise ConfigError("; ".join(problems)) from None
    return settings.model_copy(update={section: updated})
