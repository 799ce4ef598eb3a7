"""The detection engine: validated records in, rows to store and events out. No I/O.

:meth:`Engine.process` takes one consumed micro-batch (raw Kafka values of the readings,
status and device-events topics) and returns a :class:`BatchOutput`: the rows for the
storage writer, the events to produce, and the dead letters. It never raises on bad input.

Bad input (DOMAIN: vendors send anything):

* not JSON / wrong shape / future schema version → dead letter (malformed/schema/unsupported_version);
* unknown metric (not in :mod:`hazmon.catalog` for the device's domain) → dead letter
  ``unknown_metric`` naming the metrics; the message's other samples are still used;
* NaN/±inf/null → stored with ``not_finite``; outside the sensor's physical range → stored
  with ``out_of_range``; timestamp ahead of its receipt by more than the skew tolerance →
  stored with ``ts_future``. None of these reach a detector;
* not newer than the last reading applied for that device and metric (duplicate, replay,
  out of order by hours) → stored (the primary key drops an exact duplicate), not detected:
  a late reading never moves a state machine backwards. This is also what makes a replay
  after a restart announce nothing twice.

Time: detectors run on event time (reading timestamps). Rules that need time to pass
without input (a shield held too long, a fault window sliding) run in :meth:`tick` with the
stream clock = the newest ``received_at`` seen, so a replay makes the same decisions.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from pydantic import ValidationError

from hazmon.catalog import DEVICE_EVENT_CODES, METRICS
from hazmon.contracts import DeadLetterReason, DeviceEvent, DeviceStatus, Event, ReadingFlag
from hazmon.logs import kv
from hazmon.settings import CLOCK_SKEW_S

from .base import DomainDetector, Sample, evidence
from .batch import BatchOutput, Message, dead_letter, validation_detail, validation_reason
from .canary import canary_event
from .config import DetectorConfig
from .decode import DecodeError, WireBatch, decode_batch
from .elevator import ElevatorDetector
from .fire import FireDetector
from .gas import GasDetector
from .offline import Clock, OfflineDetector, Presence, PresenceRow
from .state import DeviceCtx, DeviceMeta, DeviceTable, EpisodeBook

__all__ = ["Engine", "BatchOutput", "Message", "DETECTORS"]

log = logging.getLogger(__name__)

#: domain → detector class; a new domain registers here (one module + configuration)
DETECTORS: dict[str, type[DomainDetector]] = {
    "gas": GasDetector,
    "elevator": ElevatorDetector,
    "fire": FireDetector,
}

_METRIC_CODE = {name: i for i, name in enumerate(METRICS)}
_NO_DETECT = frozenset(
    {ReadingFlag.NOT_FINITE.value, ReadingFlag.OUT_OF_RANGE.value, ReadingFlag.TS_FUTURE.value,
     ReadingFlag.TS_PAST.value, ReadingFlag.UNKNOWN_METRIC.value}
)
_FLAG_VALUES = frozenset(f.value for f in ReadingFlag)
#: domain → {metric: (low, high)} of the metrics a device of that domain may send
_SPECS_BY_DOMAIN: dict[str, dict[str, tuple[float, float]]] = {}


def _specs_for(domain: str) -> dict[str, tuple[float, float]]:
    specs = {m.name: (m.low, m.high) for m in METRICS.values() if m.domain in ("*", domain)}
    _SPECS_BY_DOMAIN[domain] = specs
    return specs


class Engine:
    """Holds all per-device state; feed it micro-batches in consumption order."""

    def __init__(
        self,
        config: DetectorConfig | None = None,
        meta: Callable[[str], DeviceMeta | None] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        max_skew_s: float = CLOCK_SKEW_S,
    ) -> None:
        """``max_skew_s``: a device clock this far ahead of the bridge's receipt is not trusted
        for detection (the bridge flags it ``ts_future`` by the same setting, ``mqtt.clock_skew_s``)."""
        self.max_skew_s = max_skew_s
        self.config = config or DetectorConfig()
        self.devices = DeviceTable(self.config, meta or (lambda _d: None))
        self.book = EpisodeBook(self.config)
        if clock is not None:
            self.book.now = clock
        self.book.received = lambda: self.stream_time
        self.detectors: dict[str, DomainDetector] = {
            name: cls(self.devices, self.book) for name, cls in DETECTORS.items()
        }
        self.presence = Presence(self.devices, self.book)
        self.offline = OfflineDetector(self.presence)
        #: per device row: the newest reading time applied per metric (index _METRIC_CODE)
        self._last_ts: list[list[float]] = []
        self._dev_event_last: dict[tuple[str, str, str], float] = {}
        self.stream_time: datetime | None = None

    # ---------------------------------------------------------------------------------- input
    def process(
        self,
        readings: Sequence[Message] = (),
        statuses: Sequence[Message] = (),
        device_events: Sequence[Message] = (),
        *,
        presence_clock: Callable[[str], Clock | None] | None = None,
        presence_upper: float = math.inf,
    ) -> BatchOutput:
        """``presence_clock`` (device → (the time its traffic is consumed up to, the end of the
        last ingest blind period), or None when not judged here) runs the silence check after
        the batch is applied; the service passes it on its presence timer, also with an empty
        batch when idle."""
        out = BatchOutput()
        # decode everything, then apply in arrival order across the three topics, so a
        # device's own alarm code and our reading rule meet in the order they happened
        work: list[tuple[datetime, int, int, object, Message]] = []
        n = 0
        for msg in readings:
            try:
                batch = decode_batch(msg.value)
            except DecodeError as exc:
                self._dead(out, msg, exc.reason, exc.detail)
                continue
            work.append((batch.received_at, n, 0, batch, msg))
            n += 1
        for msg in device_events:
            try:
                ev = DeviceEvent.model_validate_json(msg.value)
            except ValidationError as exc:
                self._dead(out, msg, validation_reason(exc), validation_detail(exc))
                continue
            except (ValueError, OverflowError, RecursionError) as exc:  # a validator's own error
                self._dead(out, msg, DeadLetterReason.SCHEMA, f"{type(exc).__name__}: {exc}")
                continue
            work.append((ev.received_at, n, 1, ev, msg))
            n += 1
        for msg in statuses:
            try:
                st = DeviceStatus.model_validate_json(msg.value)
            except ValidationError as exc:
                self._dead(out, msg, validation_reason(exc), validation_detail(exc))
                continue
            except (ValueError, OverflowError, RecursionError) as exc:
                self._dead(out, msg, DeadLetterReason.SCHEMA, f"{type(exc).__name__}: {exc}")
                continue
            work.append((st.received_at, n, 2, st, msg))
            n += 1
        if len(work) > 1:
            work.sort(key=_arrival)
        marks = out.marks
        for at, _n, what, obj, msg in work:
            if self.stream_time is None or at > self.stream_time:
                self.stream_time = at
            self.tick(self.stream_time)  # due deadlines first (a heap peek when none is due)
            try:
                if what == 0:
                    self._readings(obj, msg, out)  # type: ignore[arg-type]
                elif what == 1:
                    self._device_event(obj, msg, out)  # type: ignore[arg-type]
                else:
                    self._status(obj, msg, out)  # type: ignore[arg-type]
            except Exception as exc:  # a bug must not stop the stage: log, dead-letter, go on
                device_id = obj.device_id  # type: ignore[attr-defined]
                log.exception("record failed %s", kv(source=msg.source, device=device_id))
                self._dead(out, msg, DeadLetterReason.INTERNAL, f"{type(exc).__name__}: {exc}", device_id)
            # where this message's rows end: the storage writer isolates a row the database
            # refuses by its message (detectors/storage.py)
            marks.append((msg, len(out.readings), len(out.flagged_readings), len(out.device_events),
                          len(out.statuses)))
        if presence_clock is not None:
            try:
                self.presence.check(presence_clock, presence_upper)
            except Exception:  # a bug in the check must not stop the stage
                log.exception("presence check failed")
        out.presence.update(self.presence.take_changes())
        out.events = self.book.drain()
        return out

    def tick(self, now: datetime) -> None:
        for det in self.detectors.values():
            try:
                det.tick(now)
            except Exception:  # a bug in one rule must not stop the stage
                log.exception("tick failed %s", kv(detector=det.domain))

    def _advance(self, received_at: datetime) -> None:
        if self.stream_time is None or received_at > self.stream_time:
            self.stream_time = received_at

    def _dead(self, out: BatchOutput, msg: Message, reason: DeadLetterReason, detail: str, device_id: str = "",
              vendor: str = "") -> None:
        out.deadletters.append(dead_letter(msg, reason, detail, self.stream_time, device_id, vendor))

    def _last_row(self, idx: int) -> list[float]:
        rows = self._last_ts
        while len(rows) <= idx:
            rows.append([-math.inf] * len(_METRIC_CODE))
        return rows[idx]

    def _readings(self, batch: WireBatch, msg: Message, out: BatchOutput) -> None:
        received = batch.received_at
        device_id = batch.device_id
        if self.devices.is_canary(device_id):  # 监测链路探针: announced, not business data
            out.canaries.append(canary_event(batch))
            return
        ctx = self.devices.ctx(device_id, batch.site_id, batch.domain, batch.model)
        domain = ctx.domain or batch.domain
        specs = _SPECS_BY_DOMAIN.get(domain) or _specs_for(domain)
        horizon = received.timestamp() + self.max_skew_s
        rows = out.readings
        flagged_rows = out.flagged_readings
        feed: list[Sample] = []
        unknown: list[str] = []
        last_of: dict[str, tuple] = {}
        for s in batch.samples:
            metric = s.metric
            spec = specs.get(metric)
            if spec is None:
                unknown.append(metric)
                continue
            value = s.value
            ts = s.ts
            t = ts.timestamp()
            flags = s.flags
            if flags or value is None or not (spec[0] <= value <= spec[1]) or t > horizon:
                ok = True
                if flags:
                    flags = [f for f in flags if f in _FLAG_VALUES]
                    if _NO_DETECT.intersection(flags):
                        ok = False
                if value is None or not math.isfinite(value):
                    value = None
                    ok = False
                    if ReadingFlag.NOT_FINITE.value not in flags:
                        flags = [*flags, ReadingFlag.NOT_FINITE.value]
                elif not (spec[0] <= value <= spec[1]):
                    ok = False
                    if ReadingFlag.OUT_OF_RANGE.value not in flags:
                        flags = [*flags, ReadingFlag.OUT_OF_RANGE.value]
                future = t > horizon
                if future and ReadingFlag.TS_FUTURE.value not in flags:
                    flags = [*flags, ReadingFlag.TS_FUTURE.value]
                row: tuple = (device_id, metric, ts, value, s.unit, s.seq, flags, received)
                if flags:
                    out.flagged += 1
                    flagged_rows.append(row)
                else:
                    row = (device_id, metric, ts, value, s.unit, s.seq, received)
                    rows.append(row)
                if future:
                    continue  # a clock far ahead: stored, not latest, not detected
                if ok:
                    feed.append((metric, value, t, ts))  # type: ignore[arg-type]  # ok ⇒ value is a float
            else:
                row = (device_id, metric, ts, value, s.unit, s.seq, received)
                rows.append(row)
                feed.append((metric, value, t, ts))
            cur = last_of.get(metric)
            if cur is None or cur[2] < ts:
                last_of[metric] = row
        if unknown:
            self._dead(out, msg, DeadLetterReason.UNKNOWN_METRIC,
                       f"unknown metric(s) for domain {domain}: {', '.join(sorted(set(unknown)))}",
                       device_id, batch.vendor)
        if last_of:
            latest = out.latest
            for metric, row in last_of.items():
                key = (device_id, metric)
                prev = latest.get(key)
                if prev is None or prev[2] < row[2]:
                    latest[key] = (device_id, metric, row[2], row[3], row[4], row[6] if len(row) == 8 else [])
        self._heard(ctx, received, "data", out)
        if not feed:
            return
        feed.sort(key=_by_ts)
        last = self._last_row(ctx.idx)
        applied: list[Sample] = []
        for smp in feed:
            code = _METRIC_CODE[smp[0]]
            if smp[2] <= last[code]:
                out.late += 1
                continue
            last[code] = smp[2]
            applied.append(smp)
        if not applied:
            return
        if "mains_power" in last_of:
            self._power(ctx, applied)
        det = self.detectors.get(domain)
        if det is not None:
            det.on_samples(ctx, applied)

    def _power(self, ctx: DeviceCtx, samples: list[Sample]) -> None:
        for s in samples:
            if s[0] == "mains_power":
                kind = f"{ctx.domain}.power_loss"
                if s[1] < 0.5:
                    self.book.assert_(ctx, kind, s[3], "reading", summary="市电断电, 电池供电", evidence=evidence([s]))
                else:
                    self.book.retract(ctx, kind, "reading", s[3], evidence=evidence([s], "市电恢复"))

    def _device_event(self, ev: DeviceEvent, msg: Message, out: BatchOutput) -> None:
        self._advance(ev.received_at)
        out.device_events.append(
            (ev.device_id, ev.ts, ev.code, ev.component, ev.active, ev.zone,
             json.dumps(ev.detail, ensure_ascii=False, default=str), ev.received_at)
        )
        ctx = self.devices.ctx(ev.device_id, ev.site_id, ev.domain)
        self._heard(ctx, ev.received_at, "data", out)
        domain = ctx.domain or ev.domain
        if ev.code not in DEVICE_EVENT_CODES.get(domain, frozenset()):
            self._dead(out, msg, DeadLetterReason.SCHEMA, f"unknown device-event code {ev.code!r} for domain {domain}",
                       ev.device_id, ev.vendor)
            return
        if ev.ts.timestamp() > ev.received_at.timestamp() + self.max_skew_s:
            return  # stored; a clock far ahead must not start an episode in the future
        key = (ev.device_id, ev.code, ev.component)
        t = ev.ts.timestamp()
        if t < self._dev_event_last.get(key, -math.inf):
            out.late += 1
            return
        self._dev_event_last[key] = t
        det = self.detectors.get(domain)
        if det is not None:
            try:
                det.on_device_event(ctx, ev)
            except Exception as exc:
                log.exception("device event failed %s", kv(source=msg.source, device=ev.device_id))
                self._dead(out, msg, DeadLetterReason.INTERNAL, f"{type(exc).__name__}: {exc}", ev.device_id)

    def _status(self, st: DeviceStatus, msg: Message, out: BatchOutput) -> None:
        self._advance(st.received_at)
        out.statuses.append(
            (st.device_id, st.ts, st.reason, st.state.value if st.state else None, st.battery_pct, st.signal_dbm,
             st.mains_power, st.received_at)
        )
        ctx = self.devices.ctx(st.device_id, st.site_id)
        if st.state is None or st.state.value == "online":
            prev_seen = out.seen.get(st.device_id)
            if prev_seen is None or st.received_at > prev_seen:
                out.seen[st.device_id] = st.received_at
        self.offline.on_status(ctx, st)

    def _heard(self, ctx: DeviceCtx, received: datetime, reason: str, out: BatchOutput) -> None:
        """Presence: the device spoke (``received_at``: the platform's clock, see offline.py)."""
        prev = out.seen.get(ctx.device_id)
        if prev is None or received > prev:
            out.seen[ctx.device_id] = received
        self.presence.heard(ctx, received.timestamp(), reason)

    # ------------------------------------------------------------------------------ restart
    def warm_up(
        self,
        firing: Iterable[Event],
        readings: Iterable[tuple[str, str, str, str, datetime, float | None, Sequence[str], datetime]],
        device_events: Iterable[DeviceEvent] = (),
        latest_times: Iterable[tuple[str, str, datetime]] = (),
        presence: Iterable[PresenceRow] = (),
    ) -> None:
        """Rebuild state after a restart without announcing anything (:func:`detectors.warmup.warm_up`)."""
        from .warmup import warm_up

        warm_up(self, firing, readings, device_events, latest_times, presence)

    def restore_presence(self, rows: Iterable[PresenceRow], last_times: Iterable[tuple[str, datetime]] = ()) -> int:
        """Merge stored presence (restart, or partitions assigned here) and align it with the
        active episodes; nothing is emitted. Returns the rows that were new here."""
        rows = list(rows)
        for device_id, *_ in rows:
            if self.devices.get(device_id) is None:
                self.devices.ctx(device_id)  # registry facts (interval) for the silence check
        n = self.presence.restore(rows, last_times)
        self.presence.reconcile_with_book()
        self.presence.take_changes()
        return n

    def restore_active(self, firing: Iterable[Event]) -> int:
        """Add stored firing episodes not known yet (partitions moved here in a rebalance)."""
        known = {ep.id for ep in self.book.active.values()}
        fresh = [ev for ev in firing if ev.id not in known and (ev.device_id, ev.kind, ev.component) not in self.book.active]
        n = self.book.restore(fresh)
        gas_busy = self.devices.cols["gas_busy"]
        for ev in fresh:
            if ev.kind.startswith("gas."):
                gas_busy[self.devices.ctx(ev.device_id, ev.site_id, ev.domain).idx] = 1
        return n

    def state_bytes(self) -> int:
        return self.devices.cols.nbytes()


def _by_ts(s: Sample) -> float:
    return s[2]


def _arrival(item: tuple) -> tuple[datetime, int]:
    return item[0], item[1]
