"""电梯: elevator IoT boxes (电梯安全全时段物联网监测), data items as ingest's ``elevator_json``
reads them: GB/T 24476-2023, which replaced GB/T 24476-2017 on 2023-12-01, with the data items
of the 2017 edition (its clauses 9 running status, 11 faults and alarms) — whether the 2023 text
changed any of them is not verified (ingest/adapters/elevator_json.py).

A box reports a snapshot of the car (running, direction, floor, door, door zone, speed,
person in car, service mode) — several metrics with one timestamp. The rules look at the
snapshot after all its metrics are applied:

* ``elevator.trapped`` 困人 — stopped, outside the door zone (非平层), doors closed, a person
  inside, for ``trapped_s``; starts when that condition began. Or the box's ``trapped`` code.
* ``elevator.door_open_moving`` 开门走车 — door open while the car runs.
* ``elevator.overspeed`` 超速 — speed ≥ rated × 1.15 (GB 7588 governor trip), clears ≤ rated × 1.05.
* ``elevator.overtravel_top`` / ``_bottom`` 冲顶/蹲底 — the box's codes, or the floor beyond the
  configured hoistway bounds.
* ``elevator.door_lock_fault`` 门锁回路故障, ``elevator.stopped_out_of_zone``, ``elevator.fault`` — codes.
* ``elevator.frequent_faults`` 频繁故障 — ``frequent_faults_n`` fault codes within the window.

维保/检修 (service_mode in ``maintenance_modes``): the kinds in ``maintenance_suppresses`` do not
start (workers ride the car with doors open, test the governor and buffers); episodes already
firing still resolve normally.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from datetime import datetime, timedelta

import numpy as np

from hazmon.contracts import DeviceEvent, Evidence

from .base import DomainDetector, Sample, evidence
from .state import DeviceCtx, DeviceTable, EpisodeBook, ts_of

__all__ = ["ElevatorDetector"]

_STATE_METRICS = (
    "car_running",
    "direction",
    "floor",
    "door_open",
    "door_zone",
    "speed_mps",
    "rated_speed_mps",
    "person_in_car",
    "service_mode",
)
_CODES = {
    "trapped": "elevator.trapped",
    "door_lock_fault": "elevator.door_lock_fault",
    "door_open_moving": "elevator.door_open_moving",
    "overspeed": "elevator.overspeed",
    "overtravel_top": "elevator.overtravel_top",
    "overtravel_bottom": "elevator.overtravel_bottom",
    "stopped_out_of_zone": "elevator.stopped_out_of_zone",
    "fault": "elevator.fault",
}
#: codes that count towards 频繁故障
_FAULT_CODES = frozenset(_CODES) - {"trapped"}


class ElevatorDetector(DomainDetector):
    domain = "elevator"

    def __init__(self, devices: DeviceTable, book: EpisodeBook) -> None:
        super().__init__(devices, book)
        cols = devices.cols
        self._m = frozenset(_STATE_METRICS)
        for name in _STATE_METRICS:
            cols.add(f"elv_{name}")
        cols.add("elv_trapped_since")
        self._faults: dict[str, deque[float]] = {}
        #: (when the oldest counted fault leaves the window, device)
        self._due: list[tuple[float, str]] = []

    def _col(self, name: str) -> np.ndarray:
        return self.devices.cols[f"elv_{name}"]

    def on_samples(self, ctx: DeviceCtx, samples: list[Sample]) -> None:
        cols = self.devices.cols
        idx = ctx.idx
        i, n = 0, len(samples)
        while i < n:  # one snapshot = the samples sharing a timestamp
            t = samples[i][2]
            j = i
            while j < n and samples[j][2] == t:
                metric = samples[j][0]
                if metric in self._m:
                    cols[f"elv_{metric}"][idx] = samples[j][1]
                j += 1
            self._evaluate(ctx, samples[i:j], t, samples[i][3])
            i = j

    def _maintenance(self, ctx: DeviceCtx) -> bool:
        mode = self._col("service_mode")[ctx.idx]
        return not math.isnan(mode) and int(mode) in ctx.params.elevator.maintenance_modes

    def _may_start(self, ctx: DeviceCtx, kind: str) -> bool:
        return not (kind in ctx.params.elevator.maintenance_suppresses and self._maintenance(ctx))

    def _evaluate(self, ctx: DeviceCtx, snap: list[Sample], t: float, when: datetime) -> None:
        c = self.devices.cols
        idx = ctx.idx
        p = ctx.params.elevator
        running = c["elv_car_running"][idx]
        door = c["elv_door_open"][idx]
        zone = c["elv_door_zone"][idx]
        person = c["elv_person_in_car"][idx]
        speed = c["elv_speed_mps"][idx]
        floor = c["elv_floor"][idx]
        book = self.book
        dev = ctx.device_id

        def ev() -> tuple[Evidence, ...]:  # built only when an episode starts or ends
            return evidence(snap)
        # 困人
        stuck = running == 0 and zone == 0 and door == 0 and person == 1 and not self._maintenance(ctx)
        if stuck:
            since = c["elv_trapped_since"][idx]
            if math.isnan(since):
                c["elv_trapped_since"][idx] = since = t
            if t - since >= p.trapped_s:
                book.assert_(ctx, "elevator.trapped", ts_of(float(since)), "reading",
                             summary=f"非平层停梯、门关闭、轿内有人已 {t - since:.0f} s", evidence=ev())
        else:
            c["elv_trapped_since"][idx] = math.nan
            if book.is_active(dev, "elevator.trapped"):
                book.retract(ctx, "elevator.trapped", "reading", when, evidence=ev())
        # 开门走车
        moving = running == 1 and (math.isnan(speed) or speed > p.moving_speed_mps)
        if door == 1 and moving:
            if self._may_start(ctx, "elevator.door_open_moving"):
                book.assert_(ctx, "elevator.door_open_moving", when, "reading", summary="轿厢运行中门开启", evidence=ev())
        elif not math.isnan(door) and not math.isnan(running):
            if book.is_active(dev, "elevator.door_open_moving"):
                book.retract(ctx, "elevator.door_open_moving", "reading", when, evidence=ev())
        # 超速
        if not math.isnan(speed):
            rated = c["elv_rated_speed_mps"][idx]
            if math.isnan(rated):
                rated = p.rated_speed_mps
            if speed >= rated * p.overspeed_ratio:
                if self._may_start(ctx, "elevator.overspeed"):
                    book.assert_(ctx, "elevator.overspeed", when, "reading",
                                 summary=f"运行速度 {speed:g} m/s ≥ 额定 {rated:g} m/s × {p.overspeed_ratio:g}", evidence=ev())
            elif speed <= rated * p.overspeed_clear_ratio:
                if book.is_active(dev, "elevator.overspeed"):
                    book.retract(ctx, "elevator.overspeed", "reading", when, evidence=ev())
        # 冲顶/蹲底 from the floor, where the hoistway bounds are configured
        if not math.isnan(floor):
            for kind, beyond in (
                ("elevator.overtravel_top", p.top_floor is not None and floor > p.top_floor),
                ("elevator.overtravel_bottom", p.bottom_floor is not None and floor < p.bottom_floor),
            ):
                if beyond:
                    if self._may_start(ctx, kind):
                        book.assert_(ctx, kind, when, "reading", summary=f"楼层 {floor:g} 越限", evidence=ev())
                else:
                    if book.is_active(dev, kind):
                        book.retract(ctx, kind, "reading", when, evidence=ev())
        self._slide_faults(ctx, when)

    def on_device_event(self, ctx: DeviceCtx, ev: DeviceEvent) -> None:
        kind = _CODES.get(ev.code)
        if kind is None:
            return
        note = (Evidence(ts=ev.ts, metric=f"code:{ev.code}", value=1.0 if ev.active else 0.0, note="设备上报"),)
        if not ev.active:
            self.book.retract(ctx, kind, "device", ev.ts, component=ev.component, evidence=note)
            return
        if not self._may_start(ctx, kind):
            return
        self.book.assert_(ctx, kind, ev.ts, "device", component=ev.component, zone=ev.zone,
                          summary=f"设备上报 {ev.code}", evidence=note)
        if ev.code in _FAULT_CODES:
            p = ctx.params.elevator
            q = self._faults.setdefault(ctx.device_id, deque())
            t = ev.ts.timestamp()
            if q and t < q[-1]:
                return  # a late duplicate does not count twice
            q.append(t)
            heapq.heappush(self._due, (q[0] + p.frequent_faults_window_s, ctx.device_id))
            self._slide_faults(ctx, ev.ts)
            if len(q) >= p.frequent_faults_n and self._may_start(ctx, "elevator.frequent_faults"):
                self.book.assert_(ctx, "elevator.frequent_faults", ev.ts, "window",
                                  summary=f"{p.frequent_faults_window_s / 3600:g} h 内故障 {len(q)} 次",
                                  evidence=tuple(Evidence(ts=ts_of(x), metric="fault", value=1.0) for x in q)[-5:])

    def _slide_faults(self, ctx: DeviceCtx, now: datetime) -> None:
        q = self._faults.get(ctx.device_id)
        if not q:
            return
        p = ctx.params.elevator
        t = now.timestamp()
        while q and q[0] <= t - p.frequent_faults_window_s:
            oldest = q.popleft()
            if len(q) < p.frequent_faults_n and self.book.is_active(ctx.device_id, "elevator.frequent_faults"):
                # resolved the moment the count fell below n: deterministic under replay
                self.book.retract(ctx, "elevator.frequent_faults", None,
                                  ts_of(oldest) + timedelta(seconds=p.frequent_faults_window_s))
        if not q:
            del self._faults[ctx.device_id]
        else:
            heapq.heappush(self._due, (q[0] + p.frequent_faults_window_s, ctx.device_id))

    def tick(self, now: datetime) -> None:
        t = now.timestamp()
        due = self._due
        while due and due[0][0] <= t:
            _, device_id = heapq.heappop(due)
            ctx = self.devices.get(device_id)
            if ctx is not None:
                self._slide_faults(ctx, now)
