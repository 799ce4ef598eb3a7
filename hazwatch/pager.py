"""Paging the duty operator (值班员) directly, over two channels, without alerting's outbox.

A page is an SMS to ``watchdog.duty_sms_phone`` **and** a call to ``watchdog.duty_voice_phone``,
sent through alerting's provider adapters (:mod:`alerting.notify`: the real request shapes and
signing of the webhook gateway, 阿里云, 腾讯云): each channel on its own, so when the SMS
provider is the thing that fails the call still reaches the operator. A send that fails is
tried again (5 s, doubling, at most every 60 s) while its incident is open; a 恢复 goes by SMS
(a call is not placed to say that all is well) and is tried again for up to 6 h. Each message
has a stable id per incident (``wd-…``), which the webhook gateway can use to drop a repeat.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter

from alerting.errors import ProviderError
from alerting.notify.base import Notifier, OutgoingMessage
from alerting.notify.voice import VOICE_TEMPLATES, render_script, tts_params
from hazmon.logs import kv
from hazwatch import texts

__all__ = ["Pager", "Sent", "PAGES"]

log = logging.getLogger(__name__)

PAGES = Counter("hazmon_watchdog_messages_total", "Messages the watchdog sent or tried to send to the "
                "duty operator, by kind (page, recovered), channel and outcome (sent, failed, retrying)",
                ["kind", "channel", "outcome"])

_FIRST_RETRY = timedelta(seconds=5)
_MAX_RETRY = timedelta(seconds=60)
_RECOVERED_FOR = timedelta(hours=6)


@dataclass
class _Pending:
    msg: OutgoingMessage
    kind: str  # page | recovered
    incident: str  # problem|since
    next_at: datetime
    until: datetime | None = None  # give up after (recovered only)
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Sent:
    """A message a provider accepted (for the state row and the tests)."""

    kind: str
    channel: str
    problem: str
    text: str
    at: datetime


def _incident(problem: str, since: datetime) -> str:
    return f"{problem}|{since.isoformat()}"


class Pager:
    def __init__(self, *, instance: str, sms: Notifier | None, voice: Notifier | None, sms_phone: str,
                 voice_phone: str, sms_provider: str) -> None:
        self.instance = instance
        self.sms, self.voice = sms, voice
        self.sms_phone, self.voice_phone = sms_phone, voice_phone
        self.codes = texts.SMS_TEMPLATE_CODES.get(sms_provider, texts.SMS_TEMPLATE_CODES["webhook"])
        self.voice_provider = getattr(getattr(voice, "provider", None), "name", "aliyun")
        self.pending: list[_Pending] = []
        self.sent: list[Sent] = []

    def _id(self, incident: str, kind: str, channel: str) -> str:
        key = f"{self.instance}|{incident}|{kind}|{channel}"
        return "wd-" + hashlib.sha256(key.encode()).hexdigest()[:28]

    def _sms(self, incident: str, kind: str, tpl: texts.SmsText, params: dict[str, str]) -> OutgoingMessage:
        return OutgoingMessage(id=self._id(incident, kind, "sms"), channel="sms", body=texts.render(tpl, params),
                               template=self.codes[tpl.name], params=params, phone=self.sms_phone)

    def page(self, problem: str, since: datetime, now: datetime) -> None:
        """Queue the page of an incident: its SMS and its call, both due now."""
        incident = _incident(problem, since)
        if self.sms is not None and self.sms_phone:
            self.pending.append(_Pending(self._sms(incident, "page", texts.PAGE, texts.page_params(problem, since)),
                                         "page", incident, now))
        if self.voice is not None and self.voice_phone:
            p = texts.PROBLEMS[problem]
            params = {"what": p.what, "impact": p.impact}
            tpl = VOICE_TEMPLATES[texts.VOICE_TEMPLATE]
            script = render_script(tpl, tts_params(tpl, params, self.voice_provider))
            self.pending.append(_Pending(OutgoingMessage(
                id=self._id(incident, "page", "voice"), channel="voice", body=script,
                template=texts.VOICE_TEMPLATE, params=params, phone=self.voice_phone), "page", incident, now))

    def recovered(self, problem: str, since: datetime, until: datetime, now: datetime) -> None:
        """The incident is over: a page not yet through is dropped, the one 恢复 queued."""
        incident = _incident(problem, since)
        dropped = [p for p in self.pending if p.incident == incident and p.kind == "page"]
        for p in dropped:
            log.warning("watchdog page dropped, the incident is over %s",
                        kv(problem=problem, channel=p.msg.channel, attempts=p.attempts))
        self.pending = [p for p in self.pending if p not in dropped]
        if self.sms is not None and self.sms_phone:
            msg = self._sms(incident, "recovered", texts.RECOVERED, texts.recovered_params(problem, since, until))
            self.pending.append(_Pending(msg, "recovered", incident, now, until=now + _RECOVERED_FOR))

    async def flush(self, now: datetime) -> int:
        """Send what is due; returns how many went out."""
        done = 0
        keep: list[_Pending] = []
        for p in self.pending:
            if p.next_at > now:
                keep.append(p)
                continue
            notifier = self.sms if p.msg.channel == "sms" else self.voice
            assert notifier is not None
            p.attempts += 1
            problem = p.incident.split("|", 1)[0]
            try:
                res = await notifier.send(p.msg)
            except ProviderError as exc:
                gave_up = not exc.retryable and p.attempts >= 3 or (p.until is not None and now >= p.until)
                PAGES.labels(p.kind, p.msg.channel, "failed" if gave_up else "retrying").inc()
                log.error("watchdog %s not sent %s", p.kind,
                          kv(channel=p.msg.channel, problem=problem, attempt=p.attempts, error=str(exc)[:200],
                             gave_up=gave_up))
                if not gave_up:
                    p.next_at = now + min(_FIRST_RETRY * 2 ** (p.attempts - 1), _MAX_RETRY)
                    keep.append(p)
                continue
            done += 1
            PAGES.labels(p.kind, p.msg.channel, "sent").inc()
            self.sent.append(Sent(p.kind, p.msg.channel, problem, p.msg.body, now))
            del self.sent[:-50]
            log.warning("watchdog %s sent %s", p.kind, kv(channel=p.msg.channel, problem=problem,
                                                          provider=res.provider, message_id=res.message_id))
        self.pending = keep
        return done
