"""消防: fire alarm control panels (火灾报警控制器) and analogue detectors.

Panels report discrete signals per component (a loop/address, 回路/地址) as device events:

* ``fire_alarm`` → ``fire.alarm`` 火警 (红). With ``confirm: two_in_zone`` (GB 50116-2013
  §4.1.6: two independent alarm signals) the episode fires once two components of one zone
  alarm within ``confirm_window_s``; it is keyed on the zone and starts at the first alarm.
* ``fault`` → ``fire.fault`` 故障; ``supervisory`` → ``fire.supervisory`` 监管.
* ``shielded`` → ``fire.shielded_too_long`` 屏蔽 once held longer than ``max_shield_s``; the
  episode starts at shield time + limit (the same id whenever it is detected).
* ``reset`` 复位 clears the panel's alarms, faults and supervisory signals (and a declared test).
* a part in 测试状态 (``detail.test``, GB/T 26875.3 status bit 0 = 0) never raises a real
  ``fire.alarm``: its 火警 is ``fire.test`` 测试 (蓝, label ``test: 测试``); its faults and
  supervisory signals keep their kind with 测试 in the summary. A declared test (操作信息 测试/自检,
  ``operation`` with ``detail.declared_test``) does not mute a part in normal state: its 火警 is a
  real ``fire.alarm`` whose summary says it came during the test.
* ``started`` 启动, ``feedback`` 反馈, ``delay`` 延时, ``operation``, ``version``, ``config`` and
  ``clock`` are stored, not episodes. Episode ids include the component: two systems' parts that
  alarm at the same instant (one frame) are two episodes, not one.

Analogue detectors report ``temperature_c`` / ``smoke_obscuration``: ``fire.rate_of_rise``
when the rise within ``rise_window_s`` reaches ``temp_rise_c`` / ``smoke_rise``.
Every event carries ``labels["panel"]`` (the panel the detector hangs off) for grouping.
"""

from __future__ import annotations

import heapq
import math
from datetime import datetime, timedelta

import numpy as np

from hazmon.contracts import DeviceEvent, Evidence

from .base import DomainDetector, Sample, evidence
from .state import DeviceCtx, DeviceTable, EpisodeBook, Ring, ts_of

__all__ = ["FireDetector"]

_SIMPLE = {"fault": "fire.fault", "supervisory": "fire.supervisory"}
_RESETTABLE = ("fire.alarm", "fire.test", "fire.fault", "fire.supervisory")
#: how long after a declared test (操作信息 测试/自检) a real alarm's summary mentions it
DECLARED_TEST_S = 3600.0
_TEST_LABELS = {"test": "测试"}


def _where(ev: DeviceEvent) -> str:
    """What a person reads for the part: its system (GB/T 26875.3) and zone/description, the raw
    component id only when nothing else names it."""
    system = ev.detail.get("system")
    place = ev.zone or ev.component
    return f"{system} {place}" if isinstance(system, str) and system and place else (place or "")


class FireDetector(DomainDetector):
    domain = "fire"

    def __init__(self, devices: DeviceTable, book: EpisodeBook) -> None:
        super().__init__(devices, book)
        cols = devices.cols
        self.rings = {
            "temperature_c": Ring(cols, "fire_temp", 16),
            "smoke_obscuration": Ring(cols, "fire_smoke", 16),
        }
        self._rise_dn: dict[tuple[str, str], int] = {}
        #: (device, component) → shield start (epoch s)
        self.shields: dict[tuple[str, str], float] = {}
        #: (deadline epoch s, device, component): when a shield becomes too long
        self._due: list[tuple[float, str, str]] = []
        #: (device, zone) → {component: alarm ts} for two-in-zone confirmation
        self.zone_alarms: dict[tuple[str, str], dict[str, float]] = {}
        #: device → when a test was declared (操作信息 测试/自检); cleared by 复位
        self.declared_tests: dict[str, float] = {}

    # analogue detectors -------------------------------------------------------------------
    def on_samples(self, ctx: DeviceCtx, samples: list[Sample]) -> None:
        p = ctx.params.fire
        if len(samples) > 2 and self._quiet_run(ctx, samples):
            return
        for s in samples:
            ring = self.rings.get(s[0])
            if ring is None:
                continue
            ring.push(ctx.idx, s[2], s[1])
            threshold = p.temp_rise_c if s[0] == "temperature_c" else p.smoke_rise
            low, low_ts = ring.window_min(ctx.idx, s[2] - p.rise_window_s)
            rise = s[1] - low if not math.isnan(low) else 0.0
            key = (ctx.device_id, s[0])
            component = s[0]
            if rise >= threshold:
                self._rise_dn[key] = 0
                self.book.assert_(
                    ctx,
                    "fire.rate_of_rise",
                    ts_of(low_ts),
                    "reading",
                    component=component,
                    summary=f"{s[0]} {p.rise_window_s:g} s 内上升 {rise:g}",
                    evidence=evidence([s]),
                )
            elif rise < threshold / 2 and self.book.is_active(ctx.device_id, "fire.rate_of_rise", component):
                n = self._rise_dn.get(key, 0) + 1
                self._rise_dn[key] = n
                if n >= p.clear_n:
                    self.book.retract(ctx, "fire.rate_of_rise", "reading", s[3], component=component)
                    self._rise_dn.pop(key, None)

    def _quiet_run(self, ctx: DeviceCtx, samples: list[Sample]) -> bool:
        """Vectorised path: a run of one analogue metric whose largest possible rise (max of
        the run − min of the ring window and the run) stays under the threshold."""
        metric = samples[0][0]
        ring = self.rings.get(metric)
        if ring is None or any(s[0] != metric for s in samples):
            return False
        if self.book.is_active(ctx.device_id, "fire.rate_of_rise", metric):
            return False
        p = ctx.params.fire
        v = np.fromiter((s[1] for s in samples), np.float64, len(samples))
        t = np.fromiter((s[2] for s in samples), np.float64, len(samples))
        _ts, past = ring.window(ctx.idx, float(t[0]) - p.rise_window_s)
        low = min(float(v.min()), float(past.min())) if past.size else float(v.min())
        threshold = p.temp_rise_c if metric == "temperature_c" else p.smoke_rise
        if float(v.max()) - low >= threshold:
            return False
        ring.push_many(ctx.idx, t, v)
        return True

    # panel signals ---------------------------------------------------------------------------
    def on_device_event(self, ctx: DeviceCtx, ev: DeviceEvent) -> None:
        note = (
            Evidence(
                ts=ev.ts,
                metric=f"code:{ev.code}",
                value=1.0 if ev.active else 0.0,
                note=" ".join(x for x in (ev.component, ev.zone) if x),
            ),
        )
        code = ev.code
        test = ev.detail.get("test") is True
        if code == "fire_alarm":
            if test or not ev.active:
                self._test_alarm(ctx, ev, note, test)
            if not test:
                self._alarm(ctx, ev, note)
        elif code in _SIMPLE:
            kind = _SIMPLE[code]
            if ev.active:
                what = "故障" if code == "fault" else "监管"
                self.book.assert_(
                    ctx,
                    kind,
                    ev.ts,
                    "device",
                    component=ev.component,
                    zone=ev.zone,
                    summary=f"{'测试 ' if test else ''}{_where(ev) or '控制器'} {what}",
                    evidence=note,
                    id_part=ev.component,
                    labels=_TEST_LABELS if test else None,
                )
            else:
                self.book.retract(ctx, kind, "device", ev.ts, component=ev.component, evidence=note)
        elif code == "operation":
            if ev.detail.get("declared_test") is True:
                self.declared_tests[ctx.device_id] = ev.ts.timestamp()
        elif code == "shielded":
            key = (ctx.device_id, ev.component)
            if ev.active:
                since = self.shields.setdefault(key, ev.ts.timestamp())
                heapq.heappush(self._due, (since + ctx.params.fire.max_shield_s, ctx.device_id, ev.component))
                self._check_shield(ctx, ev.component, ev.ts)
            else:
                self.shields.pop(key, None)
                self.book.retract(
                    ctx, "fire.shielded_too_long", None, ev.ts, component=ev.component, evidence=note
                )
        elif code == "reset" and ev.active:
            self.declared_tests.pop(ctx.device_id, None)
            for ep in self.book.episodes_of(ctx.device_id, _RESETTABLE):
                self.book.retract(ctx, ep.kind, None, ev.ts, component=ep.component, evidence=note)
            for zkey in [k for k in self.zone_alarms if k[0] == ctx.device_id]:
                del self.zone_alarms[zkey]

    def _test_alarm(self, ctx: DeviceCtx, ev: DeviceEvent, note: tuple[Evidence, ...], test: bool) -> None:
        """火警 of a part in 测试状态: ``fire.test``; any 火警 restore of the part ends it."""
        if test and ev.active:
            self.book.assert_(
                ctx,
                "fire.test",
                ev.ts,
                "device",
                component=ev.component,
                zone=ev.zone,
                summary=f"测试 火警 {_where(ev)}（部件处于测试状态，非真实火警）".replace("  ", " "),
                evidence=note,
                id_part=ev.component,
                labels=_TEST_LABELS,
            )
        elif not ev.active:
            self.book.retract(ctx, "fire.test", "device", ev.ts, component=ev.component, evidence=note)

    def _during_test(self, ctx: DeviceCtx, t: float) -> str:
        since = self.declared_tests.get(ctx.device_id)
        return (
            "（系统测试期间报警，按真实火警处理）"
            if since is not None and 0 <= t - since <= DECLARED_TEST_S
            else ""
        )

    def _alarm(self, ctx: DeviceCtx, ev: DeviceEvent, note: tuple[Evidence, ...]) -> None:
        p = ctx.params.fire
        if p.confirm == "none":
            if ev.active:
                self.book.assert_(
                    ctx,
                    "fire.alarm",
                    ev.ts,
                    "device",
                    component=ev.component,
                    zone=ev.zone,
                    summary=f"火警 {_where(ev)}".strip() + self._during_test(ctx, ev.ts.timestamp()),
                    evidence=note,
                    id_part=ev.component,
                )
            else:
                self.book.retract(ctx, "fire.alarm", "device", ev.ts, component=ev.component, evidence=note)
            return
        # two_in_zone: the episode is the zone's, keyed by component "zone:<zone>"
        zkey = (ctx.device_id, ev.zone)
        alarms = self.zone_alarms.setdefault(zkey, {})
        t = ev.ts.timestamp()
        if ev.active:
            alarms.setdefault(ev.component, t)
            recent = {c: x for c, x in alarms.items() if t - x <= p.confirm_window_s}
            if len(recent) >= 2:
                first = min(recent.values())
                self.book.assert_(
                    ctx,
                    "fire.alarm",
                    ts_of(first),
                    "device",
                    component=f"zone:{ev.zone}",
                    zone=ev.zone,
                    summary=f"火警确认: {ev.zone} 区 {len(recent)} 个探测器报警" + self._during_test(ctx, t),
                    evidence=note,
                    id_part=f"zone:{ev.zone}",
                )
        else:
            alarms.pop(ev.component, None)
            if not alarms:
                del self.zone_alarms[zkey]
                self.book.retract(ctx, "fire.alarm", None, ev.ts, component=f"zone:{ev.zone}", evidence=note)

    def _check_shield(self, ctx: DeviceCtx, component: str, now: datetime) -> None:
        since = self.shields.get((ctx.device_id, component))
        if since is None:
            return
        limit = ctx.params.fire.max_shield_s
        if now.timestamp() - since >= limit:
            start = ts_of(since) + timedelta(seconds=limit)
            self.book.assert_(
                ctx,
                "fire.shielded_too_long",
                start,
                "device",
                component=component,
                id_part=component,
                summary=f"{component or '部件'} 屏蔽超过 {limit / 3600:g} h",
                evidence=(Evidence(ts=ts_of(since), metric="code:shielded", value=1.0, note="屏蔽开始"),),
            )

    def tick(self, now: datetime) -> None:
        t = now.timestamp()
        due = self._due
        while due and due[0][0] <= t:
            _, device_id, component = heapq.heappop(due)
            ctx = self.devices.get(device_id)
            if ctx is not None and not self.book.is_active(device_id, "fire.shielded_too_long", component):
                self._check_shield(ctx, component, now)
