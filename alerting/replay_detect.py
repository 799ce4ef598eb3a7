"""The detector engine (:class:`detectors.engine.Engine`) driven in memory over a stored period:
the what-if replay's detection (回放, alerting/replay.py). Not a second detector: the records the
detectors consumed are rebuilt from storage (alerting/replay_data.py) and fed to fresh engines —
one per thresholds file, each with its own per-device state — in the order they were received.

The service's presence check runs every 2 s on the consumer's clock; here the stream is the
clock: before each window of records (``window_s`` of receipt time) and at the end of the period
the engines judge silence at that time (``device.offline_k`` × the expected interval, as live), so
an outage shorter than a window still opens and closes its 离线 episode under the same id
(``last_seen + k × interval``, docs/detectors.md *Presence*).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from detectors.batch import Message
from detectors.config import DetectorConfig
from detectors.engine import Engine
from detectors.state import DeviceMeta
from hazmon.contracts import Event

from .replay_data import Record, ReplayScope, device_records, readings

__all__ = ["Detected", "detect"]


@dataclass(slots=True)
class Detected:
    """What one engine found over the period: its events in the order made (firing, resolved)."""

    events: list[Event] = field(default_factory=list)
    records: int = 0
    late: int = 0
    deadletters: int = 0


class _Run:
    def __init__(
        self, config: DetectorConfig, meta: Callable[[str], DeviceMeta | None], start: datetime
    ) -> None:
        self.engine = Engine(config, meta, clock=lambda: self.engine.stream_time or start)
        self.found = Detected()

    def feed(self, window: Sequence[Record]) -> None:
        parts: tuple[list[Message], list[Message], list[Message]] = ([], [], [])
        for _at, topic, msg in window:
            parts[topic].append(msg)
        out = self.engine.process(parts[0], parts[2], parts[1])
        self.found.events += out.events
        self.found.records += len(window)
        self.found.late += out.late
        self.found.deadletters += len(out.deadletters)

    def check(self, at: datetime) -> None:
        t = at.timestamp()
        out = self.engine.process(presence_clock=lambda _d: (t, -math.inf), presence_upper=t)
        self.found.events += out.events


async def detect(
    conn: asyncpg.Connection,
    start: datetime,
    end: datetime,
    scope: ReplayScope,
    configs: Sequence[DetectorConfig],
    meta: Callable[[str], DeviceMeta | None],
    *,
    until: datetime,
    window_s: float = 5.0,
) -> list[Detected]:
    """Every config's events over the stored records of ``[start, end)`` (``until``: the last
    time silence is judged, the period's end or now). ``conn`` must be inside a transaction."""
    runs = [_Run(c, meta, start) for c in configs]
    others = await device_records(conn, start, end, scope)
    i = 0
    window: list[Record] = []
    window_end: datetime | None = None

    def flush() -> None:
        for run in runs:
            run.feed(window)
        window.clear()

    def add(rec: Record) -> None:
        nonlocal window_end
        if window_end is not None and rec[0] >= window_end:
            flush()
            window_end = None
        if window_end is None:
            for run in runs:
                run.check(rec[0])  # silence up to this record's receipt, before it is applied
            window_end = datetime.fromtimestamp(rec[0].timestamp() + window_s, rec[0].tzinfo)
        window.append(rec)

    async for rec in readings(conn, start, end, scope):
        while i < len(others) and others[i][0] <= rec[0]:
            add(others[i])
            i += 1
        add(rec)
    for rec in others[i:]:
        add(rec)
    flush()
    for run in runs:
        run.check(until)
    return [run.found for run in runs]
