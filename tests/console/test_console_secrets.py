"""What the alert page shows of the messages sent: a recipient's acknowledgement link is a bearer
credential (whoever opens it acknowledges as that recipient), so no role reads its token in the
console; numbers in the timeline's details are masked like every other number."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "kWrVXui5N-AyN2_y4juL9g"


async def test_alert_detail_hides_link_tokens_and_masks_numbers_in_details(api):
    alert_id = api.seeded.alerts["gas_s1"]
    now = datetime.now(UTC)
    async with api.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO notifications (id, alert_id, channel, recipient_role, recipient_name, recipient_phone, rule,
                   template, body, status, next_attempt_at, created_at, updated_at)
               VALUES ('n-secret', $1, 'sms', 'grid_member', '戴洋', '13900001111', 'village:V1:grid_member',
                   'alarm', $2, 'sent', $3, $3, $3)""",
            alert_id, f"老王饭店燃气探测器发生可燃气体浓度超高限报警。回复123456确认，或点 https://ack.example/ack/{TOKEN}", now)
        version = await conn.fetchval("SELECT version FROM alerts WHERE id = $1", alert_id)
        await conn.execute(
            """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, detail, version)
               VALUES ($1, 'notify', 'alarm', 'alarm', 'system', $2, $3::jsonb, $4)""",
            alert_id, now, json.dumps({"recipients": [{"role": "grid_member", "phone": "13900001111"}]}), version)
    for user, phone in (("centre1", "13900001111"), ("biz-s1", "139****1111")):
        r = await api.client.get(f"/api/alerts/{alert_id}", headers=api.auth(user))
        assert r.status_code == 200, r.text
        detail = r.json()
        assert TOKEN not in r.text, user
        body = next(n["body"] for n in detail["notifications"] if n["id"] == "n-secret")
        assert body.endswith("https://ack.example/ack/••••") and "回复123456确认" in body
        notify = [t for t in detail["transitions"] if t["action"] == "notify"][-1]
        assert notify["detail"]["recipients"][0]["phone"] == phone, user
