"""Alerting watches the watchdog (issue 20 item 2): the pair has no single point that fails
silently.

``hazmon watchdog`` pages the duty operator when alerting is down; alerting, in turn, raises
**看门狗心跳中断** when a watchdog's heartbeat (its ``stage_heartbeats`` row, stage
``watchdog``) is older than the ``alarm_after_s`` the watchdog wrote into it (default 30 s), and
resolves it — the 恢复 notice — when the heartbeat moves again. Red, as Prometheus's
HazmonStageDown: the safety net is gone (if alerting fails now, nobody is paged), and a red
alarm is never held back by the per-phone limit; routes.yaml sends it to the duty desk
(``watchdog-heartbeat``, with ``send_resolved``). The alarm is an ordinary event
through alerting's own path (:meth:`~alerting.service.AlertingService.handle_events`): domain
``system``, site ``区应急指挥中心监测系统`` (no registry site: the 值班员 receives it, as
Prometheus's alerts), part ``主机<instance>`` (``watchdog.instance`` is the host name unless set:
the engineer's where), so the operators' routes, silences and grouping apply; its text says what
to do (templates/system.py: 看门狗进程停止：请检查值守看门狗服务并重启…). Its id is a digest
of the instance and the last beat, so a restarted alerting raises nothing twice.

A watchdog taken out of service: delete its row (``DELETE FROM stage_heartbeats WHERE stage =
'watchdog' AND instance = '…'``); its open alarm is then resolved. What this cannot see: both
down at once — docs/operations.md, *What remains*.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from alerting import metrics
from alerting.store import selfwatch as store
from hazmon.contracts import Event, EventState, Severity
from hazmon.logs import kv

if TYPE_CHECKING:
    from alerting.service import AlertingService

__all__ = ["KIND", "DEVICE", "SITE", "ALARM_AFTER_S", "EVERY_S", "events_due", "check", "run"]

log = logging.getLogger(__name__)

KIND = "system.watchdog_heartbeat_lost"
DEVICE = "watchdog"
SITE = "区应急指挥中心监测系统"  # as alerting.am_receiver.SYSTEM_SITE: the centre's own system
#: the threshold when the watchdog's heartbeat does not carry its own ``alarm_after_s``
ALARM_AFTER_S = 30.0
#: how often the heartbeats are read
EVERY_S = 5.0


def _alarm_after(detail: Any) -> float:
    try:
        value = float(json.loads(detail or "{}").get("alarm_after_s", ALARM_AFTER_S))
    except (ValueError, TypeError, AttributeError):
        return ALARM_AFTER_S
    return value if value > 0 else ALARM_AFTER_S


def _event(instance: str, starts_at: datetime, now: datetime, *, resolved: bool, summary: str, eid: str = ""
           ) -> Event:
    eid = eid or "wdhb-" + hashlib.sha256(f"{instance}|{starts_at.isoformat()}".encode()).hexdigest()[:32]
    return Event(id=eid, kind=KIND, domain="system", severity=Severity.RED,
                 state=EventState.RESOLVED if resolved else EventState.FIRING, device_id=DEVICE, site_id=SITE,
                 component=f"主机{instance}" if instance else "看门狗", starts_at=starts_at,
                 ends_at=now if resolved else None, detected_at=now,
                 summary=summary, labels={"instance": instance, "alertname": "HazmonWatchdogHeartbeatLost",
                                          "source": "selfwatch"})


def events_due(beats: list[dict[str, Any]], open_alerts: list[dict[str, Any]], now: datetime) -> list[Event]:
    """Pure: a firing event per silent instance without an open alarm, a resolved one per open
    alarm whose instance beats again (or whose row was deleted)."""
    open_by = {a["instance"]: a for a in open_alerts}
    out: list[Event] = []
    for b in beats:
        inst, age, after = b["instance"], float(b["age_s"]), _alarm_after(b.get("detail"))
        alert = open_by.pop(inst, None)
        if age > after and alert is None:
            out.append(_event(inst, b["beat_at"], now, resolved=False, summary="看门狗心跳中断"))
        elif age <= after and alert is not None:
            out.append(_event(inst, alert["starts_at"], now, resolved=True, eid=alert["id"],
                              summary="看门狗心跳中断"))
    for inst, alert in open_by.items():  # its row deleted: taken out of service
        out.append(_event(inst or "", alert["starts_at"], now, resolved=True, eid=alert["id"],
                          summary="看门狗心跳中断（已停用）"))
    return out


async def check(svc: AlertingService, now: datetime) -> list[str]:
    """One look at the heartbeats; what each raised or resolved event did (``handle_events``)."""
    async with svc.pool.acquire() as conn:
        beats = await store.watchdog_beats(conn)
        open_alerts = await store.open_watchdog_alerts(conn, KIND)
    events = events_due(beats, open_alerts, now)
    if not events:
        return []
    for ev in events:
        log.warning("selfwatch %s %s", ev.state.value, kv(instance=ev.labels.get("instance", ""), alert=ev.id))
    return await svc.handle_events(events)


async def run(svc: AlertingService, stop: asyncio.Event, every_s: float = EVERY_S) -> None:
    """:func:`check` every ``every_s`` until ``stop`` (a loop of :meth:`AlertingService.run`)."""
    while not stop.is_set():
        try:
            await check(svc, svc.clock.now())
        except Exception:  # noqa: BLE001 - the database may be down: the watchdog pages for that
            metrics.ERRORS.labels("selfwatch").inc()
            log.exception("selfwatch pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
