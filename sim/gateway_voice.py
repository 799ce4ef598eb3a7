"""The gateway simulator's voice endpoints (语音通知), mounted at ``/voice`` by sim/gateway.py.

* ``POST /voice/aliyun`` — 阿里云 ``SingleCallByTts`` (form parameters, RPC HMAC-SHA1
  ``Signature`` verified with the simulator's keys);
* ``POST /voice/tencent`` — 腾讯云 ``SendTtsVoice`` (JSON, TC3-HMAC-SHA256, service ``vms``);
* ``GET /voice/calls`` — every call placed (``?number=`` filters): number, the script the callee
  heard, the outcome;
* ``POST /voice/admin/script`` ``{"number": …, "outcomes": [...]}`` — what the next calls to
  that number do, one outcome per call, the last repeated: ``answered`` (heard it, pressed
  nothing), ``key1`` (pressed 1), ``no_answer``, ``busy``, or ``error:<code>`` (the provider
  refuses the request with that error code; no call, no receipt). Default: ``answered``.
* ``POST /voice/admin/reset``.

A placed call's receipt goes to the simulator's ``callback_url`` at
``/voice/receipt/{provider}?token=…`` in the provider's shape: 阿里云 a VoiceReport list
(``call_id``, ``status_code``, ``dtmf``, ``out_id``…), 腾讯云 a ``voicekey_callback`` (the key
pressed) and then a ``voiceprompt_callback`` (``result`` 0 answered, 1 not answered, 2 failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from alerting.notify import sms_aliyun, sms_tencent
from alerting.notify.sms_webhook import callback_token
from alerting.notify.voice import VOICE_TEMPLATE_CODES, VOICE_TEMPLATES, render_script

if TYPE_CHECKING:
    from sim.gateway import SmsSimulator

__all__ = ["VoiceGateway", "mount", "ALIYUN_STATUS"]

_CST = timezone(timedelta(hours=8))
OUTCOMES = ("answered", "key1", "no_answer", "busy")
#: 阿里云 VoiceReport ``status_code`` of each scripted outcome, as this simulator sends them
#: (呼叫状态码: 200000 the callee heard the call to its end; 200003 rang, not answered; 200002
#: busy — the codes of 阿里云's 运营商回执错误码 table)
ALIYUN_STATUS = {"answered": ("200000", "用户听完语音"), "key1": ("200000", "用户听完语音"),
                 "no_answer": ("200003", "用户收到呼叫但未接听"), "busy": ("200002", "用户占线")}


@dataclass
class _Call:
    seq: int
    provider: str
    call_id: str
    number: str
    template: str
    script: str
    outcome: str
    ref: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class VoiceGateway:
    """Owns the calls; reads keys and the callback settings from the SMS simulator it is
    mounted in."""

    def __init__(self, sim: SmsSimulator) -> None:
        self.sim = sim
        self.calls: list[_Call] = []
        self.scripts: dict[str, list[str]] = {}
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> Mount:
        return Mount("/voice", routes=[
            Route("/aliyun", self._aliyun, methods=["POST"]),
            Route("/tencent", self._tencent, methods=["POST"]),
            Route("/calls", self._calls, methods=["GET"]),
            Route("/admin/script", self._script, methods=["POST"]),
            Route("/admin/reset", self._reset, methods=["POST"]),
        ])

    # --- scripted outcomes ---------------------------------------------------------------------

    def _next_outcome(self, number: str) -> str:
        plan = self.scripts.get(number)
        if not plan:
            return "answered"
        return plan.pop(0) if len(plan) > 1 else plan[0]

    def _place(self, provider: str, number: str, template: str, values: dict[str, str], ref: str,
               outcome: str) -> _Call:
        seq = next(self._seq)
        tpl = VOICE_TEMPLATES[template]
        run = self.sim.run_id  # unique across restarts, as the providers' ids are
        call_id = f"{run}{seq:06d}^{100000000 + seq}" if provider == "aliyun" else f"vms-{run}-{seq:08d}"
        call = _Call(seq, provider, call_id, number, template, render_script(tpl, values), outcome, ref,
                     datetime.now(UTC).isoformat())
        self.calls.append(call)
        if self.sim.config.callback_url:
            task = asyncio.create_task(self._receipt(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return call

    async def _receipt(self, call: _Call) -> None:
        await asyncio.sleep(self.sim.config.receipt_delay_s)
        now = datetime.now(_CST)
        cfg = self.sim.config
        secret = cfg.callback_secret or cfg.webhook_secret
        url = f"{cfg.callback_url.rstrip('/')}/voice/receipt/{call.provider}?token="
        url += callback_token(secret, call.provider)
        bodies: list[Any]
        answered = call.outcome in ("answered", "key1")
        if call.provider == "aliyun":
            code, msg = ALIYUN_STATUS[call.outcome]
            t = now.strftime("%Y-%m-%d %H:%M:%S")
            bodies = [[{"call_id": call.call_id, "out_id": call.ref, "status_code": code, "status_msg": msg,
                        "dtmf": "1" if call.outcome == "key1" else "", "start_time": t if answered else "",
                        "end_time": t, "duration": "12" if answered else "0", "callee": call.number,
                        "caller": "", "toll_type": "LOCAL"}]]
        else:
            ts = str(int(now.timestamp()))
            base = {"callid": call.call_id, "mobile": call.number, "nationcode": "86", "call_from": ""}
            bodies = []
            if call.outcome == "key1":
                bodies.append({"voicekey_callback": {**base, "keypress": "1"}})
            result = {"answered": "0", "key1": "0", "no_answer": "1", "busy": "2"}[call.outcome]
            bodies.append({"voiceprompt_callback": {
                **base, "result": result, "accept_time": ts if answered else "0", "start_calltime": ts,
                "end_calltime": ts, "fee": "1" if answered else "0"}})
        async with httpx.AsyncClient(timeout=5) as client:
            for body in bodies:
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(url, content=json.dumps(body, ensure_ascii=False).encode(),
                                      headers={"content-type": "application/json; charset=utf-8"})

    # --- provider endpoints --------------------------------------------------------------------

    async def _aliyun(self, request: Request) -> Response:
        raw = await request.body()
        params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        self.sim.requests.append({"provider": "voice-aliyun", "params": params})
        secret = self.sim.config.keys.get(params.get("AccessKeyId", ""))
        if secret is None:
            return JSONResponse({"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is "
                                 "not found.", "RequestId": "sim"}, status_code=404)
        if not sms_aliyun.verify_params(params, secret, "POST"):
            return JSONResponse({"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not "
                                 "matched with our calculation.", "RequestId": "sim"}, status_code=400)
        if params.get("Action") != "SingleCallByTts":
            return JSONResponse({"Code": "InvalidAction.NotFound", "RequestId": "sim"}, status_code=400)
        for required in ("CalledNumber", "TtsCode", "Timestamp", "SignatureNonce"):
            if not params.get(required):
                return JSONResponse({"Code": "MissingParameter", "Message": required, "RequestId": "sim"},
                                    status_code=400)
        if len(params.get("OutId", "").encode()) > 15:
            return JSONResponse({"Code": "isv.INVALID_PARAMETERS", "Message": "OutId 超过15字节",
                                 "RequestId": "sim"})
        name = {v: k for k, v in VOICE_TEMPLATE_CODES["aliyun"].items()}.get(params["TtsCode"])
        if name is None:
            return JSONResponse({"Code": "isv.TTS_TEMPLATE_ILLEGAL", "Message": "模板不存在",
                                 "RequestId": "sim"})
        try:
            values = {k: str(v) for k, v in json.loads(params.get("TtsParam") or "{}").items()}
        except (ValueError, AttributeError):
            return JSONResponse({"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法",
                                 "RequestId": "sim"})
        if sum(len(v) for v in values.values()) >= 250 or any("http" in v.lower() for v in values.values()):
            return JSONResponse({"Code": "isv.TTS_PARAM_ILLEGAL", "Message": "模板变量超长或含链接",
                                 "RequestId": "sim"})
        number = params["CalledNumber"]
        outcome = self._next_outcome(number)
        if outcome.startswith("error:"):
            code = outcome.removeprefix("error:")
            return JSONResponse({"Code": code, "Message": "模拟的服务商错误", "RequestId": "sim"})
        call = self._place("aliyun", number, name, values, params.get("OutId", ""), outcome)
        return JSONResponse({"Code": "OK", "Message": "OK", "CallId": call.call_id, "RequestId": "sim"})

    async def _tencent(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.sim.requests.append({"provider": "voice-tencent", "headers": headers,
                                  "body": raw.decode("utf-8", "replace")})

        def error(code: str, message: str) -> JSONResponse:
            return JSONResponse({"Response": {"Error": {"Code": code, "Message": message},
                                              "RequestId": "sim"}})

        problem = sms_tencent.verify_request(headers, raw, self.sim.config.keys)
        if problem:
            code, _, message = problem.partition(": ")
            return error(code, message or code)
        if headers.get("x-tc-action") != "SendTtsVoice" or "/vms/" not in headers.get("authorization", ""):
            return error("InvalidAction", "only SendTtsVoice (service vms)")
        try:
            data = json.loads(raw)
            number = str(data["CalledNumber"])
            tid = str(data["TemplateId"])
            values = [str(v) for v in data.get("TemplateParamSet", [])]
            str(data["VoiceSdkAppid"])
        except (ValueError, KeyError, TypeError):
            return error("InvalidParameter", "bad body")
        name = {v: k for k, v in VOICE_TEMPLATE_CODES["tencent"].items()}.get(tid)
        if name is None:
            return error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或不存在")
        mobile = number.removeprefix("+86")
        if not (number.startswith("+86") and len(mobile) == 11 and mobile.startswith("1")):
            return error("InvalidParameterValue.IncorrectPhoneNumber", "被叫号码格式错误")
        tpl = VOICE_TEMPLATES[name]
        named = dict(zip(tpl.params, values, strict=False))
        if len(render_script(tpl, named)) > 350:
            return error("InvalidParameterValue.ContentTooLong", "语音内容超过350字")
        outcome = self._next_outcome(mobile)
        if outcome.startswith("error:"):
            return error(outcome.removeprefix("error:"), "模拟的服务商错误")
        call = self._place("tencent", mobile, name, named, str(data.get("SessionContext", "")), outcome)
        return JSONResponse({"Response": {"SendStatus": {"CallId": call.call_id,
                                                         "SessionContext": call.ref}, "RequestId": "sim"}})

    # --- inspection and admin -------------------------------------------------------------------

    async def _calls(self, request: Request) -> Response:
        number = request.query_params.get("number")
        return JSONResponse([c.to_json() for c in self.calls if number is None or c.number == number])

    async def _script(self, request: Request) -> Response:
        try:
            data = await request.json()
            number = str(data["number"])
            outcomes = [str(o) for o in data["outcomes"]]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected {\"number\": …, \"outcomes\": [...]}"}, status_code=400)
        bad = [o for o in outcomes if o not in OUTCOMES and not o.startswith("error:")]
        if bad or not outcomes:
            return JSONResponse({"error": f"unknown outcomes {bad}; use {OUTCOMES} or error:<code>"},
                                status_code=400)
        self.scripts[number] = outcomes
        return JSONResponse({"number": number, "outcomes": outcomes})

    async def _reset(self, request: Request) -> Response:
        self.calls.clear()
        self.scripts.clear()
        return JSONResponse({"ok": True})


def mount(sim: SmsSimulator) -> Mount:
    """The ``/voice`` routes of ``sim`` (one line in sim/gateway.py)."""
    sim.voice = VoiceGateway(sim)  # type: ignore[attr-defined]
    return sim.voice.routes()  # type: ignore[attr-defined]
