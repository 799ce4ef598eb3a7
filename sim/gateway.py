"""SMS gateway simulator: a small HTTP server speaking the three provider shapes.

Used by the tests and the demo instead of a real SMS provider (nothing here reaches a phone).

* ``POST /webhook/sms`` — the generic JSON gateway (HMAC-SHA256 ``X-Hazmon-Signature``), one
  message or one text to up to 100 numbers (alerting/notify/sms_webhook.py has the shapes);
* ``POST /aliyun`` — 阿里云 ``SendSms`` (form parameters, RPC HMAC-SHA1 ``Signature``);
* ``POST /tencent`` — 腾讯云 ``SendSms`` (JSON, TC3-HMAC-SHA256 ``Authorization``), up to 200
  numbers, a ``SendStatus`` per number (a frequency limit or a bad number refuses that number).

Each request's signature is verified with the configured credentials (a bad one is refused the
way the real API refuses it), the text is rendered from the template and parameters and the
message recorded. ``GET /messages`` lists what was accepted (``?phone=`` filters),
``GET /requests`` every request including refused ones.

Admin (``POST /admin/mode``, JSON, all optional): ``fail_next`` (answer the next N sends with
``fail_status``, default 503), ``rate_limit_next`` (answer the next N as rate-limited: 429 for
the webhook, the provider's flow-control code for the clouds), ``slow_s`` (delay every answer),
``callback_url`` (base URL receiving delivery receipts at ``/sms/receipt/{provider}`` and replies
at ``/sms/reply/{provider}`` in the provider's callback shape), ``receipt_delay_s``,
``auto_reply`` (the business replies with the 回复码 from the message), ``enforce_limits`` (the
clouds' per-number frequency limits with their real error codes, off by default:
sim/gateway_limits.py). ``POST /admin/reply``
``{"phone", "text", "provider"}`` sends one reply; ``POST /admin/reset`` clears everything.
Callbacks are authenticated as the providers do it (``callback_secret``, default the webhook
secret): the webhook shape is signed (``X-Hazmon-Signature``), the cloud shapes carry
``?token=`` (alerting/inbound.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from alerting.notify import sms_aliyun, sms_tencent
from alerting.notify.sms import TEMPLATE_CODES
from alerting.notify.sms_webhook import callback_token, webhook_signature
from alerting.templates import TEMPLATES, Deployment
from hazwatch import texts as watchdog_texts
from sim import gateway_voice
from sim.gateway_limits import ProviderLimits
from sim.gateway_robots import RobotGateway

__all__ = ["SimulatorConfig", "SmsSimulator"]

log = logging.getLogger(__name__)
_CST = timezone(timedelta(hours=8))
#: what the generic gateway accepts as a number: a mainland mobile, optionally with +86
#: (a landline cannot receive SMS)
_MOBILE = re.compile(r"(\+?86)?1[3-9]\d{9}")
#: the watchdog's own registered templates (hazwatch/texts.py), beside alerting's
_WATCHDOG = {t.name: t for t in (watchdog_texts.PAGE, watchdog_texts.RECOVERED)}


def _template_of(provider: str, code: str) -> str | None:
    """Our template name of a provider's template code (alerting's, or the watchdog's)."""
    for codes in (TEMPLATE_CODES[provider], watchdog_texts.SMS_TEMPLATE_CODES[provider]):
        name = {v: k for k, v in codes.items()}.get(code)
        if name is not None:
            return name
    return None


@dataclass
class SimulatorConfig:
    webhook_secret: str = "demo-secret"
    #: AccessKeyId / SecretId → secret, for both cloud shapes
    keys: dict[str, str] = field(default_factory=lambda: {"demo-key": "demo-secret"})
    fail_next: int = 0
    fail_status: int = 503
    rate_limit_next: int = 0
    slow_s: float = 0.0
    callback_url: str = ""
    receipt_delay_s: float = 0.05
    auto_reply: bool = False
    #: the callback secret shared with alerting (``inbound.callback_secret``); "" = webhook_secret
    callback_secret: str = ""
    #: the constants of the registered templates (``sms.ack_base_url``, ``sms.duty_phone``): the
    #: cloud shapes send only the variables, the provider holds the text
    ack_url: str = ""
    duty_phone: str = Deployment().duty_phone
    lift_phone: str = Deployment().lift_phone
    #: the providers' per-number frequency limits (频率限制), as their APIs enforce them
    enforce_limits: bool = False
    aliyun_per_template_per_day: int = 50
    tencent_per_day: int = 10
    tencent_same_text_s: float = 30.0


@dataclass
class _Msg:
    seq: int
    provider: str
    message_id: str
    phone: str
    body: str
    template: str
    params: dict[str, str]
    sign_name: str
    client_ref: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class SmsSimulator:
    #: numbers one generic-gateway batch request may carry (as WebhookSms.max_batch)
    WEBHOOK_MAX_BATCH = 100

    def __init__(self, config: SimulatorConfig | None = None, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config = config or SimulatorConfig()
        #: the time the frequency limits count by (a test passes its manual clock's ``now``)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.limits = ProviderLimits()
        self.messages: list[_Msg] = []
        self.requests: list[dict[str, Any]] = []
        self._seq = itertools.count(1)
        #: in every message id: ids stay unique across restarts, as a real provider's are (a
        #: kept database holds the ids of the runs before)
        self.run_id = f"{secrets.randbelow(10**6):06d}"
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self.url = ""
        self.app = Starlette(routes=[
            Route("/webhook/sms", self._webhook, methods=["POST"]),
            Route("/aliyun", self._aliyun, methods=["POST", "GET"]),
            Route("/tencent", self._tencent, methods=["POST"]),
            Route("/messages", self._messages, methods=["GET"]),
            Route("/requests", self._requests, methods=["GET"]),
            Route("/admin/mode", self._mode, methods=["POST"]),
            Route("/admin/reply", self._reply, methods=["POST"]),
            Route("/admin/reset", self._reset, methods=["POST"]),
            Route("/healthz", lambda r: JSONResponse({"ok": True}), methods=["GET"]),
            gateway_voice.mount(self),
            Mount("/robots", app=RobotGateway().app),
        ])

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it: uvicorn writes a response's head and body apart, and
        # with Nagle on, the body would wait for the client's delayed ACK (~40 ms per request)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()
            await asyncio.sleep(0.01)
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.should_exit = True
        if self._serve_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task

    # --- common ------------------------------------------------------------------------------

    async def _gate(self, provider: str, numbers: Sequence[str] = ()) -> Response | None:
        """Apply the admin-set failure modes; None = go ahead. ``numbers``: the request's (腾讯云
        answers a frequency limit per number)."""
        if self.config.slow_s:
            await asyncio.sleep(self.config.slow_s)
        if self.config.fail_next > 0:
            self.config.fail_next -= 1
            return Response(f"simulated outage ({provider})", status_code=self.config.fail_status)
        if self.config.rate_limit_next > 0:
            self.config.rate_limit_next -= 1
            if provider == "aliyun":
                return JSONResponse({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1",
                                     "RequestId": "sim"})
            if provider == "tencent":
                return JSONResponse({"Response": {"SendStatusSet": [{
                    "Code": "LimitExceeded.PhoneNumberThirtySecondLimit", "Message": "单个手机号30秒内下发短信条数超过设定的上限",
                    "SerialNo": "", "PhoneNumber": n} for n in numbers or [""]], "RequestId": "sim"}})
            return Response("rate limited", status_code=429, headers={"retry-after": "1"})
        return None

    def _record(self, provider: str, phone: str, template: str, params: dict[str, str], sign_name: str,
                client_ref: str, body: str | None = None) -> _Msg:
        seq = next(self._seq)
        if body is None:  # a cloud shape: the registered text with the deployment's constants
            tpl = TEMPLATES.get(template)
            if tpl is None and template in _WATCHDOG:
                body = watchdog_texts.render(_WATCHDOG[template], params)
            elif tpl is None:
                body = json.dumps(params)
            else:
                body = tpl.text.format(**{k: params.get(k, "") for k in tpl.params},
                                       ACK_URL=self.config.ack_url.rstrip("/"), DUTY_PHONE=self.config.duty_phone,
                                       LIFT_PHONE=self.config.lift_phone)
                params, template = {**params, "_tpl": tpl.name}, tpl.kind
        msg = _Msg(seq, provider, f"{provider}-{self.run_id}-{seq:06d}", phone, body, template, params, sign_name, client_ref,
                   self.clock().astimezone(UTC).isoformat())
        self.messages.append(msg)
        self._after_accept(msg)
        return msg

    def _after_accept(self, msg: _Msg) -> None:
        if not self.config.callback_url:
            return
        task = asyncio.create_task(self._callbacks(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _callbacks(self, msg: _Msg) -> None:
        await asyncio.sleep(self.config.receipt_delay_s)
        now = datetime.now(_CST).strftime("%Y-%m-%d %H:%M:%S")
        if msg.provider == "aliyun":
            receipt: Any = [{"phone_number": msg.phone, "send_time": now, "report_time": now, "success": True,
                             "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
                             "biz_id": msg.message_id, "out_id": msg.client_ref}]
        elif msg.provider == "tencent":
            receipt = [{"user_receive_time": now, "nationcode": "86", "mobile": msg.phone, "report_status": "SUCCESS",
                        "errmsg": "DELIVRD", "description": "用户短信送达成功", "sid": msg.message_id}]
        else:
            receipt = {"message_id": msg.message_id, "id": msg.client_ref, "phone": msg.phone, "status": "delivered",
                       "at": now}
        async with httpx.AsyncClient(timeout=5) as client:
            with contextlib.suppress(httpx.HTTPError):
                await self._post_callback(client, "receipt", msg.provider, receipt)
            code = msg.params.get("code", "")
            if self.config.auto_reply and code:
                with contextlib.suppress(httpx.HTTPError):
                    await self._post_callback(client, "reply", msg.provider,
                                              self._reply_shape(msg.provider, msg.phone, code))

    async def _post_callback(self, client: httpx.AsyncClient, kind: str, provider: str, data: Any) -> httpx.Response:
        """A callback the way the provider authenticates it: the webhook gateway signs the body
        (``X-Hazmon-Signature``, HMAC-SHA256 with the callback secret); 阿里云 and 腾讯云 sign
        nothing and call the URL configured in their console, which carries the secret token."""
        secret = self.config.callback_secret or self.config.webhook_secret
        base = self.config.callback_url.rstrip("/")
        body = json.dumps(data, ensure_ascii=False).encode()
        headers = {"content-type": "application/json; charset=utf-8"}
        url = f"{base}/sms/{kind}/{provider}"
        if provider in ("aliyun", "tencent"):
            url += f"?token={callback_token(secret, provider)}"
        else:
            headers["x-hazmon-signature"] = webhook_signature(secret, body)
        return await client.post(url, content=body, headers=headers)

    @staticmethod
    def _reply_shape(provider: str, phone: str, text: str) -> Any:
        now = datetime.now(_CST)
        if provider == "aliyun":
            return [{"phone_number": phone, "send_time": now.strftime("%Y-%m-%d %H:%M:%S"), "content": text,
                     "sign_name": "", "dest_code": "", "sequence_id": 1}]
        if provider == "tencent":
            return {"extend": "", "mobile": phone, "nationcode": "86", "sign": "", "text": text,
                    "time": int(now.timestamp())}
        return {"phone": phone, "text": text, "at": now.isoformat()}

    # --- provider endpoints --------------------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append({"provider": "webhook", "headers": dict(request.headers), "body": raw.decode("utf-8", "replace")})
        if request.headers.get("x-hazmon-signature", "") != webhook_signature(self.config.webhook_secret, raw):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        gate = await self._gate("webhook")
        if gate is not None:
            return gate
        try:
            data = json.loads(raw)
            batch = data.get("messages")
            shared = data.get("params") or {}
            # each entry may carry its own text (a recipient's own 回复码); else the shared one
            if batch is None:
                targets = [(str(data.get("id", "")), str(data["phone"]), str(data["body"]), dict(shared))]
            elif isinstance(batch, list) and batch and len(batch) <= self.WEBHOOK_MAX_BATCH:
                targets = [(str(m.get("id", "")), str(m.get("phone") or ""), str(m["body"] if "body" in m else data["body"]),
                            dict(m.get("params") or shared)) for m in batch]
            else:
                raise TypeError("messages")
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"error": "expected JSON with body and phone, or messages (1 to "
                                          f"{self.WEBHOOK_MAX_BATCH} of id and phone, each with a body or one body for all)"},
                                status_code=400)
        template, sign = str(data.get("template", "")), str(data.get("sign_name", ""))
        results: list[dict[str, Any]] = []
        for ref, phone, body, params in targets:
            if not _MOBILE.fullmatch(phone):  # a refused number fails alone, as a real gateway's would
                results.append({"id": ref, "error": f"invalid phone number {phone!r}", "retryable": False})
                continue
            msg = self._record("webhook", phone, template, params, sign, ref, body=body)
            results.append({"id": ref, "message_id": msg.message_id})
        if batch is None:
            if "error" in results[0]:
                return JSONResponse({"error": results[0]["error"]}, status_code=400)
            return JSONResponse({"message_id": results[0]["message_id"]})
        return JSONResponse({"results": results})

    async def _aliyun(self, request: Request) -> Response:
        raw = await request.body()
        params = dict(parse_qsl(raw.decode(), keep_blank_values=True)) if raw else dict(request.query_params)
        self.requests.append({"provider": "aliyun", "params": params})
        secret = self.config.keys.get(params.get("AccessKeyId", ""))
        if secret is None:
            return JSONResponse({"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found.",
                                 "RequestId": "sim"}, status_code=404)
        if not sms_aliyun.verify_params(params, secret, request.method):
            return JSONResponse({"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched with our calculation.",
                                 "RequestId": "sim"}, status_code=400)
        for required in ("PhoneNumbers", "SignName", "TemplateCode", "Timestamp", "SignatureNonce"):
            if not params.get(required):
                return JSONResponse({"Code": "MissingParameter", "Message": required, "RequestId": "sim"}, status_code=400)
        gate = await self._gate("aliyun")
        if gate is not None:
            return gate
        name = _template_of("aliyun", params["TemplateCode"])
        if name is None:
            return JSONResponse({"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不存在", "RequestId": "sim"})
        try:
            tparams = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return JSONResponse({"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法", "RequestId": "sim"})
        key = f"{params['SignName']}|{params['TemplateCode']}"
        over = self.limits.over(self.config, "aliyun", params["PhoneNumbers"], key,
                                params.get("TemplateParam", ""), self.clock())
        if over is not None:
            return JSONResponse({"Code": over[0], "Message": over[1], "RequestId": "sim"})
        msg = self._record("aliyun", params["PhoneNumbers"], name, {k: str(v) for k, v in tparams.items()},
                           params["SignName"], params.get("OutId", ""))
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": msg.message_id, "RequestId": "sim"})

    async def _tencent(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append({"provider": "tencent", "headers": headers, "body": raw.decode("utf-8", "replace")})
        problem = sms_tencent.verify_request(headers, raw, self.config.keys)
        if problem:
            code, _, message = problem.partition(": ")
            return JSONResponse({"Response": {"Error": {"Code": code, "Message": message or code}, "RequestId": "sim"}})
        if headers.get("x-tc-action") != "SendSms":
            return JSONResponse({"Response": {"Error": {"Code": "InvalidAction", "Message": "only SendSms"},
                                              "RequestId": "sim"}})
        try:
            data = json.loads(raw)
            numbers = [str(p) for p in data["PhoneNumberSet"]]
            if not 1 <= len(numbers) <= 200:
                raise IndexError("PhoneNumberSet")
            tid = str(data["TemplateId"])
            values = [str(v) for v in data.get("TemplateParamSet", [])]
        except (ValueError, KeyError, IndexError, TypeError):
            return JSONResponse({"Response": {"Error": {"Code": "InvalidParameter", "Message": "bad body"},
                                              "RequestId": "sim"}})
        gate = await self._gate("tencent", numbers)
        if gate is not None:
            return gate
        name = _template_of("tencent", tid)
        if name is None:
            return JSONResponse({"Response": {"Error": {"Code": "FailedOperation.TemplateIncorrectOrUnapproved",
                                                        "Message": "模板未审批或不存在"}, "RequestId": "sim"}})
        params = dict(zip((TEMPLATES[name] if name in TEMPLATES else _WATCHDOG[name]).params, values, strict=False))
        ctx = str(data.get("SessionContext", ""))
        statuses = []
        for number in numbers:
            phone = number.removeprefix("+86")
            if not _MOBILE.fullmatch(phone):
                statuses.append({"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": ctx,
                                 "Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "手机号格式错误",
                                 "IsoCode": "CN"})
                continue
            over = self.limits.over(self.config, "tencent", phone, tid,
                                    json.dumps([data.get("SignName"), tid, values]), self.clock())
            if over is not None:
                statuses.append({"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": ctx,
                                 "Code": over[0], "Message": over[1], "IsoCode": "CN"})
                continue
            msg = self._record("tencent", phone, name, params, str(data.get("SignName", "")), ctx)
            statuses.append({"SerialNo": msg.message_id, "PhoneNumber": number, "Fee": 1, "SessionContext": ctx,
                             "Code": "Ok", "Message": "send success", "IsoCode": "CN"})
        return JSONResponse({"Response": {"SendStatusSet": statuses, "RequestId": "sim"}})

    # --- inspection and admin -----------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        phone = request.query_params.get("phone")
        return JSONResponse([m.to_json() for m in self.messages if phone is None or m.phone == phone])

    async def _requests(self, request: Request) -> Response:
        return JSONResponse(self.requests)

    async def _mode(self, request: Request) -> Response:
        data = await request.json()
        for k, v in data.items():
            if not hasattr(self.config, k) or k in ("keys", "webhook_secret", "callback_secret"):
                return JSONResponse({"error": f"unknown setting {k!r}"}, status_code=400)
            setattr(self.config, k, type(getattr(self.config, k))(v))
        return JSONResponse({k: v for k, v in self.config.__dict__.items()
                             if k not in ("keys", "webhook_secret", "callback_secret")})

    async def _reply(self, request: Request) -> Response:
        data = await request.json()
        provider = str(data.get("provider", "webhook"))
        if not self.config.callback_url:
            return JSONResponse({"error": "no callback_url set"}, status_code=400)
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await self._post_callback(client, "reply", provider,
                                             self._reply_shape(provider, str(data["phone"]), str(data["text"])))
        return JSONResponse({"status": resp.status_code, "answer": resp.text[:500]})

    async def _reset(self, request: Request) -> Response:
        keys, secret, cb = self.config.keys, self.config.webhook_secret, self.config.callback_secret
        self.config = SimulatorConfig(webhook_secret=secret, keys=keys, callback_secret=cb)
        self.messages.clear()
        self.requests.clear()
        self.limits.clear()
        return JSONResponse({"ok": True})
