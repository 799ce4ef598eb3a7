"""Group robots (群机器人) of the units: a township's or department's duty group on 企业微信 or 钉钉.

A unit's robot is one more channel beside its duty phone (issue 13: a message to a unit goes
over two channels). This module holds what the two providers share; the request shapes,
signing and error codes are :mod:`alerting.notify.robot_wecom` and
:mod:`alerting.notify.robot_dingtalk`.

* **Where a message goes.** The registry holds each unit's robot address as the provider
  hands it out (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``,
  ``https://oapi.dingtalk.com/robot/send?access_token=…``; a bare key/token is accepted too).
  It reaches the notifier as the outbox row's ``webhook_url``; 钉钉's 加签 secret is looked up
  in the registry by the robot's token (:class:`RegistrySecrets`), so no secret is written to
  the outbox table (a row's ``_secret`` parameter, when one is given, is used first). Only the
  key/token is taken from it: the request goes to the
  endpoint of ``settings.robots`` (the provider's, or the simulator's), never to a host the
  registry names.
* **What it says.** A markdown text in Chinese for a duty room (:func:`robot_markdown`): the
  severity as a colour word, the site and the device, what happened, what the unit should do
  (到场核实、督促处置), the business and its contact, and a link to the alert's console page.
* **Limits.** Both providers allow 20 messages a minute per robot; :class:`PerRobotLimit`
  holds this process to it (a message over the limit is a retryable refusal with the seconds
  until the window frees, never sent to be refused). An error code the provider answers is a
  :class:`~alerting.errors.ProviderError` naming the code and message: retryable for flow
  control and system busy, permanent for a wrong key, a bad signature, a missing keyword.
"""

from __future__ import annotations

import abc
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alerting.errors import ProviderError
from alerting.notify.base import Notifier, OutgoingMessage, SendResult
from alerting.notify.http import HttpAnswer, HttpClient
from alerting.notify.sms import classify_http
from hazmon.registry import Department, Registry, Township

__all__ = ["ENDPOINTS", "RobotAddress", "PerRobotLimit", "RegistrySecrets", "RobotNotifier", "robot_markdown",
           "default_url", "default_console_url", "make_robot_notifiers"]

#: the providers' send endpoints (``robots.wecom_url`` / ``dingtalk_url`` when empty)
ENDPOINTS = {"wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
             "dingtalk": "https://oapi.dingtalk.com/robot/send"}
#: what the simulator serves at ``/robots`` (sim/gateway_robots.py)
_SIM_PATHS = {"wecom": "/robots/wecom/cgi-bin/webhook/send", "dingtalk": "/robots/dingtalk/robot/send"}

#: severity → the colour word people read (红色报警 …)
_COLOUR = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色",
           "红": "红色", "橙": "橙色", "黄": "黄色", "蓝": "蓝色"}
#: roles whose text is a supervision text (not the business's own instructions)
_SUPERVISION = "立即安排人员到场核实、督促企业处置，并将处置情况反馈指挥中心。"


@dataclass(frozen=True, slots=True)
class RobotAddress:
    """A robot's key/token and, for 钉钉 加签, its secret (``SEC…``)."""

    token: str
    secret: str = ""

    @classmethod
    def parse(cls, address: str, token_param: str, secret: str = "") -> RobotAddress:
        """From the registry's webhook address (or a bare token); ProviderError (permanent)
        when it names no key/token — the unit's robot is misconfigured, retrying cannot help."""
        address = address.strip()
        if not address:
            raise ProviderError("robot: 未登记机器人地址", retryable=False)
        if "://" in address or "?" in address:
            got = parse_qs(urlsplit(address).query).get(token_param, [""])[0].strip()
        else:
            got = address
        if not got or any(c.isspace() for c in got):
            raise ProviderError(f"robot: 机器人地址缺少 {token_param}", retryable=False)
        return cls(got, secret.strip())


class PerRobotLimit:
    """At most ``per_minute`` messages per robot in any 60 s (sliding window, this process)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self._clock = per_minute, clock
        self._sent: dict[str, deque[float]] = {}

    def take(self, token: str) -> float:
        """0.0 when a message may go now (and counts it); else seconds until one may."""
        now = self._clock()
        q = self._sent.setdefault(token, deque())
        while q and now - q[0] >= 60.0:
            q.popleft()
        if len(q) >= self.per_minute:
            return max(0.1, 60.0 - (now - q[0]))
        q.append(now)
        return 0.0


def _colour(sev: str) -> str:
    """"红"/"red"/"红色报警" → "红色"; unknown: as given."""
    sev = sev.strip()
    return _COLOUR.get(sev.lower(), _COLOUR.get(sev[:1], sev))


def robot_markdown(msg: OutgoingMessage, console_url: str) -> tuple[str, str, str]:
    """(title, markdown, colour word) of the message to a unit's duty group.

    From the row's parameters (``site``, ``device``, ``what``, ``sev``, ``when``, ``reading``,
    ``late``, ``business``, ``contact``; or the SMS template's ``unit``, ``loc``, ``level``,
    ``phone``); the alert's id is only inside the link."""
    p = {k: str(v) for k, v in msg.params.items() if not k.startswith("_")}
    # the keys of compose's other-channel info (site, device, sev, business, contact) or, on a
    # row that carries the SMS template's, those (unit, loc, level, contact + phone)
    p.setdefault("site", p.get("unit", ""))
    p.setdefault("device", p.get("loc", ""))
    colour = _colour(p.get("sev") or p.get("level", ""))
    site = p["site"] or "未登记场所"
    what = p.get("what", "") or "报警"
    business = p.get("business", "") or site
    contact = p.get("contact", "").strip()
    if p.get("phone") and p["phone"] not in contact:
        contact = f"{contact} {p['phone']}".strip()
    if msg.template == "resolved":
        title = f"报警已恢复：{site}{what}"  # "报警": the keyword duty groups' robots are set up with
        lines = [f"### {title}", f"- 场所：{site}"]
        if p.get("device"):
            lines.append(f"- 位置：{p['device']}")
        if p.get("when"):
            lines.append(f"- 恢复时间：{p['when']}")
        lines.append("- 请核实现场情况后在平台办结。")
    else:
        title = f"{colour}报警：{site}{what}" if colour else f"报警：{site}{what}"
        lines = [f"### {title}", f"- 场所：{site}"]
        if p.get("device"):
            lines.append(f"- 位置：{p['device']}")
        lines.append(f"- 情况：{what}")
        if p.get("reading"):
            lines.append(f"- 读数：{p['reading']}")
        if p.get("when"):
            lines.append(f"- 时间：{p['when']}")
        if p.get("late"):
            lines.append(f"- 说明：{p['late']}")
        lines.append(f"- 责任单位：{business}" + (f"，联系人 {contact}" if contact else ""))
        lines.append(f"- 请做：{_SUPERVISION}")
    if msg.alert_id and console_url:
        lines.append(f"\n[在平台查看报警详情]({console_url.rstrip('/')}/#/alert/{msg.alert_id})")
    return title, "\n".join(lines), colour


class RegistrySecrets:
    """Robot token → 加签 secret of the townships' and departments' robots (registry
    ``robot_url``/``robot_secret``), from the registry ``current()`` returns; rebuilt when the
    service has reloaded it (a new snapshot object)."""

    def __init__(self, current: Callable[[], Registry]) -> None:
        self._current = current
        self._seen: Registry | None = None
        self._by_token: dict[str, str] = {}

    def __call__(self, token: str) -> str:
        registry = self._current()
        if registry is not self._seen:
            by_token: dict[str, str] = {}
            units: list[Township | Department] = [*registry.townships.values(), *registry.departments.values()]
            for unit in units:
                url, secret = unit.robot_url, unit.robot_secret
                if url and secret:
                    for param in ("access_token", "key"):
                        try:
                            by_token[RobotAddress.parse(url, param).token] = secret
                        except ProviderError:
                            continue
            self._seen, self._by_token = registry, by_token
        return self._by_token.get(token, "")


class RobotNotifier(Notifier):
    """One provider's robots. Subclasses give the token parameter, the request and the codes."""

    #: the query parameter of the provider's webhook address that names the robot
    token_param: str
    #: error codes worth trying again (flow control, system busy) → seconds to wait at least
    retryable_codes: Mapping[int, float] = {}

    def __init__(self, url: str, *, console_url: str = "", timeout_s: float = 5.0, per_minute: int = 20,
                 max_in_flight: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.console_url = url, console_url
        self.max_in_flight = max(1, max_in_flight)
        self.limit = PerRobotLimit(per_minute, clock)
        self._client = HttpClient(self.name, timeout_s=timeout_s, max_connections=self.max_in_flight)
        #: token → 加签 secret (set by the service: :class:`RegistrySecrets`)
        self.secret_for: Callable[[str], str] | None = None

    @abc.abstractmethod
    def request(self, addr: RobotAddress, msg: OutgoingMessage) -> tuple[str, bytes]:
        """(URL, JSON body) of one message to the robot ``addr``."""

    async def send(self, msg: OutgoingMessage) -> SendResult:
        # a ``_secret`` parameter the row carries, else the registry's by token
        addr = RobotAddress.parse(msg.webhook_url, self.token_param, str(msg.params.get("_secret", "")))
        if not addr.secret and self.secret_for is not None:
            addr = RobotAddress(addr.token, self.secret_for(addr.token))
        wait = self.limit.take(addr.token)
        if wait:
            raise ProviderError(f"{self.name}: 本机器人每分钟限发 {self.limit.per_minute} 条，稍后重发",
                                retryable=True, retry_after_s=wait)
        url, body = self.request(addr, msg)
        resp = await self._client.post(url, body=body, headers={"content-type": "application/json; charset=utf-8"})
        return self.answer(resp, msg)

    def answer(self, resp: HttpAnswer, msg: OutgoingMessage) -> SendResult:
        """``{"errcode": 0, "errmsg": "ok"}`` is sent; any other code a ProviderError naming it."""
        classify_http(self.name, resp)
        try:
            data: Any = resp.json()
            code = int(data.get("errcode", -2))
        except (ValueError, TypeError, AttributeError):
            raise ProviderError(f"{self.name}: not JSON: {resp.text[:200]!r}", retryable=True,
                                status=resp.status) from None
        if code == 0:
            return SendResult(self.name, msg.id, resp.status)
        wait = self.retryable_codes.get(code)
        raise ProviderError(f"{self.name}: {code}: {str(data.get('errmsg', ''))[:200]}",
                            retryable=wait is not None, status=resp.status, retry_after_s=wait or None)

    async def aclose(self) -> None:
        await self._client.aclose()


def default_url(provider: str, sms_url: str = "") -> str:
    """A robot endpoint left empty: the provider's — or, while SMS goes to a gateway that is no
    cloud (the simulator of the demo, the harness and the tests), that server's ``/robots/…``,
    as the voice channel does (alerting/notify/voice.py), so one simulator address serves all."""
    parts = urlsplit(sms_url)
    if parts.netloc and not parts.netloc.endswith(("aliyuncs.com", "tencentcloudapi.com")):
        return f"{parts.scheme}://{parts.netloc}{_SIM_PATHS[provider]}"
    return ENDPOINTS[provider]


def default_console_url(ack_base_url: str) -> str:
    """The console's address from the acknowledgement link's base (``…/ack``): the console
    serves both, so the robot's link to the alert page works wherever the SMS link does."""
    return ack_base_url.rstrip("/").removesuffix("/ack")


def make_robot_notifiers(robots: Any, sms: Any = None) -> dict[str, RobotNotifier]:
    """From :class:`hazmon.settings.RobotsSettings`: the ``wecom`` and ``dingtalk`` channels
    (empty endpoints from ``sms.url``, an empty console address from ``sms.ack_base_url``:
    :func:`default_url`, :func:`default_console_url`)."""
    from alerting.notify.robot_dingtalk import DingtalkRobot
    from alerting.notify.robot_wecom import WecomRobot

    sms_url, ack = (sms.url, sms.ack_base_url) if sms is not None else ("", "")
    common = {"console_url": robots.console_url or default_console_url(ack), "timeout_s": robots.timeout_s,
              "per_minute": robots.per_robot_per_minute, "max_in_flight": robots.max_in_flight}
    return {"wecom": WecomRobot(robots.wecom_url or default_url("wecom", sms_url), **common),
            "dingtalk": DingtalkRobot(robots.dingtalk_url or default_url("dingtalk", sms_url), **common)}
