"""钉钉 自定义机器人 (DingTalk custom robot): ``POST …/robot/send?access_token=TOKEN``.

Security setting 加签: ``sign = urlencode(base64(HMAC-SHA256(key=secret,
msg=f"{timestamp}\\n{secret}")))`` with ``timestamp`` in milliseconds, both added to the query
(``&timestamp=…&sign=…``); the provider refuses a timestamp more than an hour from its clock.
Body: ``{"msgtype": "markdown", "markdown": {"title": …, "text": …}}``; answer
``{"errcode": 0, "errmsg": "ok"}``. A robot may also require keywords (自定义关键词): the title
carries "报警", the word a duty group's robot is usually set up with.

Codes handled (the provider's published codes): 130101 and 410100 — over 20 messages a minute,
after which the robot is held back for 10 minutes — and -1 (system busy) are retried;
310000 (sign not match / keywords not in content / IP not in whitelist / timestamp invalid),
300001 and 300005 (token invalid / does not exist), 400102 (robot stopped) and any other code
are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

from alerting.errors import ProviderError
from alerting.notify.base import OutgoingMessage
from alerting.notify.robot import RobotAddress, RobotNotifier, robot_markdown

__all__ = ["DingtalkRobot", "sign", "verify"]

#: the provider's window on ``timestamp`` (1 hour either way)
TIMESTAMP_WINDOW_MS = 3600 * 1000


def sign(timestamp_ms: int, secret: str) -> str:
    """The 加签 signature, base64 (URL-encoding is the query's, :func:`urllib.parse.urlencode`)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(timestamp: str, got_sign: str, secret: str, now_ms: int) -> str:
    """Server side (the simulator): "" when valid, else what 钉钉 answers with 310000."""
    try:
        ts = int(timestamp)
    except ValueError:
        return "timestamp invalid"
    if abs(now_ms - ts) > TIMESTAMP_WINDOW_MS:
        return "timestamp invalid, more: 请求时间与服务器时间相差超过1小时"
    if not hmac.compare_digest(got_sign, sign(ts, secret)):
        return "sign not match"
    return ""


class DingtalkRobot(RobotNotifier):
    name = "dingtalk"
    token_param = "access_token"
    retryable_codes = {130101: 600.0, 410100: 600.0, -1: 5.0}

    def __init__(self, url: str, *, console_url: str = "", timeout_s: float = 5.0, per_minute: int = 20,
                 max_in_flight: int = 8, clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        super().__init__(url, console_url=console_url, timeout_s=timeout_s, per_minute=per_minute,
                         max_in_flight=max_in_flight, clock=clock)
        #: the wall clock of ``timestamp`` (ms), apart from the limiter's monotonic clock
        self._wall_ms = wall_ms

    def request(self, addr: RobotAddress, msg: OutgoingMessage) -> tuple[str, bytes]:
        if not addr.secret:
            # every duty-group robot of ours is set up with 加签; one without would be refused
            raise ProviderError("dingtalk: 未登记加签密钥 (SEC…)", retryable=False)
        title, text, _colour = robot_markdown(msg, self.console_url)
        ts = self._wall_ms()
        query = urlencode({"access_token": addr.token, "timestamp": str(ts), "sign": sign(ts, addr.secret)})
        body = {"msgtype": "markdown", "markdown": {"title": title[:64], "text": text}}
        return f"{self.url}?{query}", json.dumps(body, ensure_ascii=False).encode()
