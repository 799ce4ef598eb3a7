"""Group-robot simulator: 企业微信 群机器人 and 钉钉 自定义机器人, mounted at ``/robots`` of the
gateway simulator (sim/gateway.py). Nothing here reaches a real group.

* ``POST /robots/wecom/cgi-bin/webhook/send?key=…`` — answers as 企业微信: 93000 for a key it
  does not know (or one revoked), 45009 over 20 messages a minute per robot, 40008 for a
  msgtype other than text/markdown, 44004 for empty content;
* ``POST /robots/dingtalk/robot/send?access_token=…&timestamp=…&sign=…`` — answers as 钉钉:
  300005 for an unknown token, 310000 when the 加签 signature does not match, the timestamp is
  more than an hour off, or the content lacks the robot's keywords (自定义关键词), 130101 over
  20 messages a minute.

Robots are known by configuration (:class:`RobotConfig`; by default the 钉钉 robots of the
sample district, data/sample, with their secrets, so the demo's are verified like any other)
or ``POST /robots/admin/robots``
``{"wecom": ["key", …], "dingtalk": {"token": {"secret": "SEC…", "keywords": ["报警"]}}}``;
``wecom_open`` (default on) accepts any key not revoked, so the demo needs no set-up for
企业微信. Scripted failures: ``POST /robots/admin/mode`` ``{"fail_next": N, "errcode": C,
"errmsg": "…"}`` answers the next N sends with that code, ``{"revoke": ["key"]}`` removes a
robot. ``GET /robots/messages`` lists what each group received (``?provider=``,
``?robot=``), ``GET /robots/requests`` every request with its answer.
"""

from __future__ import annotations

import csv
import json
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerting.notify.robot_dingtalk import verify

__all__ = ["RobotConfig", "RobotGateway", "sample_robots"]

_SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"

_WECOM_URL_HINT = "invalid webhook url, hint: [sim] key 未登记或已删除"
_PER_MINUTE = 20


def sample_robots(district: Path = _SAMPLE) -> dict[str, dict[str, Any]]:
    """access_token → {"secret", "keywords"} of the 钉钉 robots in a district's townships.csv and
    departments.csv (the registry files); {} when there are none."""
    found: dict[str, dict[str, Any]] = {}
    for name in ("townships.csv", "departments.csv"):
        path = district / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if (row.get("robot") or "").strip() != "dingtalk":
                    continue
                token = parse_qs(urlsplit(row.get("robot_url") or "").query).get("access_token", [""])[0]
                if token:
                    found[token] = {"secret": (row.get("robot_secret") or "").strip(), "keywords": ["报警"]}
    return found


@dataclass
class RobotConfig:
    #: 企业微信 robot keys known (with ``wecom_open``, any key not revoked is)
    wecom: set[str] = field(default_factory=set)
    wecom_open: bool = True
    #: 钉钉 access_token → {"secret": "SEC…", "keywords": [...]} (keywords optional)
    dingtalk: dict[str, dict[str, Any]] = field(default_factory=sample_robots)
    revoked: set[str] = field(default_factory=set)
    fail_next: int = 0
    errcode: int = -1
    errmsg: str = "系统繁忙"


class RobotGateway:
    """The robots' endpoints as one Starlette app (``Mount("/robots", app=RobotGateway().app)``)."""

    def __init__(self, config: RobotConfig | None = None) -> None:
        self.config = config or RobotConfig()
        self.messages: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._recent: dict[str, deque[float]] = {}
        self.app = Starlette(routes=[
            Route("/wecom/cgi-bin/webhook/send", self._wecom, methods=["POST"]),
            Route("/dingtalk/robot/send", self._dingtalk, methods=["POST"]),
            Route("/messages", self._messages, methods=["GET"]),
            Route("/requests", self._requests, methods=["GET"]),
            Route("/admin/robots", self._robots, methods=["POST"]),
            Route("/admin/mode", self._mode, methods=["POST"]),
            Route("/admin/reset", self._reset, methods=["POST"]),
        ])

    # --- common -----------------------------------------------------------------------------

    def _answer(self, provider: str, robot: str, code: int, msg: str, body: Any) -> Response:
        self.requests.append({"provider": provider, "robot": robot, "errcode": code, "errmsg": msg,
                              "body": body, "at": datetime.now(UTC).isoformat()})
        return JSONResponse({"errcode": code, "errmsg": msg})

    def _over_limit(self, provider: str, robot: str) -> bool:
        now = time.monotonic()
        q = self._recent.setdefault(f"{provider}:{robot}", deque())
        while q and now - q[0] >= 60.0:
            q.popleft()
        if len(q) >= _PER_MINUTE:
            return True
        q.append(now)
        return False

    def _scripted(self) -> tuple[int, str] | None:
        if self.config.fail_next > 0:
            self.config.fail_next -= 1
            return self.config.errcode, self.config.errmsg
        return None

    @staticmethod
    async def _json(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            return None

    def _accept(self, provider: str, robot: str, msgtype: str, title: str, content: str) -> Response:
        self.messages.append({"seq": len(self.messages) + 1, "provider": provider, "robot": robot,
                              "msgtype": msgtype, "title": title, "content": content,
                              "at": datetime.now(UTC).isoformat()})
        return self._answer(provider, robot, 0, "ok", {"msgtype": msgtype, "title": title})

    @staticmethod
    def _content(data: dict[str, Any], msgtype: str, text_key: str) -> str:
        part = data.get(msgtype)
        if not isinstance(part, dict):
            return ""
        return str(part.get(text_key if msgtype == "markdown" else "content", "") or "")

    # --- 企业微信 ------------------------------------------------------------------------------

    async def _wecom(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        data = await self._json(request)
        known = key and key not in self.config.revoked and (self.config.wecom_open or key in self.config.wecom)
        if not known:
            return self._answer("wecom", key, 93000, _WECOM_URL_HINT, data)
        if (failed := self._scripted()) is not None:
            return self._answer("wecom", key, *failed, data)
        if not isinstance(data, dict) or data.get("msgtype") not in ("text", "markdown"):
            return self._answer("wecom", key, 40008, "invalid message type", data)
        content = self._content(data, data["msgtype"], "content")
        if not content.strip():
            return self._answer("wecom", key, 44004, "text content empty", data)
        if len(content.encode()) > 4096:
            return self._answer("wecom", key, 40058, "markdown.content exceed max length 4096", data)
        if self._over_limit("wecom", key):
            return self._answer("wecom", key, 45009, "api freq out of limit", data)
        return self._accept("wecom", key, data["msgtype"], "", content)

    # --- 钉钉 ---------------------------------------------------------------------------------

    async def _dingtalk(self, request: Request) -> Response:
        q = request.query_params
        token = q.get("access_token", "")
        data = await self._json(request)
        robot = self.config.dingtalk.get(token) if token not in self.config.revoked else None
        if robot is None:
            return self._answer("dingtalk", token, 300005, "token is not exist", data)
        secret = str(robot.get("secret", ""))
        if secret:
            problem = verify(q.get("timestamp", ""), q.get("sign", ""), secret, int(time.time() * 1000))
            if problem:
                return self._answer("dingtalk", token, 310000, f"{problem}, more: [sim] 加签校验失败", data)
        if (failed := self._scripted()) is not None:
            return self._answer("dingtalk", token, *failed, data)
        if not isinstance(data, dict) or data.get("msgtype") not in ("text", "markdown"):
            return self._answer("dingtalk", token, 40035, "缺少参数 msgtype", data)
        content = self._content(data, data["msgtype"], "text")
        title = str((data.get("markdown") or {}).get("title", "")) if data["msgtype"] == "markdown" else ""
        keywords = [str(k) for k in robot.get("keywords", [])]
        if keywords and not any(k in content or k in title for k in keywords):
            return self._answer("dingtalk", token, 310000, "keywords not in content, more: [sim]", data)
        if self._over_limit("dingtalk", token):
            return self._answer("dingtalk", token, 130101, "send too fast, exceed 20 times per minute", data)
        return self._accept("dingtalk", token, data["msgtype"], title, content)

    # --- inspection and admin ---------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        provider, robot = request.query_params.get("provider"), request.query_params.get("robot")
        return JSONResponse([m for m in self.messages if (provider is None or m["provider"] == provider)
                             and (robot is None or m["robot"] == robot)])

    async def _requests(self, request: Request) -> Response:
        return JSONResponse(self.requests)

    async def _robots(self, request: Request) -> Response:
        data = await self._json(request)
        if not isinstance(data, dict):
            return JSONResponse({"error": "JSON object expected"}, status_code=400)
        self.config.wecom.update(str(k) for k in data.get("wecom", []))
        for token, robot in dict(data.get("dingtalk", {})).items():
            self.config.dingtalk[str(token)] = dict(robot)
        return JSONResponse({"wecom": sorted(self.config.wecom), "dingtalk": sorted(self.config.dingtalk)})

    async def _mode(self, request: Request) -> Response:
        data = await self._json(request)
        if not isinstance(data, dict):
            return JSONResponse({"error": "JSON object expected"}, status_code=400)
        for k, v in data.items():
            if k == "revoke":
                self.config.revoked.update(str(x) for x in v)
            elif k in ("fail_next", "errcode", "errmsg", "wecom_open"):
                setattr(self.config, k, type(getattr(self.config, k))(v))
            else:
                return JSONResponse({"error": f"unknown setting {k!r}"}, status_code=400)
        return JSONResponse({"fail_next": self.config.fail_next, "errcode": self.config.errcode,
                             "revoked": sorted(self.config.revoked)})

    async def _reset(self, request: Request) -> Response:
        self.config.fail_next, self.config.revoked = 0, set()
        self.messages.clear()
        self.requests.clear()
        self._recent.clear()
        return JSONResponse({"ok": True})
