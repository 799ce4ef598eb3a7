"""All domains: device offline / back online (在线全时段).

One judge per episode. The ingest bridge's presence tracker sees every MQTT message
(readings, heartbeats, LWT) and knows each device's expected interval from the registry, so
it decides when a device is silent and publishes the transition on the status topic
(``DeviceStatus.state`` offline/online, reason ``lwt``/``silence``/``heartbeat``/``data``).
This module turns those transitions into ``device.offline`` episodes: firing at the offline
transition's time, resolved at the next online one. The detector does not judge silence a
second time from its own last-seen clock: two judges would start two episodes with different
start times (two ids) for one outage, and the detector does not see heartbeats that never
reach the readings topic. Transitions older than the last one applied are ignored (a late
"online" must not end a newer outage).
"""

from __future__ import annotations

from hazmon.contracts import DeviceStatus, Evidence, PresenceState

from .state import DeviceCtx, EpisodeBook

__all__ = ["OfflineDetector"]

KIND = "device.offline"


class OfflineDetector:
    def __init__(self, book: EpisodeBook) -> None:
        self.book = book
        self._last: dict[str, float] = {}

    def on_status(self, ctx: DeviceCtx, st: DeviceStatus) -> bool:
        """Apply one status record; False when it was stale (older than the last applied)."""
        if st.state is None:
            return True  # battery/signal report only
        t = st.ts.timestamp()
        if t < self._last.get(ctx.device_id, float("-inf")):
            return False
        self._last[ctx.device_id] = t
        note = (Evidence(ts=st.ts, metric="presence", value=1.0 if st.state is PresenceState.ONLINE else 0.0,
                         note=st.reason),)
        if st.state is PresenceState.OFFLINE:
            why = {"lwt": "MQTT 遗嘱消息 (连接断开)", "silence": "超过预期上报周期无数据",
                   "heartbeat": "心跳超时"}.get(st.reason, st.reason)
            self.book.assert_(ctx, KIND, st.ts, "presence", summary=f"设备离线: {why}", evidence=note)
        else:
            self.book.retract(ctx, KIND, None, st.ts, evidence=note)
        return True
