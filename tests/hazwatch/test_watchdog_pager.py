"""The watchdog's pages in the providers' real request shapes (webhook gateway, 阿里云, 腾讯云 SMS;
阿里云 and 腾讯云 voice), signed with alerting's adapters and received by the gateway simulator
over HTTP, which verifies each signature and renders the registered template; and the retry
rules: a failing channel is tried again while the other one has already reached the operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from alerting.notify.sms import make_sms_notifier
from alerting.notify.voice import make_voice_notifier
from hazwatch import texts
from hazwatch.pager import Pager
from sim.gateway import SimulatorConfig, SmsSimulator

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.watchdog]

T0 = datetime(2026, 12, 7, 0, 59, tzinfo=UTC)
SMS_PHONE, VOICE_PHONE = "13900000777", "13900000778"


@pytest.fixture
async def gateway() -> AsyncIterator[SmsSimulator]:
    sim = SmsSimulator(SimulatorConfig(webhook_secret="s3cret", keys={"kid": "s3cret"}))
    await sim.start()
    yield sim
    await sim.stop()


def _pager(sim: SmsSimulator, sms_provider: str, voice_provider: str) -> Pager:
    path = {"webhook": "/webhook/sms", "aliyun": "/aliyun", "tencent": "/tencent"}[sms_provider]
    sms = SimpleNamespace(provider=sms_provider, url=sim.url + path, access_key_id="kid",
                          access_key_secret=SecretStr("s3cret"), sign_name="区应急指挥中心", app_id="1400000001",
                          timeout_s=3.0, max_in_flight=2)
    voice = SimpleNamespace(provider=voice_provider, url="", access_key_id="kid", access_key_secret=SecretStr("s3cret"),
                            caller_number="", app_id="1400000002", play_times=2, timeout_s=3.0, max_in_flight=2)
    return Pager(instance="wd-1", sms=make_sms_notifier(sms), voice=make_voice_notifier(voice, sim.url + path),
                 sms_phone=SMS_PHONE, voice_phone=VOICE_PHONE, sms_provider=sms_provider)


async def _get(sim: SmsSimulator, path: str) -> Any:
    async with httpx.AsyncClient() as c:
        return (await c.get(sim.url + path)).json()


@pytest.mark.parametrize(("sms_provider", "voice_provider"),
                         [("webhook", "aliyun"), ("aliyun", "aliyun"), ("tencent", "tencent")])
async def test_a_page_and_its_recovery_in_each_providers_shape(gateway: SmsSimulator, sms_provider: str,
                                                              voice_provider: str) -> None:
    pager = _pager(gateway, sms_provider, voice_provider)
    try:
        pager.page("db_refuses_writes", T0, T0)
        assert await pager.flush(T0) == 2 and pager.pending == []
        pager.recovered("db_refuses_writes", T0, T0 + timedelta(minutes=3), T0 + timedelta(minutes=3))
        assert await pager.flush(T0 + timedelta(minutes=3)) == 1
    finally:
        for n in (pager.sms, pager.voice):
            await n.aclose()  # type: ignore[union-attr]
    sms = await _get(gateway, f"/messages?phone={SMS_PHONE}")
    assert [m["body"] for m in sms] == [
        "监测系统故障：数据库拒绝写入，报警无法记录和发出（12月7日08:59起）。请立即组织检修，检修期间人工值守。",
        "监测系统恢复：数据库写入已恢复正常（12月7日08:59至09:02）。请核查故障期间的报警是否均已发出并处置。"]
    assert [m["provider"] for m in sms] == [sms_provider] * 2
    calls = await _get(gateway, f"/voice/calls?number={VOICE_PHONE}")
    assert [(c["provider"], c["template"], c["script"]) for c in calls] == [
        (voice_provider, "voice_watchdog", "这里是区应急指挥中心监测系统看门狗。数据库拒绝写入，报警无法记录和发出。"
                                           "请立即组织检修，检修期间人工值守。")]


async def test_a_failing_sms_channel_is_retried_and_the_call_goes_out_at_once(gateway: SmsSimulator) -> None:
    pager = _pager(gateway, "webhook", "aliyun")
    gateway.config.fail_next = 10**6  # the SMS provider fails every request
    try:
        pager.page("sms_failing", T0, T0)
        assert await pager.flush(T0) == 1  # the call
        assert [p.msg.channel for p in pager.pending] == ["sms"]
        assert await pager.flush(T0 + timedelta(seconds=2)) == 0 and pager.pending[0].attempts == 1  # not due yet
        assert await pager.flush(T0 + timedelta(seconds=5)) == 0 and pager.pending[0].attempts == 2
        # over before the SMS got through: the page is dropped, the one 恢复 queued (SMS works again)
        gateway.config.fail_next = 0
        pager.recovered("sms_failing", T0, T0 + timedelta(seconds=40), T0 + timedelta(seconds=40))
        assert [(p.kind, p.msg.channel) for p in pager.pending] == [("recovered", "sms")]
        assert await pager.flush(T0 + timedelta(seconds=40)) == 1
    finally:
        for n in (pager.sms, pager.voice):
            await n.aclose()  # type: ignore[union-attr]
    sms = await _get(gateway, f"/messages?phone={SMS_PHONE}")
    assert [m["body"][:7] for m in sms] == ["监测系统恢复："]
    assert len(await _get(gateway, f"/voice/calls?number={VOICE_PHONE}")) == 1
    assert len(texts.PROBLEMS) == 7
