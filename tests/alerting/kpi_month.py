"""The scripted month (issue 15's golden figures): a small district's November 2026, with its
October before (环比) and November 2025 a year earlier (同比), written through the product's own
code — the registry import, the detectors' storage for presence, alerting's intake for alarms,
研判/确认/办结 (alerting.lifecycle), 工单 (alerting.workorder_steps), the lift 到场 timer and its
record (alerting.arrival), the hazards ledger (alerting.ledger), and the daily KPI snapshot
(alerting.kpi_snapshot) taken at each day's end as alerting's daily pass does.

:func:`script_month` writes it; :data:`EXPECTED` holds the figures computed by hand (each with
its arithmetic beside it). DOCS and REPLAY import both for their golden checks::

    district = await load_district(pg_dsn, tmp_path)          # the registry
    pool = await asyncpg.create_pool(pg_dsn)
    svc = await month_service(pool, clock)                    # alerting, wired to that district
    expected = await script_month(pool, svc, clock)

The district: 东城街道 (T1: 老王饭店 A1 and 李记面馆 A2 with gas detectors, 安居小区 A3 with a
lift), 西山镇 (T2: 张家菜馆 B1 gas, 幸福商场 B2 fire panel), 南湖街道 (T3: 刘记小吃（南湖店） C1,
gas detector installed 2026-11-16). Gas → 区住房和城乡建设局, lifts → 区市场监督管理局,
fire → 区应急管理局. Vendors: 安可燃气 (the four gas detectors), 联梯物联 (the lift), 消防网联 (the panel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from alerting import ledger
from alerting import lifecycle as lc
from alerting import workorder_steps as wo
from alerting.arrival import ArrivalPolicy, record_arrival, start_timers
from alerting.clock import ManualClock
from alerting.config import load_config
from alerting.flush import flush_due
from alerting.kpi import CST, period_bounds
from alerting.kpi_snapshot import take
from alerting.matrix import resolve
from alerting.notify.console import ConsoleNotifier
from alerting.service import AlertingOptions, AlertingService
from alerting.silence import active_silences
from alerting.workorders import dispatch_options
from detectors.batch import BatchOutput
from detectors.storage import Storage
from hazmon.contracts import Event, EventState, Severity, Verdict, event_id
from hazmon.registry import import_registry

__all__ = ["MONTH", "NOW", "EXPECTED", "Expected", "load_district", "month_service", "script_month"]

ROUTES = Path(__file__).resolve().parents[2] / "data" / "routes.yaml"
MONTH = "2026-11"
START, END = period_bounds(MONTH)
#: the report is made on 1 December, 10:00 China time
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
M = timedelta(minutes=1)

DISTRICT = """
domains:
  - {name: gas, name_zh: 燃气, default_interval_s: 60}
  - {name: elevator, name_zh: 电梯（特种设备）, default_interval_s: 30}
  - {name: fire, name_zh: 消防, default_interval_s: 300}
townships:
  - {id: T1, name: 东城街道, kind: 街道, duty_name: 东城街道应急值班室, duty_phone: '13800000101'}
  - {id: T2, name: 西山镇, kind: 镇, duty_name: 西山镇应急值班室, duty_phone: '13800000102'}
  - {id: T3, name: 南湖街道, kind: 街道, duty_name: 南湖街道应急值班室, duty_phone: '13800000103'}
villages:
  - {id: V1, township_id: T1, name: 东城社区, kind: 社区, grid_member: 张网格,
     grid_member_phone: '13800000201'}
  - {id: V2, township_id: T2, name: 西山村, kind: 村, grid_member: 李网格, grid_member_phone: '13800000202'}
  - {id: V3, township_id: T3, name: 南湖社区, kind: 社区, grid_member: 王网格,
     grid_member_phone: '13800000203'}
departments:
  - {id: zj, name: 区住房和城乡建设局, duty_name: 住建值班, duty_phone: '13800000301'}
  - {id: sj, name: 区市场监督管理局, duty_name: 市监值班, duty_phone: '13800000302'}
  - {id: yj, name: 区应急管理局, duty_name: 应急值班, duty_phone: '13800000303'}
leaders:
  - {id: L1, name: 王副区长, title: 副区长, phone: '13800000401'}
vendors:
  - {id: va, name: 安可燃气安全科技有限公司, adapter: gasjson, mqtt_username: va}
  - {id: vb, name: 联梯物联网科技有限公司, adapter: elevator_json, mqtt_username: vb}
  - {id: vc, name: 消防网联科技有限公司, adapter: gbt26875, mqtt_username: vc}
maintainers:
  - {id: M1, name: 钱江电梯工程有限公司, duty_name: 钱江电梯值班, duty_phone: '13800000501'}
matrix:
  - {id: gas, domain: gas, department_ids: [zj], leader_id: L1, committee: 城市运行安全专委会}
  - {id: elevator, domain: elevator, department_ids: [sj], leader_id: L1, committee: 特种设备安全专委会}
  - {id: fire, domain: fire, department_ids: [yj], leader_id: L1, committee: 消防安全专委会}
sites:
  - {id: A1, name: 老王饭店, address: 东城路1号, industry: 餐饮, township_id: T1, village_id: V1,
     lon: 120.10, lat: 30.10, gas_alarm_required: true,
     contacts: [{name: 老王, role: 主要负责人, phone: '13800001001'}]}
  - {id: A2, name: 李记面馆, address: 东城路2号, industry: 餐饮, township_id: T1, village_id: V1,
     lon: 120.11, lat: 30.10, gas_alarm_required: true,
     contacts: [{name: 李老板, role: 主要负责人, phone: '13800001002'}]}
  - {id: A3, name: 安居小区, address: 东城路3号, industry: 住宅物业, township_id: T1, village_id: V1,
     lon: 120.12, lat: 30.10, contacts: [{name: 物业吴, role: 主要负责人, phone: '13800001003'}]}
  - {id: B1, name: 张家菜馆, address: 西山路1号, industry: 餐饮, township_id: T2, village_id: V2,
     lon: 120.20, lat: 30.20, gas_alarm_required: true,
     contacts: [{name: 张老板, role: 主要负责人, phone: '13800002001'}]}
  - {id: B2, name: 幸福商场, address: 西山路2号, industry: 商场, township_id: T2, village_id: V2,
     lon: 120.21, lat: 30.20, contacts: [{name: 刘经理, role: 主要负责人, phone: '13800002002'}]}
  - {id: C1, name: 刘记小吃（南湖店）, address: 南湖路1号, industry: 餐饮, township_id: T3, village_id: V3,
     lon: 120.30, lat: 30.30, gas_alarm_required: true,
     contacts: [{name: 刘老板, role: 主要负责人, phone: '13800003001'}]}
devices:
  - {id: A1-G, vendor_id: va, model: AG-200, domain: gas, site_id: A1, installed_on: 2025-01-01}
  - {id: A2-G, vendor_id: va, model: AG-200, domain: gas, site_id: A2, installed_on: 2025-01-01}
  - {id: A3-E, vendor_id: vb, model: LL-3, domain: elevator, site_id: A3, installed_on: 2025-01-01,
     maintainer_id: M1}
  - {id: B1-G, vendor_id: va, model: AG-300, domain: gas, site_id: B1, installed_on: 2025-01-01}
  - {id: B2-F, vendor_id: vc, model: FN-1, domain: fire, site_id: B2, installed_on: 2025-01-01}
  - {id: C1-G, vendor_id: va, model: AG-300, domain: gas, site_id: C1, installed_on: 2026-11-16}
"""


@dataclass(frozen=True, slots=True)
class Expected:
    """Hand-computed figures of November 2026 (and what they are compared with)."""

    # 在线全时段: device-days 5 × 30 + C1-G's 15 (installed the 16th) = 165; offline days:
    # A2-G 3 (11th–13th), B1-G 5 (26th–30th), C1-G 5 (16th–20th, never heard) = 13
    online_rate: float = 1 - 13 / 165
    devices: int = 6
    # 安装全覆盖 at 30 November: A1, A2, C1 of A1, A2, B1, C1 (B1-G offline since the 26th)
    sites_required: int = 4
    sites_covered: int = 3
    coverage_rate: float = 3 / 4
    # 报警: 8; 办结 6 (all but the fire fault and C1's unanswered alarm)
    alerts: int = 8
    alerts_closed: int = 6
    closure_rate: float = 6 / 8
    # 研判: real 4 (#1 #3 #5 #6), false 1 (#2), test 1 (#4), fault 1 (#7); 误报率 1 ÷ 7 judged
    real: int = 4
    false: int = 1
    test: int = 1
    fault: int = 1
    false_alarm_rate: float = 1 / 7
    # 确认 (研判 counts as one) 3, 10, 2, 5, 4, 50, 30 minutes → 中位 5, 90% 30 + 0.4 × 20 = 38
    ack_median_s: float = 5 * 60
    ack_p90_s: float = 38 * 60
    # 到场 20, 25, 45, 60 minutes → 中位 35, 90% 45 + 0.7 × 15 = 55.5 minutes
    arrive_median_s: float = 35 * 60
    arrive_p90_s: float = 55.5 * 60
    # 办结用时 of the real alarms 50, 60, 80, 100 minutes (误报 and 测试 not counted) → 70; 94
    close_median_s: float = 70 * 60
    close_p90_s: float = 94 * 60
    # 隐患: 4 found, H1 (struck off) and H3 (rectified) → 50 %; H2 past its 20 November deadline
    hazards_found: int = 4
    hazards_rectified: int = 2
    rectification_rate: float = 2 / 4
    overdue_hazards: int = 1
    # 逾期: #6's lift company late (45 min, limit 30 min); #5's order fed back after its deadline
    overdue_alerts: int = 1
    overdue_orders: int = 1
    # a year earlier (November 2025): 5 devices, B1-G never heard → 1 − 30/150; coverage A1, A2 of
    # A1, A2, B1, C1; 5 alarms, 2 closed; 误报 2 of 4 judged; hazards 1 of 3 rectified
    yoy_online_rate: float = 1 - 30 / 150
    yoy_coverage_rate: float = 2 / 4
    yoy_alerts: int = 5
    yoy_closure_rate: float = 2 / 5
    yoy_false_alarm_rate: float = 2 / 4
    yoy_rectification_rate: float = 1 / 3
    # the month before (October 2026): all 5 devices online; B1, A1, A2 covered, C1 not yet
    mom_online_rate: float = 1.0
    mom_coverage_rate: float = 3 / 4
    mom_alerts: int = 2
    mom_closure_rate: float = 1.0
    # per township: alarms, closed, online rate, coverage, rectification, rank
    township_alerts: tuple[tuple[str, int, int], ...] = (("T1", 4, 4), ("T2", 3, 2), ("T3", 1, 0))
    township_online: tuple[tuple[str, float], ...] = (("T1", 1 - 3 / 90), ("T2", 1 - 5 / 60),
                                                      ("T3", 1 - 5 / 15))
    township_coverage: tuple[tuple[str, float], ...] = (("T1", 1.0), ("T2", 0.0), ("T3", 1.0))
    # score = mean(coverage, online, closure, rectification) − 误报率:
    # T1 (1 + 0.9667 + 1 + 1)/4 − 1/4 = 0.7417; T2 (0 + 0.9167 + 0.6667 + 0)/4 = 0.3958;
    # T3 (1 + 0.6667 + 0 + 0)/4 = 0.4167
    township_rank: tuple[tuple[str, int], ...] = (("T1", 1), ("T3", 2), ("T2", 3))
    # 厂商排名: 联梯 100 % online, no faults; 消防网联 100 %, its panel raised a fault; 安可燃气
    # 1 − 13/105 online, 误报 1 of 3 judged
    vendor_order: tuple[str, ...] = ("vb", "vc", "va")
    va_online_rate: float = 1 - 13 / 105
    va_false_alarm_rate: float = 1 / 3
    vc_fault_rate: float = 1.0


EXPECTED = Expected()


def cst(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=CST).astimezone(UTC)


async def load_district(dsn: str, tmp: Path) -> Path:
    """Import the district through ``hazmon registry import`` (its YAML form)."""
    path = tmp / "kpi_month_district.yaml"
    path.write_text(DISTRICT, encoding="utf-8")
    await import_registry(dsn, path)
    return path


async def month_service(pool: asyncpg.Pool, clock: ManualClock) -> AlertingService:
    """Alerting on the district (routes.yaml as shipped); nothing is sent (no send pass runs)."""
    svc = AlertingService(pool=pool, config=load_config(ROUTES), clock=clock,
                          notifiers={"console": ConsoleNotifier()},
                          options=AlertingOptions(ack_base_url="http://ack.test/a"))
    await svc.start()
    return svc


def _event(kind: str, device: str, site: str, at: datetime, severity: Severity = Severity.RED) -> Event:
    return Event(id=event_id(device, kind, at), kind=kind, domain=kind.split(".")[0], severity=severity,
                 state=EventState.FIRING, device_id=device, site_id=site, starts_at=at, ends_at=None,
                 detected_at=at, summary=kind)


class _Script:
    def __init__(self, pool: asyncpg.Pool, svc: AlertingService, clock: ManualClock) -> None:
        self.pool, self.svc, self.clock = pool, svc, clock

    async def presence(self, changes: dict[str, tuple[str, datetime]]) -> None:
        """Presence transitions as the detectors write them (detectors/storage.py)."""
        async with self.pool.acquire() as conn:
            await Storage(conn).write(BatchOutput(presence=changes))

    async def snapshots(self, first: date, last: date) -> None:
        """The daily pass at each day's end (one minute after midnight, China time)."""
        async with self.pool.acquire() as conn:
            day = first
            while day <= last:
                end = cst(day.year, day.month, day.day) + timedelta(days=1)
                assert (await take(conn, day, now=end + M, source="pass")).taken
                day += timedelta(days=1)

    async def alarm(self, kind: str, device: str, site: str, at: datetime) -> str:
        """An alarm through alerting's intake, flushed (notified) five minutes later."""
        e = _event(kind, device, site, at)
        self.clock.set(at)
        await self.svc.handle_events([e])
        self.clock.set(at + 5 * M)
        async with self.pool.acquire() as conn:
            silences = await active_silences(conn, at + 5 * M)
        await flush_due(self.pool, self.svc._context(), at + 5 * M, silences)
        async with self.pool.acquire() as conn:
            await start_timers(conn, ArrivalPolicy(timedelta(minutes=30)))
        return e.id

    async def resolve(self, kind: str, device: str, site: str, at: datetime, ended: datetime) -> None:
        """The device reports the condition over (the event resolved)."""
        e = _event(kind, device, site, at)
        self.clock.set(ended)
        await self.svc.handle_events([e.model_copy(update={"state": EventState.RESOLVED, "ends_at": ended,
                                                            "detected_at": ended})])

    async def order(self, alert_id: str, site: str, device: str, domain: str, at: datetime,
                    deadline_min: int) -> str:
        options = dispatch_options(resolve(self.svc.registry, site_id=site, domain=domain, device_id=device))
        business = next(u for u in options if u.unit_kind == "business")
        async with self.pool.acquire() as conn:
            res = await wo.dispatch(conn, alert_id, actor="centre1", now=at, picks=[wo.Pick(business)],
                                    deadline_minutes=deadline_min)
        assert res.applied, res.problem
        return res.orders[0]["id"]


async def _verify(conn: asyncpg.Connection, aid: str, at: datetime, verdict: Verdict) -> None:
    r = await lc.verify(conn, aid, actor="centre1", now=at, verdict=verdict, reason="研判")
    assert r.applied, r


async def _close(conn: asyncpg.Connection, aid: str, at: datetime) -> None:
    r = await lc.close(conn, aid, actor="centre1", now=at, reason="办结")
    assert r.applied, r


async def _real_closed(conn: asyncpg.Connection, aid: str, t0: datetime, closed_min: int) -> None:
    await _verify(conn, aid, t0 + 6 * M, Verdict.REAL)
    assert (await lc.dispatch(conn, aid, actor="centre1", now=t0 + 7 * M, units=["属地"])).applied
    assert (await lc.feedback(conn, aid, actor="grid", now=t0 + (closed_min - 1) * M, note="已处置")).applied
    await _close(conn, aid, t0 + closed_min * M)


async def _hazard(conn: asyncpg.Connection, hid: str, site: str, domain: str, found: datetime) -> None:
    await ledger.find_hazard(conn, actor="insp", now=found, site_id=site, domain=domain, title="隐患",
                             hazard_id=hid)


async def _year_ago(s: _Script) -> None:
    """November 2025: A1-G, A2-G, A3-E, B2-F online since October; B1-G never heard."""
    since = cst(2025, 10, 1)
    await s.presence({d: ("online", since) for d in ("A1-G", "A2-G", "A3-E", "B2-F")})
    y1 = await s.alarm("gas.high", "A1-G", "A1", cst(2025, 11, 6, 10))
    y2 = await s.alarm("gas.high", "A2-G", "A2", cst(2025, 11, 10, 10))
    y3 = await s.alarm("fire.alarm", "B2-F", "B2", cst(2025, 11, 15, 10))
    await s.resolve("fire.alarm", "B2-F", "B2", cst(2025, 11, 15, 10), cst(2025, 11, 15, 11))
    y4 = await s.alarm("elevator.trapped", "A3-E", "A3", cst(2025, 11, 20, 10))
    await s.alarm("gas.high", "A1-G", "A1", cst(2025, 11, 25, 10))
    async with s.pool.acquire() as conn:
        await _real_closed(conn, y1, cst(2025, 11, 6, 10), 40)
        await _verify(conn, y2, cst(2025, 11, 10, 10, 5), Verdict.FALSE)
        await _close(conn, y2, cst(2025, 11, 10, 10, 9))
        await _verify(conn, y3, cst(2025, 11, 15, 10, 5), Verdict.FALSE)
        await _verify(conn, y4, cst(2025, 11, 20, 10, 5), Verdict.REAL)
        await _hazard(conn, "YH1", "A1", "gas", cst(2025, 11, 3, 9))
        await _hazard(conn, "YH2", "B1", "gas", cst(2025, 11, 8, 9))
        await _hazard(conn, "YH3", "B2", "fire", cst(2025, 11, 12, 9))
        await ledger.register_hazard(conn, "YH1", actor="insp", now=cst(2025, 11, 4, 9), reason="入账")
        await ledger.rectify_hazard(conn, "YH1", actor="owner", now=cst(2025, 11, 9, 9), reason="整改")
    await s.snapshots(date(2025, 11, 1), date(2025, 11, 30))


async def _october(s: _Script) -> None:
    """October 2026: B1-G heard from the 1st; every device online; two alarms, both closed."""
    await s.presence({"B1-G": ("online", cst(2026, 10, 1))})
    o1 = await s.alarm("gas.high", "A1-G", "A1", cst(2026, 10, 10, 10))
    o2 = await s.alarm("fire.alarm", "B2-F", "B2", cst(2026, 10, 20, 10))
    async with s.pool.acquire() as conn:
        await _real_closed(conn, o1, cst(2026, 10, 10, 10), 30)
        await _real_closed(conn, o2, cst(2026, 10, 20, 10), 30)
        await _hazard(conn, "OH1", "A2", "gas", cst(2026, 10, 5, 9))
        await ledger.register_hazard(conn, "OH1", actor="insp", now=cst(2026, 10, 6, 9), reason="入账")
        await ledger.rectify_hazard(conn, "OH1", actor="owner", now=cst(2026, 10, 12, 9), reason="整改")
    await s.resolve("fire.alarm", "B2-F", "B2", cst(2026, 10, 20, 10), cst(2026, 10, 20, 11))
    await s.snapshots(date(2026, 10, 1), date(2026, 10, 31))


async def _november(s: _Script) -> None:
    """November 2026, day by day where the state changes, each day snapshotted at its end."""
    pool = s.pool
    await s.snapshots(date(2026, 11, 1), date(2026, 11, 2))
    # 1 老王饭店 gas, 3 Nov 10:00: 确认 +3, 研判 real, 工单 (60 min) 到场 +20, 反馈 +40, 审核 +50 → 办结
    t1 = cst(2026, 11, 3, 10)
    a1 = await s.alarm("gas.high", "A1-G", "A1", t1)
    async with pool.acquire() as conn:
        assert (await lc.acknowledge(conn, a1, actor="老王", now=t1 + 3 * M)).applied
        await _verify(conn, a1, t1 + 5 * M, Verdict.REAL)
    o1 = await s.order(a1, "A1", "A1-G", "gas", t1 + 6 * M, 60)
    async with pool.acquire() as conn:
        assert (await wo.accept(conn, o1, actor="老王", now=t1 + 8 * M)).applied
        assert (await wo.arrive(conn, o1, actor="老王", now=t1 + 20 * M)).applied
        assert (await wo.feedback(conn, o1, actor="老王", now=t1 + 40 * M, note="已关阀通风")).applied
        assert (await wo.approve(conn, o1, actor="centre1", now=t1 + 50 * M, reason="real")).applied
        await _hazard(conn, "H1", "A1", "gas", cst(2026, 11, 4, 9))
    await s.snapshots(date(2026, 11, 3), date(2026, 11, 4))
    # 2 李记面馆 gas, 5 Nov 14:00: 确认 +10, 研判 误报 +12, 办结 +15
    t2 = cst(2026, 11, 5, 14)
    a2 = await s.alarm("gas.high", "A2-G", "A2", t2)
    async with pool.acquire() as conn:
        assert (await lc.acknowledge(conn, a2, actor="李老板", now=t2 + 10 * M)).applied
        await _verify(conn, a2, t2 + 12 * M, Verdict.FALSE)
        await _close(conn, a2, t2 + 15 * M)
    await s.snapshots(date(2026, 11, 5), date(2026, 11, 7))
    # 3 安居小区 trapped, 8 Nov 09:00: 确认 +2, 维保到场 +25 (limit 30 from the notice at +5), real, 办结 +60
    t3 = cst(2026, 11, 8, 9)
    a3 = await s.alarm("elevator.trapped", "A3-E", "A3", t3)
    async with pool.acquire() as conn:
        assert (await lc.acknowledge(conn, a3, actor="物业吴", now=t3 + 2 * M)).applied
        assert (await record_arrival(conn, a3, actor="centre1", now=t3 + 25 * M)).applied
        await _verify(conn, a3, t3 + 30 * M, Verdict.REAL)
        assert (await lc.dispatch(conn, a3, actor="centre1", now=t3 + 31 * M, units=["维保单位"])).applied
        assert (await lc.feedback(conn, a3, actor="维保", now=t3 + 55 * M, note="已救出")).applied
        await _close(conn, a3, t3 + 60 * M)
        # H2 幸福商场 fire, found 9 Nov, registered with a deadline of 20 Nov, never rectified
        await _hazard(conn, "H2", "B2", "fire", cst(2026, 11, 9, 9))
        await ledger.register_hazard(conn, "H2", actor="insp", now=cst(2026, 11, 9, 10), reason="入账")
        await ledger.supervise_hazard(conn, "H2", actor="yj", now=cst(2026, 11, 9, 11),
                                      deadline=cst(2026, 11, 20, 18), supervisor="区应急管理局",
                                      reason="挂牌督办", owner="刘经理", measures="更换喷淋", funds="自筹",
                                      plan="应急预案")
        await ledger.register_hazard(conn, "H1", actor="insp", now=cst(2026, 11, 5, 9), reason="入账")
        await ledger.rectify_hazard(conn, "H1", actor="owner", now=cst(2026, 11, 10, 9), reason="整改")
    await s.snapshots(date(2026, 11, 8), date(2026, 11, 10))
    # A2-G offline 11–13 Nov
    await s.presence({"A2-G": ("offline", cst(2026, 11, 11))})
    # 4 幸福商场 fire, 12 Nov 20:00: 研判 测试 +5, 办结 +8
    t4 = cst(2026, 11, 12, 20)
    a4 = await s.alarm("fire.alarm", "B2-F", "B2", t4)
    async with pool.acquire() as conn:
        await _verify(conn, a4, t4 + 5 * M, Verdict.TEST)
        await _close(conn, a4, t4 + 8 * M)
    # the test over, the panel reports it (a firing fire alarm would inhibit the panel's faults)
    await s.resolve("fire.alarm", "B2-F", "B2", t4, t4 + 10 * M)
    await s.snapshots(date(2026, 11, 11), date(2026, 11, 13))
    await s.presence({"A2-G": ("online", cst(2026, 11, 14))})
    async with pool.acquire() as conn:
        await _hazard(conn, "H3", "A3", "elevator", cst(2026, 11, 14, 9))
        await ledger.strike_off_hazard(conn, "H1", actor="zj", now=cst(2026, 11, 15, 9), reason="销号")
    await s.snapshots(date(2026, 11, 14), date(2026, 11, 17))
    # 5 张家菜馆 gas, 18 Nov 11:00: 确认 +4, real +6, 工单 30 min, 到场 +60, 反馈 +90 (late), 审核 +100
    t5 = cst(2026, 11, 18, 11)
    a5 = await s.alarm("gas.high", "B1-G", "B1", t5)
    async with pool.acquire() as conn:
        assert (await lc.acknowledge(conn, a5, actor="张老板", now=t5 + 4 * M)).applied
        await _verify(conn, a5, t5 + 6 * M, Verdict.REAL)
    o5 = await s.order(a5, "B1", "B1-G", "gas", t5 + 7 * M, 30)
    async with pool.acquire() as conn:
        assert (await wo.accept(conn, o5, actor="张老板", now=t5 + 9 * M)).applied
        assert (await wo.arrive(conn, o5, actor="张老板", now=t5 + 60 * M)).applied
        assert (await wo.feedback(conn, o5, actor="张老板", now=t5 + 90 * M, note="已更换软管")).applied
        assert (await wo.approve(conn, o5, actor="centre1", now=t5 + 100 * M, reason="real")).applied
    await s.snapshots(date(2026, 11, 18), date(2026, 11, 20))
    # C1-G (installed the 16th) first heard on the 21st
    await s.presence({"C1-G": ("online", cst(2026, 11, 21))})
    await s.snapshots(date(2026, 11, 21), date(2026, 11, 21))
    # 6 安居小区 trapped, 22 Nov 15:00: 维保到场 +45 (late), 确认 via 研判 +50, 办结 +80
    t6 = cst(2026, 11, 22, 15)
    a6 = await s.alarm("elevator.trapped", "A3-E", "A3", t6)
    async with pool.acquire() as conn:
        assert (await record_arrival(conn, a6, actor="centre1", now=t6 + 45 * M)).applied
        await _verify(conn, a6, t6 + 50 * M, Verdict.REAL)
        assert (await lc.dispatch(conn, a6, actor="centre1", now=t6 + 51 * M, units=["维保单位"])).applied
        assert (await lc.feedback(conn, a6, actor="维保", now=t6 + 79 * M, note="已救出")).applied
        await _close(conn, a6, t6 + 80 * M)
    await s.snapshots(date(2026, 11, 22), date(2026, 11, 24))
    # 7 幸福商场 fire.fault, 25 Nov 08:00: 研判 故障 +30, not closed
    t7 = cst(2026, 11, 25, 8)
    a7 = await s.alarm("fire.fault", "B2-F", "B2", t7)
    async with pool.acquire() as conn:
        await _verify(conn, a7, t7 + 30 * M, Verdict.FAULT)
        await ledger.register_hazard(conn, "H3", actor="insp", now=cst(2026, 11, 15, 9), reason="入账")
        await ledger.rectify_hazard(conn, "H3", actor="owner", now=cst(2026, 11, 25, 9), reason="整改")
    await s.snapshots(date(2026, 11, 25), date(2026, 11, 25))
    # B1-G offline from the 26th to the end
    await s.presence({"B1-G": ("offline", cst(2026, 11, 26))})
    async with pool.acquire() as conn:
        await _hazard(conn, "H4", "C1", "gas", cst(2026, 11, 27, 9))
    # 8 刘记小吃 gas, 28 Nov 19:00: nobody answers
    await s.alarm("gas.high", "C1-G", "C1", cst(2026, 11, 28, 19))
    await s.snapshots(date(2026, 11, 26), date(2026, 11, 30))


async def script_month(pool: asyncpg.Pool, svc: AlertingService, clock: ManualClock) -> Expected:
    """Write the year-ago month, October and November 2026 (in time order) and return the
    hand-computed figures; afterwards the clock stands at :data:`NOW`."""
    s = _Script(pool, svc, clock)
    await _year_ago(s)
    await _october(s)
    await _november(s)
    clock.set(NOW)
    return EXPECTED
