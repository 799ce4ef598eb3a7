"""One MQTT message in, the Kafka records out: routing, decoding, registry join, validation.

:meth:`Pipeline.process` is the bridge's per-message work as a pure-ish function (state: the
registry snapshot, presence tracker and rejection counters), so it is unit-tested without any
broker. It never raises: whatever fails becomes a :class:`~hazmon.contracts.DeadLetter` record
with a precise reason, the raw bytes, the source topic and the vendor.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from hazmon.catalog import DEVICE_EVENT_CODES
from hazmon.contracts import DeadLetter, DeadLetterReason, DeviceEvent, DeviceStatus, PresenceState
from hazmon.errors import AdapterError, HazmonError
from hazmon.logs import kv
from hazmon.settings import Settings
from hazmon.topics import Topics
from ingest.adapters import get_adapter
from ingest.adapters.base import Adapter, AlarmReport, MessageContext, Refusal, SampleSet, StatusReport
from ingest.diagnostics import Diagnostics, Rejection
from ingest.directory import DeviceInfo, Directory, unregistered_part
from ingest.presence import PresenceChange, PresenceTracker
from ingest.validation import Limits, iso, validate_samples

__all__ = ["KINDS", "Record", "TopicRoute", "Router", "VendorTopic", "Pipeline", "bridge_pipeline"]

log = logging.getLogger(__name__)

KINDS = ("telemetry", "status", "event")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_RETAINED_DETAIL = ("retained publish refused: a retained telemetry/event message is replayed to every new "
                    "subscriber as if it were new (vendor accounts must publish with retain=0; status may be retained)")
#: a dead letter's fields besides ``raw`` (detail ≤ 2,000 chars of up to 3 UTF-8 bytes, source ≤ 1,000)
_ENVELOPE_BYTES = 12 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record to produce; ``readings`` counts the samples it carries (metrics)."""

    topic: str
    key: bytes
    value: bytes
    readings: int = 0
    partition: int | None = None  # None = by key (the producer's partitioner)


@dataclass(frozen=True, slots=True)
class TopicRoute:
    """Where a topic leads: the vendor, device and message kind it names, and the adapter to parse it."""

    vendor: str
    device_id: str
    kind: str
    adapter: str | None  # None = the vendor's registered adapter


@dataclass(frozen=True, slots=True)
class VendorTopic:
    """A vendor's own topic layout, e.g. ``acme/{device_id}/up`` → vendor ``acme``, adapter
    ``gasjson``. ``{device_id}`` (optional) matches one topic level."""

    pattern: str
    vendor: str
    adapter: str
    kind: str = "telemetry"

    @property
    def subscription(self) -> str:
        return self.pattern.replace("{device_id}", "+")

    def regex(self) -> re.Pattern[str]:
        parts = [re.escape(p) for p in self.pattern.split("{device_id}")]
        return re.compile("^" + "(?P<device_id>[^/]+)".join(parts) + "$")


class Router:
    """Topic → (vendor, device, kind, adapter) for ``{root}/{vendor}/{device_id}/{kind}`` and
    the configured vendor patterns."""

    def __init__(self, topic_root: str = "hazmon/v1", vendor_topics: Sequence[VendorTopic] = ()) -> None:
        self.root = topic_root.strip("/")
        self._root_parts = len(self.root.split("/"))
        self._prefix = self.root + "/"
        self.vendor_topics = tuple(vendor_topics)
        self._patterns = [(vt, vt.regex()) for vt in self.vendor_topics]

    def subscriptions(self) -> list[str]:
        return [f"{self.root}/+/+/+", *(vt.subscription for vt in self.vendor_topics)]

    def route(self, topic: str) -> TopicRoute | None:
        if topic.startswith(self._prefix):
            parts = topic.split("/")
            if len(parts) == self._root_parts + 3:
                vendor, device, kind = parts[-3:]
                if kind in KINDS and vendor and device:
                    return TopicRoute(vendor, device, kind, None)
        for vt, rx in self._patterns:
            m = rx.match(topic)
            if m:
                return TopicRoute(vt.vendor, m.groupdict().get("device_id") or "", vt.kind, vt.adapter)
        return None

    def vendor_hint(self, topic: str) -> str:
        """Best-effort vendor of a topic that could not be routed (for counting)."""
        if topic.startswith(self._prefix):
            parts = topic.split("/")
            if len(parts) > self._root_parts:
                return parts[self._root_parts][:64]
        return ""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Pipeline:
    def __init__(
        self,
        directory: Directory,
        topics: Topics,
        *,
        router: Router | None = None,
        limits: Limits | None = None,
        max_payload_bytes: int = 256 * 1024,
        diagnostics: Diagnostics | None = None,
        presence: PresenceTracker | None = None,
        max_record_bytes: int = 1_000_000,
        max_records_per_message: int = 1000,
        instance: str = "",
    ) -> None:
        self.topics = topics
        self.router = router or Router()
        self.limits = limits or Limits()
        self.max_payload_bytes = max_payload_bytes
        self.max_records_per_message = max_records_per_message
        self.set_record_limit(max_record_bytes)
        self.diagnostics = diagnostics or Diagnostics()
        self.presence = presence
        self._adapters: dict[str, Adapter] = {}
        self._intervals: dict[str, float] = {}
        self.directory = directory
        #: this bridge's name, stamped on canary batches (issue 20)
        self.instance = instance or "bridge"

    @property
    def directory(self) -> Directory:
        return self._directory

    @directory.setter
    def directory(self, directory: Directory) -> None:
        """Swap the registry snapshot (periodic reload)."""
        self._directory = directory
        self._intervals = {d.id: d.expected_interval_s for d in directory.devices.values()}

    # --- the hot path ---------------------------------------------------------------------

    def process(self, topic: str, payload: bytes, received: float) -> list[Record]:
        try:
            out = self._process(topic, payload, received)
            if len(out) > 1 or (out and len(out[0].value) > self.max_record_bytes):
                out = self._fit(topic, payload, received, out)
            return out
        except Exception as exc:  # a bug, not bad input: still a dead letter, never a dead loop
            log.exception("pipeline failure %s", kv(topic=topic, error=type(exc).__name__))
            return [self._dead(topic, self.router.vendor_hint(topic), "", DeadLetterReason.INTERNAL,
                               f"{type(exc).__name__}: {exc}", payload, received)]

    def _process(self, topic: str, payload: bytes, received: float) -> list[Record]:
        route = self.router.route(topic)
        if len(payload) > self.max_payload_bytes:
            vendor = route.vendor if route else self.router.vendor_hint(topic)
            detail = f"payload of {len(payload)} bytes exceeds the {self.max_payload_bytes}-byte cap (raw kept truncated)"
            return [self._dead(topic, vendor, route.device_id if route else "", DeadLetterReason.OVERSIZED, detail,
                               payload[: self.max_payload_bytes], received)]
        if route is None:
            detail = f"topic is not {self.router.root}/{{vendor}}/{{device_id}}/{{telemetry|status|event}} nor a configured vendor pattern"
            return [self._dead(topic, self.router.vendor_hint(topic), "", DeadLetterReason.FORBIDDEN_TOPIC, detail, payload, received)]
        directory = self._directory
        vendor_info = directory.vendors.get(route.vendor)
        if vendor_info is None:
            return [self._dead(topic, route.vendor, route.device_id, DeadLetterReason.UNKNOWN_VENDOR,
                               f"vendor {route.vendor!r} is not registered", payload, received)]
        adapter_name = route.adapter or vendor_info.adapter
        adapter = self._adapters.get(adapter_name)
        if adapter is None:
            try:
                adapter = self._adapters[adapter_name] = get_adapter(adapter_name)
            except HazmonError as exc:
                return [self._dead(topic, route.vendor, route.device_id, DeadLetterReason.INTERNAL, str(exc), payload, received)]
        ctx = MessageContext(topic, route.vendor, route.device_id, route.kind, received)
        try:
            items = adapter.decode(payload, ctx)
        except AdapterError as exc:
            return [self._dead(topic, route.vendor, route.device_id, DeadLetterReason(exc.reason), exc.detail, payload, received)]
        out: list[Record] = []
        problems: dict[DeadLetterReason, list[str]] = {}
        devices = directory.devices
        for item in items:
            if isinstance(item, Refusal):  # part of the message the adapter could not use
                problems.setdefault(item.reason, []).append(item.detail)
                continue
            dev = devices.get(item.device_id)
            if dev is None:
                problems.setdefault(DeadLetterReason.UNKNOWN_DEVICE, []).append(f"device {item.device_id!r} is not registered")
                continue
            if dev.vendor != route.vendor:
                problems.setdefault(DeadLetterReason.FORBIDDEN_TOPIC, []).append(
                    f"device {dev.id!r} belongs to vendor {dev.vendor!r}, not {route.vendor!r}"
                )
                continue
            if isinstance(item, SampleSet):
                self._readings(item, dev, topic, received, out, problems)
            elif dev.is_canary:  # a canary is its readings only: no status, alarm or presence (issue 20)
                continue
            elif isinstance(item, StatusReport):
                self._status(item, dev, received, out)
            elif isinstance(item, AlarmReport):
                self._event(item, dev, received, out, problems)
        for reason, details in problems.items():
            first = details[0]
            more = f" (+{len(details) - 1} more)" if len(details) > 1 else ""
            dev_id = route.device_id
            out.append(self._dead(topic, route.vendor, dev_id, reason,
                                  "; ".join(details[:5]) + more if len(details) > 1 else first, payload, received))
        return out

    def _readings(self, item: SampleSet, dev: DeviceInfo, topic: str, received: float, out: list[Record],
                  problems: dict[DeadLetterReason, list[str]]) -> None:
        samples, rejected = validate_samples(item.samples, received, self.limits)
        if rejected:
            problems.setdefault(DeadLetterReason.SCHEMA, []).extend(rejected)
        if samples:
            batch = {
                "v": 1,
                "device_id": dev.id,
                "site_id": dev.site_id,
                "domain": dev.domain,
                "vendor": dev.vendor,
                "model": dev.model,
                "received_at": iso(received),
                "source": topic,
                "samples": samples,
            }
            if dev.is_canary:  # the canary's bridge stamp (received_at is its bridged_at)
                batch["bridge"] = self.instance
            key = dev.id.encode()
            out.append(Record(self.topics.readings, key, _encode(batch), len(samples)))
        if self.presence is not None and not dev.is_canary:
            t = self.presence.seen(dev.id, received, "data")
            if t is not None:
                out.append(self._transition(t, dev, received))

    def _status(self, item: StatusReport, dev: DeviceInfo, received: float, out: list[Record]) -> None:
        """Every status message is forwarded as it came — Last Will, explicit report, and every
        heartbeat (rare: ≤ one per device interval) — because presence is judged downstream by
        the detector that sees all of a device's traffic; with N bridges a heartbeat dropped
        here as "no change" would make a heartbeat-only device look silent there."""
        ts = received if item.ts is None or item.ts > received + self.limits.skew_s else item.ts
        if self.presence is not None and item.state is not None:
            self.presence.reported(dev.id, item.state, received, item.reason)
        status = DeviceStatus(
            device_id=dev.id,
            site_id=dev.site_id,
            vendor=dev.vendor,
            state=PresenceState(item.state) if item.state else None,
            reason=item.reason,  # type: ignore[arg-type]
            battery_pct=item.battery_pct,
            signal_dbm=item.signal_dbm,
            mains_power=item.mains_power,
            ts=_dt(ts),
            received_at=_dt(received),
        )
        out.append(Record(self.topics.status, dev.id.encode(), status.model_dump_json().encode()))

    def _event(self, item: AlarmReport, dev: DeviceInfo, received: float, out: list[Record],
               problems: dict[DeadLetterReason, list[str]]) -> None:
        codes = DEVICE_EVENT_CODES.get(dev.domain)
        if codes is not None and item.code not in codes:
            problems.setdefault(DeadLetterReason.SCHEMA, []).append(
                f"event code {item.code[:64]!r} is not a {dev.domain} code ({', '.join(sorted(codes))})")
            return
        ts = received if item.ts is None or item.ts > received + self.limits.skew_s else item.ts
        event = DeviceEvent(
            device_id=dev.id,
            site_id=dev.site_id,
            domain=dev.domain,
            vendor=dev.vendor,
            code=item.code,
            active=item.active,
            component=item.component,
            zone=item.zone,
            detail=item.detail,
            ts=_dt(ts),
            received_at=_dt(received),
        )
        out.append(Record(self.topics.device_events, dev.id.encode(), event.model_dump_json().encode()))
        why = unregistered_part(dev, item.component, item.code, item.active, item.zone, item.detail)
        if why is not None:  # beside the event, never instead of it: a fire alarm still alarms
            seen = problems.setdefault(DeadLetterReason.UNREGISTERED_PART, [])
            seen.extend([] if any(why.split("（", 1)[0] == s.split("（", 1)[0] for s in seen) else [why])
        if self.presence is not None:
            t = self.presence.seen(dev.id, received, "data")
            if t is not None:
                out.append(self._transition(t, dev, received))

    # --- sizing ---------------------------------------------------------------------------

    def set_record_limit(self, max_record_bytes: int) -> None:
        """Records are kept under ``max_record_bytes``; a dead letter keeps the raw bytes that fit
        one record (base64 is 4/3, plus the envelope)."""
        self.max_record_bytes = max_record_bytes
        self.max_raw_bytes = max(1024, min(self.max_payload_bytes, (max_record_bytes - _ENVELOPE_BYTES) * 3 // 4))

    def _fit(self, topic: str, payload: bytes, received: float, out: list[Record]) -> list[Record]:
        """Keep every record under ``max_record_bytes`` (the broker refuses bigger ones, and a
        refused record would hold its message unacknowledged): a readings batch is split into
        batches of fewer samples; a message whose records still do not fit, or that makes more
        than ``max_records_per_message`` records, becomes one ``too_large`` dead letter."""
        limit = self.max_record_bytes
        fitted: list[Record] = []
        for rec in out:
            if len(rec.value) <= limit:
                fitted.append(rec)
            elif rec.readings > 1:
                fitted.extend(self._split(rec))
            else:
                return [self.too_large(topic, payload, received,
                                       f"a {rec.topic} record of {len(rec.value)} bytes exceeds the {limit}-byte record limit")]
        if len(fitted) > self.max_records_per_message:
            return [self.too_large(topic, payload, received, f"message makes {len(fitted)} records, "
                                   f"more than the limit of {self.max_records_per_message} per message")]
        if any(len(r.value) > limit for r in fitted):
            return [self.too_large(topic, payload, received, f"a readings batch does not fit the {limit}-byte record limit even split")]
        return fitted

    def _split(self, rec: Record) -> list[Record]:
        batch = _decode(rec.value)
        samples = batch["samples"]
        parts = -(-len(rec.value) * 11 // 10 // self.max_record_bytes) + 1  # ceil, with 10 % headroom
        size = -(-len(samples) // parts)
        out = []
        for i in range(0, len(samples), size):
            chunk = samples[i : i + size]
            out.append(Record(rec.topic, rec.key, _encode({**batch, "samples": chunk}), len(chunk), rec.partition))
        return out

    def too_large(self, topic: str, payload: bytes, received: float, detail: str) -> Record:
        """The ``too_large`` dead letter of a whole message (also for a record the producer refused)."""
        route = self.router.route(topic)
        vendor = route.vendor if route else self.router.vendor_hint(topic)
        return self._dead(topic, vendor, route.device_id if route else "", DeadLetterReason.TOO_LARGE, detail, payload, received)

    # --- presence -------------------------------------------------------------------------

    def _transition(self, t: PresenceChange, dev: DeviceInfo, received: float) -> Record:
        status = DeviceStatus(
            device_id=dev.id, site_id=dev.site_id, vendor=dev.vendor, state=t.state, reason=t.reason,  # type: ignore[arg-type]
            ts=_dt(t.at), received_at=_dt(received),
        )
        return Record(self.topics.status, dev.id.encode(), status.model_dump_json().encode())

    def sweep(self, now: float) -> list[Record]:
        """Offline-by-silence transitions as status records (the bridge's timer calls this);
        only with ``mqtt.presence_k`` > 0 — a single-bridge deployment whose detectors run
        with ``device.offline_source: ingest``. By default silence is judged by the detector."""
        if self.presence is None:
            return []
        out = []
        devices = self._directory.devices
        for t in self.presence.sweep(now, self._intervals):
            dev = devices.get(t.device_id)
            if dev is not None:
                out.append(self._transition(t, dev, now))
        return out

    # --- dead letters ---------------------------------------------------------------------

    def retained(self, topic: str, vendor: str, device_id: str, raw: bytes, received: float) -> Record:
        """The dead letter of a vendor's retained telemetry/event publish (``ingest.refuse_retained``)."""
        return self.dead_letter(topic, vendor, device_id, DeadLetterReason.RETAINED, _RETAINED_DETAIL, raw, received)

    def dead_letter(self, topic: str, vendor: str, device_id: str, reason: DeadLetterReason, detail: str, raw: bytes, received: float,
                    *, salt: bytes = b"") -> Record:
        """A dead letter made by the bridge itself (``retained``, ``rate_limited``, a refused
        record); ``salt`` makes its id distinct from another one of the same raw bytes."""
        return self._dead(topic, vendor, device_id, reason, detail, raw, received, salt)

    def _dead(self, topic: str, vendor: str, device_id: str, reason: DeadLetterReason, detail: str, raw: bytes, received: float,
              salt: bytes = b"") -> Record:
        digest = hashlib.sha256(b"%s|%s|" % (topic.encode(), reason.value.encode()) + salt + raw).hexdigest()[:32]
        if len(raw) > self.max_raw_bytes:  # the dead letter itself must fit one record
            detail = f"{detail} (raw truncated to {self.max_raw_bytes} of {len(raw)} bytes)"
            raw = raw[: self.max_raw_bytes]
        dl = DeadLetter(
            id=digest,
            stage="ingest",
            source=topic[:1000],
            vendor=vendor[:64],
            device_id=device_id[:64],
            reason=reason,
            detail=detail[:2000],
            raw=raw,
            received_at=_dt(received),
        )
        self.diagnostics.reject(vendor, Rejection(received, reason.value, detail[:300], topic[:200], device_id[:64]))
        key = (device_id or vendor or "-").encode()
        return Record(self.topics.deadletter, key, dl.model_dump_json().encode())


def vendor_topics_from_settings(entries: Iterable[Mapping[str, str]]) -> list[VendorTopic]:
    out = []
    for i, e in enumerate(entries):
        try:
            out.append(VendorTopic(e["pattern"], e["vendor"], e["adapter"], e.get("kind", "telemetry")))
        except KeyError as exc:
            raise HazmonError(f"HAZMON_MQTT__VENDOR_TOPICS[{i}]: missing {exc.args[0]!r}") from None
    return out


__all__ += ["vendor_topics_from_settings"]


def bridge_pipeline(settings: Settings, directory: Directory, router: Router, diagnostics: Diagnostics) -> Pipeline:
    """The bridge's pipeline, its limits from the ``mqtt`` and ``ingest`` settings."""
    m, g = settings.mqtt, settings.ingest
    return Pipeline(
        directory,
        settings.kafka.topics,
        router=router,
        limits=Limits(m.clock_skew_s, m.max_age_s),
        max_payload_bytes=m.max_payload_bytes,
        max_record_bytes=min(g.max_record_bytes, g.producer_max_request_bytes - 1024),
        max_records_per_message=g.max_records_per_message,
        diagnostics=diagnostics,
        presence=PresenceTracker(m.presence_k, time.time()) if m.presence_k > 0 else None,
        instance=g.instance or socket.gethostname(),
    )
