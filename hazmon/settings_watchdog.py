"""The ``watchdog`` section of :class:`hazmon.settings.Settings` (``HAZMON_WATCHDOG__*``): the
out-of-band watchdog (``hazmon watchdog``, docs/operations.md *The watchdog*), in a module of
its own so settings.py stays under the spine's size cap."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["WatchdogSettings"]

_PHONE = re.compile(r"^\+?\d[\d-]{4,19}$")


class WatchdogSettings(BaseModel):
    """Who the watchdog pages, what it watches and how fast it decides.

    It pages the centre's duty operator (值班员) itself, over SMS and a voice call, through
    ``sms`` and ``voice`` (the providers alerting uses, called directly): when alerting is down
    or cannot send, when the database is unreachable or refuses writes, and when the canary
    loop is broken while alerting has not said so."""

    model_config = ConfigDict(extra="forbid")

    #: this watchdog's name (its ``watchdog_state`` and ``stage_heartbeats`` rows); empty: the host name
    instance: str = Field(default="", pattern=r"^[A-Za-z0-9._:-]{0,64}$")
    #: who is paged (named in the log and the state row)
    duty_name: str = "中心值班员"
    #: the duty operator's mobile for the SMS page and 恢复
    duty_sms_phone: str = ""
    #: the number called with the spoken page (a mobile, or a landline with 阿里云 voice);
    #: empty: ``duty_sms_phone``
    duty_voice_phone: str = ""
    #: the stages' health endpoints, name → URL (each process's ``/metrics`` on its
    #: ``metrics_port``), e.g. ``{"alerting": "http://alerting:9100/metrics"}``; a name starting
    #: with ``alerting`` is an alerting instance (alerting is down when all of them are)
    stages: dict[str, str] = Field(default_factory=dict)
    #: seconds between two rounds of checks
    poll_s: float = Field(default=5.0, gt=0, le=300)
    #: a problem seen this long, uninterrupted, is paged (one failed scrape is not an outage)
    confirm_s: float = Field(default=15.0, ge=0)
    #: a paged problem gone this long, uninterrupted, gets its one 恢复 notice
    clear_s: float = Field(default=10.0, ge=0)
    #: timeout of one check (an endpoint, the database connection, the provider's API)
    timeout_s: float = Field(default=4.0, gt=0, le=60)
    #: a due outbox row not sent for this long: alerting's sending has stalled
    outbox_stuck_s: float = Field(default=120.0, gt=0)
    #: SMS attempts failing in a row (no success after them) within ``sms_window_s``: the
    #: provider is failing
    sms_failures: int = Field(default=3, ge=1)
    sms_window_s: float = Field(default=600.0, gt=0)
    #: a canary family whose last arrival is older than this, with no 监测链路中断 raised by
    #: alerting, is paged (alerting raises it after three missed canaries, 30 s)
    canary_stale_s: float = Field(default=90.0, gt=0)
    #: a stage heartbeat (``stage_heartbeats``) older than this is reported (not paged)
    heartbeat_stale_s: float = Field(default=30.0, gt=0)
    #: alerting raises 看门狗心跳中断 when this watchdog's heartbeat is older than this
    #: (written into the heartbeat's detail, which alerting reads)
    alarm_after_s: float = Field(default=30.0, gt=0)
    #: interface and port of the 心跳 URL (``GET /healthz``) for an external check; 0 = off
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=18095, ge=0, le=65535)

    @field_validator("duty_sms_phone", "duty_voice_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        value = value.strip()
        if value and not _PHONE.match(value):
            raise ValueError("not a phone number (digits, an optional + and dashes)")
        return value

    @property
    def voice_phone(self) -> str:
        return self.duty_voice_phone or self.duty_sms_phone
