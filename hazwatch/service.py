"""``hazmon watchdog``: one loop, every ``watchdog.poll_s`` — check, decide, page, record.

1. **check** (:mod:`hazwatch.checks`): the stages' health endpoints, the SMS provider's API and
   one round on the database (write probe = the watchdog's heartbeat; the outbox, the SMS
   attempts, the canaries, the stages' heartbeats);
2. **decide** (:mod:`hazwatch.incidents`): observations → pages and 恢复, once per incident;
3. **page** (:mod:`hazwatch.pager`): SMS and a call to the duty operator, each on its own;
4. **record**: ``watchdog_state`` (what it checked, its verdict, what it has paged), its
   ``stage_heartbeats`` row (stage ``watchdog``, which alerting watches: alerting/selfwatch.py)
   and ``GET /healthz`` on ``watchdog.http_port``, the 心跳 URL an external check polls.

Nothing here needs Kafka or alerting's process: the watchdog pages when they are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Gauge

from alerting.notify.base import Notifier
from hazmon.logs import kv
from hazwatch.checks import DbRound, database_round, probe_endpoints, probe_provider
from hazwatch.incidents import Incidents, Observation, Page
from hazwatch.pager import Pager
from hazwatch.texts import PROBLEMS

if TYPE_CHECKING:
    from hazmon.settings import Settings
    from hazmon.settings_watchdog import WatchdogSettings

__all__ = ["Watchdog", "Finding", "observe", "build"]

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per probe, every round

ROUND_AT = Gauge("hazmon_watchdog_round_timestamp_seconds", "Unix time the watchdog's last round of checks ended")
OPEN = Gauge("hazmon_watchdog_open_incidents", "Incidents the watchdog has paged and not yet seen recovered")
_VERDICT_CODE = {"ok": 0, "degraded": 1, "down": 2}
#: how often the SMS provider's API is probed while it answers
PROVIDER_EVERY_S = 30.0
VERDICT = Gauge("hazmon_watchdog_verdict", "The watchdog's verdict: 0 ok, 1 degraded, 2 down")


def _finding(check: str, ok: bool, detail: str = "", **extra: Any) -> dict[str, Any]:
    return {"check": check, "ok": ok, "detail": detail, **extra}


Finding = dict[str, Any]


def observe(cfg: WatchdogSettings, endpoints: dict[str, str], provider_error: str, db: DbRound
            ) -> tuple[list[Observation], list[Finding]]:
    """One round's results as observations of the pageable problems, plus what is only reported
    (a stage other than alerting, a stale heartbeat, the canaries' ages)."""
    obs: list[Observation] = []
    info: list[Finding] = []
    alerting = {n: e for n, e in endpoints.items() if n.startswith("alerting")}
    for name, err in sorted(endpoints.items()):
        if name not in alerting:
            info.append(_finding(f"stage:{name}", not err, f"健康端点无响应：{err}" if err else "运行中"))
    hb = db.heartbeats
    if alerting:
        down = all(alerting.values())
        obs.append(Observation("alerting_down", down, "；".join(f"{n} 健康端点无响应：{e}" for n, e in alerting.items() if e)))
    elif hb is not None and any(s == "alerting" for s, _ in hb):
        ages = [a for (s, _), a in hb.items() if s == "alerting"]
        obs.append(Observation("alerting_down", min(ages) > cfg.heartbeat_stale_s,
                               f"告警服务心跳已 {min(ages):.0f} 秒未更新"))
    else:
        obs.append(Observation("alerting_down", None, "未配置告警服务健康端点（watchdog.stages）"))
    obs.append(Observation("db_unreachable", not db.reachable, f"数据库无法连接：{db.error}" if not db.reachable else ""))
    obs.append(Observation("db_refuses_writes", db.writable is False if db.reachable else None,
                           f"数据库拒绝写入：{db.write_error}" if db.writable is False else ""))
    obs.append(Observation("sms_unreachable", bool(provider_error),
                           f"短信接口无法连接：{provider_error}" if provider_error else ""))
    n = db.sms_failures
    obs.append(Observation("sms_failing", None if n is None else n >= cfg.sms_failures,
                           f"告警服务的短信连续 {n} 次发送失败：{db.sms_error[:160]}" if n else ""))
    overdue = db.outbox_overdue_s
    stuck = overdue is not None and overdue > cfg.outbox_stuck_s
    obs.append(Observation("outbox_stuck", None if db.heartbeats is None else stuck,
                           f"最早一条待发消息已逾期 {overdue:.0f} 秒未发出" if stuck and overdue else ""))
    if db.canaries is None:
        obs.append(Observation("canary_broken", None))
    else:
        silent = [c for c in db.canaries if c.age_s > cfg.canary_stale_s and not c.said]
        obs.append(Observation("canary_broken", bool(silent), "；".join(
            f"{c.family} 探针已 {c.age_s:.0f} 秒未到达，告警服务未报监测链路中断" for c in silent)))
        info.extend(_finding(f"canary:{c.family}", c.age_s <= cfg.canary_stale_s,
                             f"探针 {c.age_s:.0f} 秒前到达" + ("，已报监测链路中断" if c.said else ""))
                    for c in db.canaries)
        if not db.canaries:
            info.append(_finding("canary", True, "未配置探针设备"))
    info.extend(_heartbeats(hb or {}, cfg.heartbeat_stale_s))
    return obs, info


def _heartbeats(hb: dict[tuple[str, str], float], stale_s: float) -> list[Finding]:
    """Every fresh heartbeat, and of a stage with none fresh its latest: a restarted process
    is a new instance (``host:pid``, hazmon/heartbeat.py), its predecessor's row no finding."""
    out = []
    for stage in sorted({s for s, _ in hb}):
        rows = sorted((age, inst) for (s, inst), age in hb.items() if s == stage)
        fresh = [(age, inst) for age, inst in rows if age <= stale_s] or rows[:1]
        out += [_finding(f"heartbeat:{stage}/{inst}", age <= stale_s, f"心跳 {age:.0f} 秒前") for age, inst in fresh]
    return out


class Watchdog:
    def __init__(self, cfg: WatchdogSettings, *, dsn: str, sms_url: str, instance: str, pager: Pager) -> None:
        self.cfg, self.dsn, self.sms_url, self.instance, self.pager = cfg, dsn, sms_url, instance, pager
        self.incidents = Incidents(confirm=timedelta(seconds=cfg.confirm_s), clear=timedelta(seconds=cfg.clear_s))
        self.started_at = datetime.now(UTC)
        self.verdict = "ok"
        self.findings: list[Finding] = []
        self.observations: list[Observation] = []
        self.last_round = 0.0  # time.monotonic() of the last completed round
        self.rounds = 0
        self._restored = False
        self._client = httpx.AsyncClient(timeout=cfg.timeout_s, follow_redirects=False)
        self._provider: tuple[float, str] = (-1e9, "")  # (time.monotonic(), result) of the last probe

    # --- one round ---------------------------------------------------------------------------

    async def _probe_provider(self) -> str:
        """The provider's API every ``PROVIDER_EVERY_S`` (a cloud's endpoint is not hit every
        round for nothing); in between the last result; a failure is probed again next round."""
        at, result = self._provider
        if result or time.monotonic() - at >= PROVIDER_EVERY_S:
            self._provider = (time.monotonic(), await probe_provider(self._client, self.sms_url))
        return self._provider[1]

    async def round(self, now: datetime | None = None, *, page: bool = True) -> None:
        """One round: check, decide, page (``page`` False: decide only, ``--once``), record."""
        now = now or datetime.now(UTC)
        detail = {"poll_s": self.cfg.poll_s, "alarm_after_s": self.cfg.alarm_after_s, "verdict": self.verdict,
                  "http_port": self.cfg.http_port}
        endpoints, provider_error, db = await asyncio.gather(
            probe_endpoints(self._client, self.cfg.stages), self._probe_provider(),
            database_round(self.dsn, timeout_s=self.cfg.timeout_s, instance=self.instance,
                           started_at=self.started_at, detail=detail, sms_window_s=self.cfg.sms_window_s))
        try:
            if not self._restored and db.conn is not None:
                await self._restore(db)
            obs, info = observe(self.cfg, endpoints, provider_error, db)
            self.observations = obs
            for action in self.incidents.step(obs, now) if page else ():
                if isinstance(action, Page):
                    log.error("watchdog paging %s", kv(problem=action.problem, since=action.since.isoformat(),
                                                       detail=action.detail[:200]))
                    self.pager.page(action.problem, action.since, now)
                else:
                    log.warning("watchdog recovered %s", kv(problem=action.problem, since=action.since.isoformat()))
                    self.pager.recovered(action.problem, action.since, action.until, now)
            if page:
                await self.pager.flush(now)
            self.findings = self._findings(obs) + info
            opened = self.incidents.open_incidents()
            bad = any(o.bad for o in obs) or not all(f["ok"] for f in info)
            self.verdict = "down" if opened else "degraded" if bad else "ok"
            if db.conn is not None and db.writable and page:
                await self._write_state(db, now)
        finally:
            await db.close()
        self.rounds += 1
        self.last_round = time.monotonic()
        ROUND_AT.set(time.time())
        OPEN.set(len(self.incidents.open_incidents()))
        VERDICT.set(_VERDICT_CODE[self.verdict])

    def _findings(self, obs: list[Observation]) -> list[Finding]:
        out = []
        for o in obs:
            st = self.incidents.states.get(o.problem)
            extra: dict[str, Any] = {"what": PROBLEMS[o.problem].what}
            if st is not None and st.open:
                extra["paged"] = True
            if o.bad is None:
                extra["unknown"] = True
            if st is not None and st.bad_since is not None:
                extra["since"] = st.bad_since.isoformat()
            detail = o.detail if o.bad else ("无法检查" if o.bad is None else "正常")
            out.append(_finding(o.problem, o.bad is not True, detail, **extra))
        return out

    async def _restore(self, db: DbRound) -> None:
        """Incidents this instance had paged before a restart: not paged again, 恢复 when over."""
        with contextlib.suppress(Exception):
            row = await db.conn.fetchrow("SELECT findings FROM watchdog_state WHERE instance = $1", self.instance)
            self._restored = True
            if row is None:
                return
            findings = json.loads(row["findings"]) if isinstance(row["findings"], str) else row["findings"]
            opened = {f["check"]: datetime.fromisoformat(f["since"]) for f in findings
                      if f.get("paged") and f.get("since") and f.get("check") in PROBLEMS}
            self.incidents.restore(opened)
            if opened:
                log.warning("watchdog restored open incidents %s", kv(problems=",".join(sorted(opened))))

    async def _write_state(self, db: DbRound, now: datetime) -> None:
        opened = self.incidents.open_incidents()
        since = min((s.bad_since for s in opened.values() if s.bad_since), default=None)
        about = "；".join(PROBLEMS[k].what for k in sorted(opened, key=list(PROBLEMS).index))
        try:
            await db.conn.execute(
                """INSERT INTO watchdog_state (instance, checked_at, verdict, findings, paging_since, paged_about)
                   VALUES ($1, $2, $3, $4::jsonb, $5, $6)
                   ON CONFLICT (instance) DO UPDATE SET checked_at = EXCLUDED.checked_at,
                       verdict = EXCLUDED.verdict, findings = EXCLUDED.findings,
                       paging_since = EXCLUDED.paging_since, paged_about = EXCLUDED.paged_about""",
                self.instance, now, self.verdict, json.dumps(self.findings, ensure_ascii=False), since, about)
        except Exception as exc:  # noqa: BLE001 - the page matters, the record can wait a round
            log.warning("watchdog state not written %s", kv(error=str(exc)[:200]))

    # --- the loop and the 心跳 URL --------------------------------------------------------------

    def alive(self) -> bool:
        """The loop completed a round recently (what the 心跳 URL answers)."""
        return self.rounds > 0 and time.monotonic() - self.last_round < 3 * self.cfg.poll_s + 4 * self.cfg.timeout_s

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            method, path = (line.decode("latin-1").split() + ["", ""])[:2]
            body: dict[str, Any]
            # /watchdog/healthz: the same, as the TLS proxy passes it on (deploy/proxy/Caddyfile)
            if method not in ("GET", "HEAD") or path.split("?")[0] not in ("/healthz", "/watchdog/healthz"):
                status, body = "404 Not Found", {"error": "只有 GET /healthz"}
            else:
                ok = self.alive()
                status = "200 OK" if ok else "503 Service Unavailable"
                body = {"ok": ok, "instance": self.instance, "verdict": self.verdict,
                        "open": sorted(self.incidents.open_incidents()), "rounds": self.rounds}
            raw = json.dumps(body, ensure_ascii=False).encode()
            head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json; charset=utf-8\r\n"
                    f"content-length: {len(raw)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n")
            writer.write(head.encode() + (b"" if method == "HEAD" else raw))
            await writer.drain()
        except (OSError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def run(self, stop: asyncio.Event) -> None:
        server = None
        if self.cfg.http_port:
            server = await asyncio.start_server(self._serve_http, self.cfg.http_host, self.cfg.http_port,
                                                family=socket.AF_INET, reuse_address=True)
        print(f"watchdog running: instance={self.instance} stages={','.join(sorted(self.cfg.stages)) or '-'}"
              f" http_port={self.cfg.http_port} poll_s={self.cfg.poll_s:g}", flush=True)
        try:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    await self.round()
                except Exception:  # noqa: BLE001 - a bug in one round must not end the watchdog
                    log.exception("watchdog round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, self.cfg.poll_s - (time.monotonic() - t0)))
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()

    async def aclose(self) -> None:
        await self._client.aclose()
        for n in (self.pager.sms, self.pager.voice):
            if n is not None and (close := getattr(n, "aclose", None)) is not None:
                await close()


def build(settings: Settings) -> Watchdog:
    """From the settings: the ``watchdog`` section, the database, and alerting's SMS and voice
    providers (``sms``, ``voice``), called directly."""
    from alerting.notify.sms import make_sms_notifier
    from alerting.notify.voice import make_voice_notifier
    from hazmon.errors import ConfigError

    cfg = settings.watchdog
    if not cfg.duty_sms_phone and not cfg.duty_voice_phone:
        raise ConfigError("HAZMON_WATCHDOG__DUTY_SMS_PHONE: empty (and no HAZMON_WATCHDOG__DUTY_VOICE_PHONE): "
                          "the watchdog would have nobody to page")
    instance = cfg.instance or socket.gethostname()[:64]
    sms: Notifier | None = make_sms_notifier(settings.sms) if cfg.duty_sms_phone else None
    voice: Notifier | None = make_voice_notifier(settings.voice, settings.sms.url) if cfg.voice_phone else None
    pager = Pager(instance=instance, sms=sms, voice=voice, sms_phone=cfg.duty_sms_phone,
                  voice_phone=cfg.voice_phone, sms_provider=settings.sms.provider)
    return Watchdog(cfg, dsn=settings.postgres.dsn, sms_url=settings.sms.url, instance=instance, pager=pager)
