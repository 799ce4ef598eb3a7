"""Call receipts (语音呼叫回执) on alerting's inbound server: ``POST /voice/receipt/{provider}``.

Shapes: 阿里云 VoiceReport (a JSON list: ``call_id``, ``status_code``, ``status_msg``, ``dtmf``,
``out_id``…), 腾讯云 ``voicekey_callback`` (the key pressed) and ``voiceprompt_callback``
(``result`` 0 answered, 1 not answered, 2 failed). Authenticated like the SMS receipts: these
providers sign nothing, so the URL configured in their console carries the callback token
(:func:`~alerting.notify.sms_webhook.callback_token`, ``?token=…``); a forged one is refused
401 and audited (InboundApp._callback).

What a receipt does to its notification (matched by ``CallId``, the row's
``provider_message_id``), each with a ``notification_attempts`` row on the alert's timeline:

* key 1 (按1确认) → ``delivered`` and the alert acknowledged as that recipient
  (``voice:<单位><姓名>``, via ``voice``), audited (channel ``voice_key``);
* answered without a key → ``delivered``;
* not answered, busy, failed → called again after ``retry_delay_s`` × 2ⁿ while the row has
  fewer than ``max_attempts`` calls and the alert is open and unacknowledged; then ``failed``
  ("未接通"), which :func:`alerting.notices.voice_escalate_due` escalates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerting.acks import acknowledge_open, audit
from alerting.store import voice as store
from hazmon.logs import kv

if TYPE_CHECKING:
    from alerting.inbound import InboundApp

__all__ = ["CallReceipt", "VoicePolicy", "parse_call_receipts", "apply_call_receipts", "voice_routes",
           "ALIYUN_ANSWERED", "ALIYUN_OUTCOMES"]

log = logging.getLogger(__name__)

#: 阿里云 呼叫状态码 (语音服务, 运营商回执错误码: the single-call codes) → our outcome. Every
#: outcome but answered/key1 redials while the alert is open and unacknowledged, then escalates;
#: a callee who hung up early did not hear the alarm whole, so it counts as not answered, while
#: one who heard it all and pressed nothing (200008) was reached. Any other code: a failed call.
ALIYUN_ANSWERED = "200000"
ALIYUN_OUTCOMES = {
    "200000": "answered",  # 用户听完语音
    "200001": "no_answer",  # 用户提前挂机未完整收听
    "200002": "busy",  # 用户占线
    "200003": "no_answer",  # 用户收到呼叫但未接听
    "200004": "failed",  # 用户号码不合法
    "200005": "no_answer",  # 被叫用户无法接通（运营商问题或拒接）
    "200007": "no_answer",  # 用户无法接通（不在服务区）
    "200008": "answered",  # 获取按键超时：听完未按键
    "200010": "no_answer",  # 关机
    "200011": "failed",  # 停机
}
_ZH = {"answered": "已接听", "key1": "已接听并按1确认", "no_answer": "未接听", "busy": "忙线",
       "failed": "呼叫失败"}


@dataclass(frozen=True, slots=True)
class CallReceipt:
    provider: str  # aliyun | tencent
    call_id: str
    outcome: str  # answered | key1 | no_answer | busy | failed
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VoicePolicy:
    max_attempts: int = 3
    retry_delay_s: float = 60.0

    def redial_in(self, calls_made: int) -> timedelta:
        return timedelta(seconds=self.retry_delay_s * 2 ** max(calls_made - 1, 0))


def _items(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    return [data] if isinstance(data, dict) else []


def parse_call_receipts(provider: str, data: Any) -> list[CallReceipt]:
    """The receipts of one callback body; an item without a call id is left out (logged)."""
    out: list[CallReceipt] = []
    for d in _items(data):
        if provider == "aliyun":
            code = str(d.get("status_code", ""))
            outcome = ALIYUN_OUTCOMES.get(code, "failed")
            if outcome == "answered" and "1" in str(d.get("dtmf", "")):
                outcome = "key1"
            out.append(CallReceipt(provider, str(d.get("call_id", "")), outcome,
                                   f"{code} {d.get('status_msg', '')}".strip()))
        elif "voicekey_callback" in d and isinstance(d["voicekey_callback"], dict):
            k = d["voicekey_callback"]
            if str(k.get("keypress", "")) == "1":
                out.append(CallReceipt(provider, str(k.get("callid", "")), "key1", "keypress 1"))
        elif "voiceprompt_callback" in d and isinstance(d["voiceprompt_callback"], dict):
            p = d["voiceprompt_callback"]
            result = str(p.get("result", ""))
            outcome = {"0": "answered", "1": "no_answer"}.get(result, "failed")
            out.append(CallReceipt(provider, str(p.get("callid", "")), outcome, f"result {result}"))
    dropped = [r for r in out if not r.call_id]
    if dropped:
        log.warning("call receipt without a call id %s", kv(provider=provider, items=len(dropped)))
    return [r for r in out if r.call_id]


async def _apply_one(conn: asyncpg.Connection, r: CallReceipt, *, now: datetime, policy: VoicePolicy) -> str:
    provider = f"voice-{r.provider}"
    row = await store.lock_call(conn, provider, r.call_id)
    if row is None:
        return "unknown"
    said = f"{_ZH[r.outcome]}（{r.detail}）" if r.detail else _ZH[r.outcome]
    if r.outcome in ("answered", "key1"):
        if row["status"] != "delivered":
            await store.call_delivered(conn, row["id"], now)
        await store.call_attempt(conn, row, now, provider, "delivered", said, r.call_id)
        if r.outcome == "key1" and row["alert_id"]:
            await _acknowledge(conn, row, now=now, provider=provider)
        return r.outcome
    if row["status"] not in ("sent", "delivered"):
        return "stale"  # a second receipt of a call already redialled or given up
    open_unacked = row["phase"] not in (None, "closed") and row["acked_at"] is None
    if open_unacked and row["attempts"] < policy.max_attempts:
        at = now + policy.redial_in(row["attempts"])
        await store.call_redial(conn, row["id"], at, now, f"{said}：第{row['attempts']}次呼叫，将重拨")
        await store.call_attempt(conn, row, now, provider, "undelivered", f"{said}，将重拨", r.call_id)
        return "redial"
    if not open_unacked:
        await store.call_ended(conn, row["id"], "suppressed", now, f"{said}；报警已确认或已办结，不再重拨")
        await store.call_attempt(conn, row, now, provider, "undelivered", f"{said}，报警已确认，不再重拨",
                                 r.call_id)
        return "stopped"
    await store.call_ended(conn, row["id"], "failed", now, f"未接通：呼叫{row['attempts']}次均{said}")
    await store.call_attempt(conn, row, now, provider, "undelivered",
                             f"{said}，已呼叫{row['attempts']}次，升级通知", r.call_id)
    return "gave_up"


async def _acknowledge(conn: asyncpg.Connection, row: asyncpg.Record, *, now: datetime, provider: str
                       ) -> None:
    who = f"{row['recipient_unit']}{row['recipient_name']}"
    # as a reply or a link: refused once the alarm recovered (the 恢复 wins a race, alerting/acks.py)
    outcome, _result = await acknowledge_open(
        conn, str(row["alert_id"]), actor=f"voice:{who}", now=now, via="voice", reason="语音通知按1确认",
        detail={"recipient": {"id": row["rule"], "role": row["recipient_role"], "name": row["recipient_name"],
                              "unit": row["recipient_unit"]},
                "notification": row["id"]})
    await audit(conn, at=now, channel="voice_key", outcome=outcome, provider=provider,
                phone=row["recipient_phone"], recipient=str(row["rule"]), alert_id=str(row["alert_id"]),
                detail={"actor": f"voice:{who}"})


async def apply_call_receipts(conn: asyncpg.Connection, receipts: Sequence[CallReceipt], *, now: datetime,
                              policy: VoicePolicy) -> list[str]:
    """Each receipt in its own transaction (a key press acknowledges; a failure redials or
    gives up); returns what each did."""
    out = []
    for r in receipts:
        async with conn.transaction():
            out.append(await _apply_one(conn, r, now=now, policy=policy))
    return out


#: a receipt can overtake the write of its call's send result (a busy sender writes its results
#: seconds after the provider answered): looked up again after these delays, about a minute in all
_RETRY_S = (0.2, 0.5, 1.5, 5.0, 15.0, 30.0)


async def _apply_with_retries(app: InboundApp, receipts: Sequence[CallReceipt], policy: VoicePolicy
                              ) -> list[str]:
    did = ["unknown"] * len(receipts)
    todo = list(range(len(receipts)))
    for delay in (0.0, *_RETRY_S):
        if not todo:
            break
        await asyncio.sleep(delay)
        async with app.pool.acquire() as conn:
            got = await apply_call_receipts(conn, [receipts[i] for i in todo], now=app.clock.now(),
                                            policy=policy)
        for i, outcome in zip(todo, got, strict=True):
            did[i] = outcome
        todo = [i for i in todo if did[i] == "unknown"]
    for i in todo:
        log.warning("call receipt for an unknown call %s", kv(provider=receipts[i].provider,
                                                             call_id=receipts[i].call_id[:60]))
    return did


def voice_routes(app: InboundApp, policy: VoicePolicy) -> list[Route]:
    """The route the inbound app mounts (authentication and bounds are the app's)."""

    async def receipt(request: Request) -> Response:
        if request.path_params["provider"] not in ("aliyun", "tencent"):
            return JSONResponse({"error": "未知的语音服务商"}, status_code=404)
        got = await app._callback(request, "receipt")
        if isinstance(got, Response):
            return got
        provider, data = got
        receipts = parse_call_receipts(provider, data)

        async def apply() -> None:
            did = await _apply_with_retries(app, receipts, policy)
            log.info("call receipts %s", kv(provider=provider, receipts=len(receipts), did=",".join(did)))

        # answered at once (the providers time out and resend a slow callback); applied in the
        # background, a receipt that overtook its call's send result waits for it
        app.spawn(apply(), name="inbound-call-receipts")
        if provider == "aliyun":
            return JSONResponse({"code": 0, "msg": "成功"})
        return JSONResponse({"result": 0, "errmsg": "OK"})

    return [Route("/voice/receipt/{provider}", receipt, methods=["POST"])]
