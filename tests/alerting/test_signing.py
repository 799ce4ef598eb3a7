"""Request signing of the cloud SMS APIs, checked against vectors computed independently:
the string-to-sign is written out by hand from the providers' public documentation and the
HMACs are computed by the ``openssl`` command line, not by our code."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess

import pytest

from alerting.notify import sms_aliyun, sms_tencent
from alerting.notify.base import OutgoingMessage
from alerting.notify.sms_tencent import TencentSms
from alerting.templates import TEMPLATE_CODES, TEMPLATES

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def openssl_hmac(data: bytes, *, digest: str, key: bytes) -> bytes:
    argv = ["openssl", "dgst", f"-{digest}", "-mac", "HMAC", "-macopt", f"hexkey:{key.hex()}", "-binary"]
    out = subprocess.run(argv, input=data, capture_output=True, check=True)
    return out.stdout


# Alibaba Cloud's documented SendSms example parameters (签名机制).
ALIYUN_PARAMS = {
    "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
    "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
}
# written by hand: sorted, RFC 3986-encoded (UTF-8 bytes of 阿里云短信测试专用), then encoded again
ALIYUN_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
    "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF"
    "%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007"
    "%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z"
    "%26Version%3D2017-05-25"
)


def test_aliyun_string_to_sign_and_signature() -> None:
    assert sms_aliyun.string_to_sign(ALIYUN_PARAMS, "GET") == ALIYUN_STRING_TO_SIGN
    mac = openssl_hmac(ALIYUN_STRING_TO_SIGN.encode(), digest="sha1", key=b"testSecret&")
    expected = base64.b64encode(mac).decode()
    assert expected == "zJDF+Lrzhj/ThnlvIToysFRq6t4="  # also the value the documentation prints
    assert sms_aliyun.sign(ALIYUN_PARAMS, "testSecret", "GET") == expected
    signed = {**ALIYUN_PARAMS, "Signature": expected}
    assert sms_aliyun.verify_params(signed, "testSecret", "GET")
    assert not sms_aliyun.verify_params({**signed, "PhoneNumbers": "15300000002"}, "testSecret", "GET")


def test_aliyun_percent_encoding_rules() -> None:
    assert sms_aliyun.percent_encode("a b*c~d-_.") == "a%20b%2Ac~d-_."
    assert sms_aliyun.percent_encode("/=&") == "%2F%3D%26"


def test_aliyun_request_carries_every_common_parameter() -> None:
    prov = sms_aliyun.AliyunSms("http://x/aliyun", "kid", "ksecret", "区应急指挥中心")
    msg = OutgoingMessage(id="n-1", channel="sms", body="b", template="alarm",
                          params={"unit": "老王饭店", "code": "1", "_tpl": "alarm.biz.gas_leak"}, phone="13800001001")
    p = prov.build(msg, nonce="fixed")
    # the registered template the text was rendered from; our own "_" keys stay out of TemplateParam
    assert p["TemplateCode"] == TEMPLATE_CODES["aliyun"]["alarm.biz.gas_leak"]
    sent = json.loads(p["TemplateParam"])
    assert sent["unit"] == "老王饭店" and sent["code"] == "1" and set(sent) == set(TEMPLATES["alarm.biz.gas_leak"].params)
    assert {"AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
            "SignatureVersion", "Timestamp", "Version", "Signature"} <= set(p)
    assert sms_aliyun.verify_params(p, "ksecret", "POST")


def test_tencent_tc3_signature() -> None:
    secret_id, secret_key, host = "AKIDtest", "tc3secret", "sms.tencentcloudapi.com"
    ts = 1763600000  # 2025-11-20
    payload = ('{"PhoneNumberSet":["+8613800001001"],"SmsSdkAppId":"1400000001","SignName":"测试",'
               '"TemplateId":"1"}').encode()
    # hand-written per the v3 signing doc
    canonical = ("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:sms.tencentcloudapi.com\n\n"
                 "content-type;host\n" + hashlib.sha256(payload).hexdigest())
    to_sign = ("TC3-HMAC-SHA256\n1763600000\n2025-11-20/sms/tc3_request\n"
               + hashlib.sha256(canonical.encode()).hexdigest())
    k = openssl_hmac(b"2025-11-20", digest="sha256", key=b"TC3" + secret_key.encode())
    k = openssl_hmac(b"sms", digest="sha256", key=k)
    k = openssl_hmac(b"tc3_request", digest="sha256", key=k)
    expected = openssl_hmac(to_sign.encode(), digest="sha256", key=k).hex()

    sig, scope = sms_tencent.tc3_signature(secret_key, host=host, payload=payload, timestamp=ts)
    assert (sig, scope) == (expected, "2025-11-20/sms/tc3_request")
    auth = sms_tencent.authorization(secret_id, secret_key, host=host, payload=payload, timestamp=ts)
    assert auth == (f"TC3-HMAC-SHA256 Credential=AKIDtest/2025-11-20/sms/tc3_request, "
                    f"SignedHeaders=content-type;host, Signature={expected}")
    headers = {"authorization": auth, "host": host, "x-tc-timestamp": str(ts)}
    assert sms_tencent.verify_request(headers, payload, {secret_id: secret_key}) == ""
    tampered = sms_tencent.verify_request(headers, payload + b" ", {secret_id: secret_key})
    assert tampered.startswith("AuthFailure")
    assert sms_tencent.verify_request(headers, payload, {"other": "x"}) == "AuthFailure.SecretIdNotFound"


def test_tencent_request_shape() -> None:
    prov = TencentSms("https://sms.tencentcloudapi.com/", "AKID", "key", "区应急指挥中心", "1400000001")
    msg = OutgoingMessage(id="n-9", channel="sms", body="b", template="notice",
                          params={"notice": "问题督办单", "unit": "老王饭店", "code": "123456"},
                          phone="13800001001")
    payload, headers = prov.build(msg, timestamp=1763600000)
    body = json.loads(payload)
    assert body["PhoneNumberSet"] == ["+8613800001001"] and body["TemplateId"] == "2100004"
    assert body["TemplateParamSet"][0] == "问题督办单" and body["SessionContext"] == "n-9"
    assert headers["x-tc-action"] == "SendSms" and headers["x-tc-version"] == "2021-01-11"
    assert headers["host"] == "sms.tencentcloudapi.com"
    assert sms_tencent.verify_request(headers, payload, {"AKID": "key"}) == ""
