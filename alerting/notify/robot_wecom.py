"""企业微信 群机器人 (WeCom group robot): ``POST …/cgi-bin/webhook/send?key=KEY``.

The body is JSON ``{"msgtype": "markdown", "markdown": {"content": …}}`` (content at most
4096 bytes, UTF-8); the answer ``{"errcode": 0, "errmsg": "ok"}``. The key in the address is
the robot's only credential (no signature). Codes handled (the provider's published error
codes): 45009 — over the robot's 20 messages a minute — and -1 (system busy) are retried;
93000 (invalid webhook URL: key wrong or robot removed), 40008 (invalid message type),
40058 (invalid parameter), 44004 (empty content) and any other code are permanent.
The markdown colours are the three the client renders: ``warning`` (orange), ``info``
(green), ``comment`` (grey).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from alerting.notify.base import OutgoingMessage
from alerting.notify.robot import RobotAddress, RobotNotifier, robot_markdown

__all__ = ["WecomRobot", "MAX_CONTENT_BYTES"]

MAX_CONTENT_BYTES = 4096


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes at a line end (the link line is kept whole)."""
    if len(text.encode()) <= limit:
        return text
    lines = text.split("\n")
    tail = lines[-1] if lines[-1].startswith("[") else ""
    body = lines[:-1] if tail else lines
    while body and len("\n".join([*body, "…", tail]).encode()) > limit:
        body.pop()
    return "\n".join([*body, "…", tail]) if tail else "\n".join([*body, "…"])


class WecomRobot(RobotNotifier):
    name = "wecom"
    token_param = "key"
    retryable_codes = {45009: 60.0, -1: 5.0}

    def request(self, addr: RobotAddress, msg: OutgoingMessage) -> tuple[str, bytes]:
        title, text, colour = robot_markdown(msg, self.console_url)
        if colour in ("红色", "橙色"):  # the title line in the client's warning colour
            first, _, rest = text.partition("\n")
            text = f'### <font color="warning">{first.removeprefix("### ")}</font>\n{rest}'
        body = {"msgtype": "markdown", "markdown": {"content": _fit(text, MAX_CONTENT_BYTES)}}
        return (f"{self.url}?{urlencode({'key': addr.token})}",
                json.dumps(body, ensure_ascii=False).encode())
