"""Rows of the monitor's tables (deploy/sql/020_monitoring.sql) for the 监测系统运行状态 tests, as
the stages, alerting and the watchdog write them, dated by the database's clock (the page's ages
are now() minus these)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["seed_monitor"]

_SQL = """
INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES
  ('cv-gas', '燃气探针', 'gasjson', 'cv-gas'), ('cv-fire', '消防探针', 'gbt26875', 'cv-fire'),
  ('cv-elv', '电梯探针', 'elevator_json', 'cv-elv');
INSERT INTO sites (id, name, address, industry, township_id, village_id, lon, lat) VALUES
  ('SYS', '区应急指挥中心监测系统', '指挥中心', '其他', 'T1', 'V1', 120.15, 30.22);
INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s, is_canary) VALUES
  ('CAN-GAS', 'cv-gas', 'canary', 'gas', 'SYS', 10, true),
  ('CAN-FIRE', 'cv-fire', 'canary', 'fire', 'SYS', 10, true),
  ('CAN-ELV', 'cv-elv', 'canary', 'elevator', 'SYS', 10, true);
INSERT INTO canary_state (device_id, family, seq, published_at, bridged_at, bridge, detected_at, arrived_at,
                          broken_since, broken_hop) VALUES
  ('CAN-GAS', 'gasjson', 41, now() - interval '3.400 s', now() - interval '3.388 s', 'b1',
   now() - interval '3.200 s', now() - interval '3 s', NULL, ''),
  ('CAN-FIRE', 'gbt26875', 7, now() - interval '46 s', now() - interval '45.9 s', 'b1',
   now() - interval '45.5 s', now() - interval '45 s', now() - interval '15 s', 'detect');
INSERT INTO stage_heartbeats (stage, instance, started_at, beat_at, detail) VALUES
  ('canary', 'pub', now() - interval '1 hour', now() - interval '2 s',
   '{"every_s": 10, "mqtt_ok": true, "published": 1200}'),
  ('bridge', 'b1', now() - interval '1 hour', now() - interval '3 s', '{"via": "canary"}'),
  ('bridge', 'b2', now() - interval '1 hour', now() - interval '75 s', '{"via": "canary"}'),
  ('detect', 'node1:100', now() - interval '4 min', now() - interval '50 s', '{"readings": 10}'),
  ('detect', 'node1:200', now() - interval '1 min', now() - interval '3 s',
   '{"lag": {"0": 1000, "1": 234}, "readings": 5000, "events": 3}'),
  ('alerting', 'node2:300', now() - interval '1 hour', now() - interval '20 s', '{"check_s": 5}'),
  ('watchdog', 'w1', now() - interval '1 hour', now() - interval '2 s', '{"poll_s": 5}');
"""

FINDINGS: list[dict[str, Any]] = [
    {"check": "alerting_down", "ok": True, "detail": "正常", "what": "告警服务停止运行"},
    {"check": "sms_unreachable", "ok": False, "detail": "短信接口无法连接：connection refused",
     "what": "短信接口无法连接", "paged": True},
    {"check": "outbox_stuck", "ok": True, "unknown": True, "detail": "无法检查", "what": "报警短信积压未发"},
    {"check": "stage:detect", "ok": True, "detail": "运行中"},
    {"check": "canary:gbt26875", "ok": False, "detail": "探针 45 秒前到达，已报监测链路中断"},
]


async def seed_monitor(conn: Any) -> None:
    await conn.execute(_SQL)
    await conn.execute(
        """INSERT INTO watchdog_state (instance, checked_at, verdict, findings, paging_since, paged_about)
           VALUES ('w1', now() - interval '2 s', 'degraded', $1::jsonb, now() - interval '30 s', '短信接口无法连接')""",
        json.dumps(FINDINGS, ensure_ascii=False))
