"""燃气: combustible-gas detectors (可燃气体报警装置) with shut-off valves (燃气泄漏安全保护装置).

Rules (thresholds in :class:`detectors.config.GasParams`, sources named there):

* ``gas.low`` / ``gas.high`` — %LEL at/above the set point for ``confirm_n`` consecutive
  readings; resolved after ``clear_n`` consecutive readings below set point − hysteresis, so a
  value hovering at the set point does not flap. The device's own gas_low/gas_high code
  asserts the same episode (one event, two sources).
* ``gas.rate_of_rise`` — rise ≥ ``rise_lel`` within ``rise_window_s`` (ring buffer).
* ``gas.flatline`` — the exact same non-zero value for ``flatline_s`` (stuck sensor).
* ``gas.valve_closed`` — valve_closed = 1 (the shut-off valve operated); ``gas.power_loss`` —
  mains_power = 0 or the power_loss code; ``gas.sensor_fault`` / ``gas.valve_fault`` — codes.

Hot path: most readings are clean-air noise far below every set point; they only touch the
ring buffer and the flatline tracker.
"""

from __future__ import annotations

import math

import numpy as np

from hazmon.contracts import DeviceEvent, Evidence

from .base import DomainDetector, Sample, evidence
from .state import DeviceCtx, DeviceTable, EpisodeBook, Ring, ts_of

__all__ = ["GasDetector"]

_CODES = {
    "gas_low": "gas.low",
    "gas_high": "gas.high",
    "sensor_fault": "gas.sensor_fault",
    "valve_fault": "gas.valve_fault",
    "power_loss": "gas.power_loss",
}
_LEVELS = (("gas.low", "low_lel"), ("gas.high", "high_lel"))


class GasDetector(DomainDetector):
    domain = "gas"

    def __init__(self, devices: DeviceTable, book: EpisodeBook) -> None:
        super().__init__(devices, book)
        cols = devices.cols
        self.ring = Ring(cols, "gas_ring", 16)
        # per level (0 = low, 1 = high): consecutive readings above / below, streak start
        cols.add("gas_up_n", np.int32, 0, 2)
        cols.add("gas_up_ts", np.float64, math.nan, 2)
        cols.add("gas_dn_n", np.int32, 0, 2)
        cols.add("gas_rise_dn", np.int32, 0)
        cols.add("gas_rise_up", np.int32, 0)
        cols.add("gas_rise_ts", np.float64, math.nan)
        cols.add("gas_flat_v", np.float64, math.nan)
        cols.add("gas_flat_since", np.float64, math.nan)
        cols.add("gas_flat_n", np.int32, 0)
        #: bit set per device while anything is counting or firing (fast-path guard)
        cols.add("gas_busy", np.int8, 0)

    def on_samples(self, ctx: DeviceCtx, samples: list[Sample]) -> None:
        cols = self.devices.cols
        if len(samples) > 2 and self._quiet_run(ctx, samples):
            return
        for s in samples:
            metric = s[0]
            if metric == "gas_lel":
                self._lel(ctx, s, cols)
            elif metric == "valve_closed":
                if s[1] >= 0.5:
                    self.book.assert_(ctx, "gas.valve_closed", s[3], "reading",
                                      summary="切断阀已关闭", evidence=evidence([s]))
                else:
                    self.book.retract(ctx, "gas.valve_closed", "reading", s[3], evidence=evidence([s]))

    def _lel(self, ctx: DeviceCtx, s: Sample, cols: object) -> None:
        idx = ctx.idx
        p = ctx.params.gas
        value, t = s[1], s[2]
        c = self.devices.cols
        self.ring.push(idx, t, value)
        self._flat(ctx, s)
        quiet = value < p.low_lel - p.hysteresis_lel and value < p.rise_lel
        if quiet and not c["gas_busy"][idx]:
            return
        if value < p.rise_lel:
            c["gas_rise_up"][idx] = 0
        busy = 0
        # set points with hysteresis
        for level, (kind, attr) in enumerate(_LEVELS):
            threshold = getattr(p, attr)
            up_n = c["gas_up_n"]
            dn_n = c["gas_dn_n"]
            if value >= threshold:
                if up_n[idx, level] == 0:
                    c["gas_up_ts"][idx, level] = t
                up_n[idx, level] += 1
                dn_n[idx, level] = 0
                if up_n[idx, level] >= p.confirm_n:
                    start = ts_of(float(c["gas_up_ts"][idx, level]))
                    self.book.assert_(
                        ctx, kind, start, "reading",
                        summary=f"可燃气体浓度 {value:g} %LEL ≥ {threshold:g}",
                        evidence=self._recent(idx, t, p.rise_window_s),
                    )
            elif value < threshold - p.hysteresis_lel:
                up_n[idx, level] = 0
                dn_n[idx, level] += 1
                if dn_n[idx, level] >= p.clear_n:
                    self.book.retract(ctx, kind, "reading", s[3], evidence=evidence([s], "恢复"))
                    dn_n[idx, level] = 0
            else:  # inside the hysteresis band: neither confirms nor clears
                up_n[idx, level] = 0
                dn_n[idx, level] = 0
            if up_n[idx, level] or self.book.is_active(ctx.device_id, kind):
                busy = 1
        # rate of rise: cannot rise by rise_lel when the value itself is below it (values ≥ 0)
        rising = self.book.is_active(ctx.device_id, "gas.rate_of_rise")
        if value >= p.rise_lel or rising:
            low, low_ts = self.ring.window_min(idx, t - p.rise_window_s)
            rise = value - low if not math.isnan(low) else 0.0
            if rise >= p.rise_lel and not rising:
                # a single spike is noise: the rise must hold for confirm_n readings
                if c["gas_rise_up"][idx] == 0:
                    c["gas_rise_ts"][idx] = low_ts
                c["gas_rise_up"][idx] += 1
                if c["gas_rise_up"][idx] >= p.confirm_n:
                    self.book.assert_(
                        ctx, "gas.rate_of_rise", ts_of(float(c["gas_rise_ts"][idx])), "reading",
                        summary=f"{p.rise_window_s:g} s 内上升 {rise:g} %LEL",
                        evidence=self._recent(idx, t, p.rise_window_s),
                    )
                    c["gas_rise_up"][idx] = 0
                    c["gas_rise_dn"][idx] = 0
                else:
                    busy = 1
            elif rising and rise < p.rise_lel / 2:
                c["gas_rise_dn"][idx] += 1
                if c["gas_rise_dn"][idx] >= p.clear_n:
                    self.book.retract(ctx, "gas.rate_of_rise", "reading", s[3])
                    c["gas_rise_dn"][idx] = 0
            elif rising:
                c["gas_rise_dn"][idx] = 0
            else:
                c["gas_rise_up"][idx] = 0
            if self.book.is_active(ctx.device_id, "gas.rate_of_rise"):
                busy = 1
        c["gas_busy"][idx] = busy

    def _quiet_run(self, ctx: DeviceCtx, samples: list[Sample]) -> bool:
        """Vectorised path for a run of clean-air %LEL readings of a device with nothing
        counting or firing: ring buffer and flatline tracker updated in bulk. False (and
        nothing changed) when any reading needs the per-reading rules."""
        idx = ctx.idx
        c = self.devices.cols
        if c["gas_busy"][idx] or any(s[0] != "gas_lel" for s in samples):
            return False
        p = ctx.params.gas
        v = np.fromiter((s[1] for s in samples), np.float64, len(samples))
        if v.max() >= min(p.low_lel - p.hysteresis_lel, p.rise_lel):
            return False
        if self.book.is_active(ctx.device_id, "gas.flatline"):
            return False
        t = np.fromiter((s[2] for s in samples), np.float64, len(samples))
        flat_v = c["gas_flat_v"][idx]
        prev = np.empty_like(v)
        prev[0] = flat_v
        prev[1:] = v[:-1]
        changed = np.flatnonzero(v != prev)
        if changed.size:
            j = int(changed[-1])
            n_flat = len(samples) - j
            since = float(t[j])
        else:
            n_flat = int(c["gas_flat_n"][idx]) + len(samples)
            since = float(c["gas_flat_since"][idx])
        last = float(v[-1])
        if (n_flat >= p.flatline_min_n and float(t[-1]) - since >= p.flatline_s
                and not (p.flatline_ignore_zero and last == 0.0)):
            return False  # a flatline fires inside this run: take the exact path
        self.ring.push_many(idx, t, v)
        c["gas_flat_v"][idx] = last
        c["gas_flat_since"][idx] = since
        c["gas_flat_n"][idx] = n_flat
        c["gas_rise_up"][idx] = 0
        return True

    def _flat(self, ctx: DeviceCtx, s: Sample) -> None:
        c = self.devices.cols
        idx, value, t = ctx.idx, s[1], s[2]
        p = ctx.params.gas
        if value == c["gas_flat_v"][idx]:
            c["gas_flat_n"][idx] += 1
            since = float(c["gas_flat_since"][idx])
            if (
                c["gas_flat_n"][idx] >= p.flatline_min_n
                and t - since >= p.flatline_s
                and not (p.flatline_ignore_zero and value == 0.0)
            ):
                self.book.assert_(
                    ctx, "gas.flatline", ts_of(since), "reading",
                    summary=f"传感器读数 {value:g} %LEL 持续不变 {t - since:.0f} s",
                    evidence=evidence([s], "卡滞"),
                )
            return
        if self.book.is_active(ctx.device_id, "gas.flatline"):
            self.book.retract(ctx, "gas.flatline", "reading", s[3], evidence=evidence([s], "读数恢复变化"))
        c["gas_flat_v"][idx] = value
        c["gas_flat_since"][idx] = t
        c["gas_flat_n"][idx] = 1

    def _recent(self, idx: int, t: float, window: float) -> tuple[Evidence, ...]:
        ts, vals = self.ring.window(idx, t - window)
        order = np.argsort(ts)[-5:]
        return tuple(Evidence(ts=ts_of(float(ts[i])), metric="gas_lel", value=float(vals[i])) for i in order)

    def on_device_event(self, ctx: DeviceCtx, ev: DeviceEvent) -> None:
        kind = _CODES.get(ev.code)
        if kind is None:
            return
        note = Evidence(ts=ev.ts, metric=f"code:{ev.code}", value=1.0 if ev.active else 0.0, note="设备上报")
        if ev.active:
            self.book.assert_(ctx, kind, ev.ts, "device", summary=f"设备上报 {ev.code}", evidence=(note,))
            if kind in ("gas.low", "gas.high"):
                self.devices.cols["gas_busy"][ctx.idx] = 1
        else:
            self.book.retract(ctx, kind, "device", ev.ts, evidence=(note,))
