"""The channels implement the declared interfaces (alerting/notify/base.py: Notifier;
alerting/notify/sms.py: SmsProvider) explicitly, so the outbox reads their capabilities as
attributes and mypy checks them — no ``getattr`` with a default that hides a misspelt name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import alerting.notify
from alerting.errors import ProviderError
from alerting.notify.base import Notifier, OutgoingMessage, SendResult
from alerting.notify.console import ConsoleNotifier
from alerting.notify.sms import SmsNotifier, SmsProvider
from alerting.notify.sms_aliyun import AliyunSms
from alerting.notify.sms_tencent import TencentSms
from alerting.notify.sms_webhook import WebhookSms

ROOT = Path(__file__).resolve().parents[2]


def _classes() -> list[type]:
    out = []
    for mod in pkgutil.iter_modules(alerting.notify.__path__):
        m = importlib.import_module(f"alerting.notify.{mod.name}")
        out += [c for _, c in inspect.getmembers(m, inspect.isclass) if c.__module__ == m.__name__]
    return out


def test_every_channel_and_provider_declares_its_interface() -> None:
    classes = _classes()
    concrete = [c for c in classes if not inspect.isabstract(c)]
    channels = [c for c in concrete if "send" in vars(c)]
    providers = [c for c in concrete if "send_sms" in vars(c)]
    assert {c.__name__ for c in channels} >= {"SmsNotifier", "ConsoleNotifier", "WebhookNotifier"}
    assert {c.__name__ for c in providers} == {"AliyunSms", "TencentSms", "WebhookSms"}
    assert all(issubclass(c, Notifier) for c in channels), channels
    assert all(issubclass(c, SmsProvider) for c in providers), providers


def test_capabilities_are_attributes_not_looked_up() -> None:
    for path in [ROOT / "alerting/outbox.py", *(ROOT / "alerting/notify").glob("*.py")]:
        assert not re.search(r"getattr\(", path.read_text(encoding="utf-8")), path
    providers = (WebhookSms("http://gw.test", "s", "签名"),
                 TencentSms("http://tc.test", "id", "k", "签名", "1400"),
                 AliyunSms("http://ali.test", "id", "k", "签名"))
    webhook, tencent, aliyun = (SmsNotifier(p) for p in providers)
    assert (webhook.max_batch, webhook.per_message_text, webhook.provider_name) == (100, True, "webhook")
    assert (tencent.max_batch, tencent.per_message_text, tencent.provider_name) == (200, False, "tencent")
    assert (aliyun.max_batch, aliyun.per_message_text, aliyun.provider_name) == (1, False, "aliyun")
    assert webhook.max_in_flight == 32
    console = ConsoleNotifier()
    got = (console.max_batch, console.per_message_text, console.max_in_flight, console.provider_name)
    assert got == (1, False, 0, "console")


async def test_a_channel_without_a_batch_request_sends_one_by_one() -> None:
    class Flaky(Notifier):
        name = "flaky"

        async def send(self, msg: OutgoingMessage) -> SendResult:
            if msg.phone == "13800000000":
                raise ProviderError("flaky: refused", retryable=False)
            return SendResult(self.name, f"m-{msg.id}")

    msgs = [OutgoingMessage(id=str(i), channel="flaky", body="b", template="alarm", phone=p)
            for i, p in enumerate(["13900000000", "13800000000", "13700000000"])]
    got = await Flaky().send_batch(msgs)
    assert [type(g) for g in got] == [SendResult, ProviderError, SendResult]
    assert [g.message_id for g in got if isinstance(g, SendResult)] == ["m-0", "m-2"]


def test_a_channel_must_implement_send() -> None:
    class Nothing(Notifier):
        name = "nothing"

    with pytest.raises(TypeError):
        Nothing()  # type: ignore[abstract]
