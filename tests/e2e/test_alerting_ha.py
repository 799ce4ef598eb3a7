"""Alerting HA (issue 22, item 5): two ``hazmon alerting`` instances and two consoles on one
database; a storm of fire alarms; one alerting instance killed -9 mid-storm and restarted.

What must hold, counted at the SMS gateway simulator and in the database:

* every alarm is one alert and each phone the responsibility matrix names gets exactly one alarm
  SMS (one outbox id), none missing — the duplicates Alertmanager's users report of an HA pair
  (prometheus/alertmanager#2222, #4108: each instance notifying on its own) cannot happen,
  because the instances share one outbox and claim its rows with ``FOR UPDATE SKIP LOCKED``;
* the gateway is asked to send an outbox id twice only for rows the killed instance had in
  flight (bounded by its claimed batch; the webhook contract has the gateway drop a repeated
  id) — and never because the *surviving* or the *restarted* instance took a row its peer was
  still sending (``claimed_by``: a restarted instance frees only its own and stale claims);
* the 四单 ladder (6 s and 12 s in routes_ha.yaml) issues each level once per alert, with one
  escalation transition each, though both instances run the escalation timer;
* both consoles show the same alerts to one session (sessions live in the database).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmon.procs import HazmonProcess
from hazmon.stack import free_port
from sim.harness import PipelineProcesses, alarm_outcome, fire_alarm_message, http_json, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]

ROUTES_HA = Path(__file__).with_name("routes_ha.yaml")
STORM = 60  # fire alarms, one per panel


class _Stage(HazmonProcess):
    def ready(self) -> bool:
        try:
            return bool(self.metrics_text())
        except OSError:
            return False


class _Console(HazmonProcess):
    def __init__(self, name: str, run_dir: Path, env: dict[str, str]) -> None:
        self.http_port = free_port()
        super().__init__(name, ["console", "--host", "127.0.0.1", "--port", str(self.http_port)], run_dir, env)

    def ready(self) -> bool:
        try:
            return bool(http_json(f"http://127.0.0.1:{self.http_port}/api/healthz", timeout=1))
        except OSError:
            return False


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineProcesses]:
    p = PipelineProcesses(tmp_path_factory.mktemp("ha"), routes_file=ROUTES_HA, fleet=0, bridges=1,
                          extra_env={"HAZMON_ALERTING__INSTANCE": "alerting-a"})
    p.start()
    try:
        stage_dir = p.run_dir / "stages"
        env_b = {**p.env(), "HAZMON_ALERTING__INSTANCE": "alerting-b"}
        p.stages["alerting-b"] = _Stage(
            "alerting-b", ["alerting", "--routes", str(ROUTES_HA), "--http-port", str(free_port()),
                           "--tick", str(p.alerting_tick_s)], stage_dir, env_b)
        for name in ("console-a", "console-b"):
            p.stages[name] = _Console(name, stage_dir, p.env())
        for name in ("alerting-b", "console-a", "console-b"):
            p.stages[name].start()
        yield p
    finally:
        p.stop()


async def _panels(p: PipelineProcesses) -> list[str]:
    rows = await p.fetch(
        """SELECT d.id FROM devices d JOIN sites s ON s.id = d.site_id
           WHERE d.vendor_id = 'firenet' AND d.parent_id IS NULL ORDER BY d.id""")
    return [r["id"] for r in rows]


def _publish_storm(p: PipelineProcesses, panels: list[str], kill_after: int) -> tuple[float, float]:
    """Publish one fire alarm per panel (QoS 1, about 10 a second); kill -9 ``alerting`` after
    ``kill_after`` of them and start it again at once, while the storm goes on and its peer is
    sending (its start-up recovery must leave the peer's claims alone). Returns (killed, up)."""
    import threading

    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ha-storm-{time.time_ns()}")
    c.username_pw_set("hazmon-sim", p.mqtt.users["hazmon-sim"])
    c.connect(p.mqtt.host, p.mqtt.port)
    c.loop_start()
    times = [0.0, 0.0]

    def restart() -> None:
        p.component("alerting").start()
        times[1] = time.time()

    restarter = threading.Thread(target=restart)
    try:
        for i, panel in enumerate(panels):
            topic, payload = fire_alarm_message(panel)
            c.publish(topic, payload, qos=1).wait_for_publish(10)
            if i == kill_after:
                p.component("alerting").kill()
                times[0] = time.time()
                restarter.start()
            time.sleep(0.1)
    finally:
        restarter.join(90)
        c.loop_stop()
        c.disconnect()
    return times[0], times[1]


async def _centre_user(p: PipelineProcesses) -> tuple[str, str]:
    from console.scope import Role
    from console.users import NewUser, create_user

    conn = await p.connect()
    try:
        await create_user(conn, NewUser("ha-centre", "ha-centre-pass-1", Role.CENTRE), actor="test")
    finally:
        await conn.close()
    return "ha-centre", "ha-centre-pass-1"


def _login(port: int, username: str, password: str) -> str:
    """A bearer token from console ``port`` (the session row lives in the database)."""
    body = json.dumps({"username": username, "password": password}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/login", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.loads(resp.read())["token"])


def _alert_ids(port: int, token: str) -> set[str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/alerts?page_size=500",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = json.loads(resp.read())
    return {a["id"] for a in data["items"]}


async def test_two_alerting_instances_one_killed_mid_storm_no_double_no_miss(ha: PipelineProcesses) -> None:
    p = ha
    panels = (await _panels(p))[:STORM]
    assert len(panels) == STORM, f"the sample district has {len(panels)} fire panels"
    t_kill, t_up = await asyncio.to_thread(_publish_storm, p, panels, STORM // 6)

    out: dict = {}

    async def all_sent() -> bool:
        nonlocal out
        out = await alarm_outcome(p, panels)
        if len({e["device_id"] for e in out["events"]}) < len(panels):
            return False
        return all(set(out["sent"].get(a, {})) >= phones for a, phones in out["expected"].items())

    await wait_until(all_sent, 60, 0.5, "every alarm's SMS sent")
    t_done = time.time()
    # let both 四单 levels (6 s, 12 s after each alarm) come due and be issued
    await asyncio.sleep(16.0)
    out = await alarm_outcome(p, panels)

    # one alert per panel, each phone of the matrix one alarm SMS (one outbox id)
    per_panel = Counter(e["device_id"] for e in out["events"])
    assert all(n == 1 for n in per_panel.values()) and len(per_panel) == STORM, per_panel
    for alert_id, phones in out["expected"].items():
        assert phones, f"alert {alert_id}: the matrix names nobody"
        got = out["sent"].get(alert_id, {})
        assert set(got) == phones, f"alert {alert_id}: SMS to {sorted(got)}, expected {sorted(phones)}"
    ids = [e["id"] for e in out["events"]]
    notes = await p.fetch(
        """SELECT n.alert_id, n.recipient_phone, n.template, count(*) AS n FROM notifications n
           WHERE n.alert_id = ANY($1::text[]) AND n.channel = 'sms'
           GROUP BY 1, 2, 3 HAVING count(*) > 1""", ids)
    assert not notes, f"an alert's phone got two messages of one template: {[dict(r) for r in notes][:5]}"

    # the gateway: how often was an id asked twice? only rows the killed instance had in flight
    requests = Counter(m["client_ref"] for m in out["sms"])
    resent = {k: v for k, v in requests.items() if v > 1}
    claimed_by_dead = await p.fetch(
        "SELECT count(*) AS n FROM notifications WHERE alert_id = ANY($1::text[]) AND sent_at IS NOT NULL", ids)
    print(f"[ha] storm of {STORM}: alerting-a killed, up again {t_up - t_kill:.1f} s later; every alarm SMS out "
          f"{t_done - t_kill:.1f} s after the kill; {sum(requests.values())} requests for {len(requests)} ids, "
          f"{len(resent)} ids asked twice; {claimed_by_dead[0]['n']} SMS rows sent")
    assert len(resent) <= 32, f"{len(resent)} ids sent twice (more than the killed instance had in flight)"

    # the 四单 ladder: each level once per alert, one escalation transition each
    levels = await p.fetch(
        "SELECT alert_id, level, count(*) AS n FROM notices WHERE alert_id = ANY($1::text[]) GROUP BY 1, 2", ids)
    issued = Counter((r["alert_id"], r["level"]) for r in levels)
    assert issued, "no 四单 issued within the test (routes_ha.yaml: 6 s and 12 s)"
    esc = await p.fetch(
        """SELECT alert_id, reason, count(*) AS n FROM alert_transitions
           WHERE alert_id = ANY($1::text[]) AND action = 'escalate' AND outcome = 'applied'
           GROUP BY 1, 2 HAVING count(*) > 1""", ids)
    assert not esc, f"an escalation step applied twice: {[dict(r) for r in esc][:5]}"
    per_level = Counter(r["level"] for r in levels)
    print(f"[ha] 四单 issued: {dict(per_level)}")

    # two consoles, one session: the same alerts on both
    a, b = p.stages["console-a"], p.stages["console-b"]
    user, password = await _centre_user(p)
    token = await asyncio.to_thread(_login, a.http_port, user, password)  # type: ignore[attr-defined]
    on_a = await asyncio.to_thread(_alert_ids, a.http_port, token)  # type: ignore[attr-defined]
    on_b = await asyncio.to_thread(_alert_ids, b.http_port, token)  # type: ignore[attr-defined]
    assert set(ids) <= on_a and on_a == on_b
