"""现场照片 and 到场签到 (issue 14): POST /api/attachments, GET /api/attachments/{id}, the
alert-level 反馈 with attachment_ids, check_attachments, POST /api/alerts/{id}/checkin and the
维保到场 with a position — on PostgreSQL (a fresh district per test) and the console app in
process; the interrupted upload against a real uvicorn (ConsoleServer), whose socket is cut
half-way. Every bad input: a Chinese error, an ``attachment.refused`` audit row, no row stored."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import json
import socket
import time
from datetime import timedelta

import asyncpg
import pytest
from console_district import NOW, sessions_for
from console_server import ConsoleServer
from PIL import Image

from alerting import lifecycle
from console.attachments import MAX_BYTES, AttachmentRefused, check_attachments


def jpeg_with_exif(w: int = 64, h: int = 32) -> bytes:
    """A camera-like JPEG: Orientation 6 (held upright: the pixels are stored rotated), the make
    and model, and a GPS position — what must not leave the server."""
    img = Image.new("RGB", (w, h), (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, w // 2, h))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestPhoneMaker"
    exif[0x0110] = "TP-1"
    exif[0x8825] = {1: "N", 2: (30.0, 12.0, 36.0), 3: "E", 4: (120.0, 6.0, 0.0)}
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert b"TestPhoneMaker" in data and Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    return data


def png_bytes(w: int, h: int, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (w, h), (0, 128, 0, 128) if mode == "RGBA" else 0).save(out, "PNG")
    return out.getvalue()


async def _upload(
    api,
    user: str,
    data: bytes,
    *,
    alert_id: str | None = None,
    name: str = "photo.jpg",
    ctype: str = "image/jpeg",
    **fields: str,
):
    form = {**({"alert_id": alert_id} if alert_id else {}), **fields}
    return await api.client.post(
        "/api/attachments", files={"file": (name, data, ctype)}, data=form, headers=api.auth(user)
    )


async def _count(api, sql: str, *args) -> int:
    async with api.pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def _refusals(api) -> list[dict]:
    async with api.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT actor, target, detail FROM console_audit WHERE action = 'attachment.refused' ORDER BY id"
        )
    return [{"actor": r["actor"], "target": r["target"], **json.loads(r["detail"])} for r in rows]


async def test_a_photo_is_re_encoded_without_exif_and_served_to_who_may_see_the_alarm(fresh_api):
    api = fresh_api
    gas = api.seeded.alerts["gas_s1"]
    raw = jpeg_with_exif()
    r = await _upload(
        api, "grid-v1", raw, alert_id=gas, name="IMG_0001.HEIC", ctype="application/octet-stream"
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["attachment_id"].startswith("att-") and out["content_type"] == "image/jpeg"
    assert (out["width"], out["height"]) == (32, 64)  # orientation applied to the pixels
    served = await api.client.get(f"/api/attachments/{out['attachment_id']}", headers=api.auth("biz-s1"))
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert "private" in served.headers["cache-control"]
    body = served.content
    assert hashlib.sha256(body).hexdigest() == out["sha256"] and len(body) == out["bytes"]
    img = Image.open(io.BytesIO(body))
    assert (
        img.format == "JPEG"
        and len(img.getexif()) == 0
        and b"TestPhoneMaker" not in body
        and b"Exif" not in body
    )
    # turned 90° clockwise as Orientation 6 asks: the stored left (blue) half is on top
    assert img.getpixel((16, 4))[2] > 150 and img.getpixel((16, 60))[0] > 150
    stored = await _count(api, "SELECT sha256 FROM attachments WHERE id = $1", out["attachment_id"])
    assert stored == out["sha256"]
    assert (
        await _count(
            api,
            "SELECT count(*) FROM console_audit WHERE action = 'attachment.upload' AND target = $1",
            out["attachment_id"],
        )
        == 1
    )
    listed = (await api.client.get(f"/api/alerts/{gas}/attachments", headers=api.auth("centre1"))).json()
    assert [x["attachment_id"] for x in listed["items"]] == [out["attachment_id"]]
    assert listed["items"][0]["uploaded_by_zh"] == "grid-v1"
    # another township's user and a vendor: the same 404 in words as for an unknown id
    for user in ("town-t2", "maint-m1"):
        r = await api.client.get(f"/api/attachments/{out['attachment_id']}", headers=api.auth(user))
        assert r.status_code == 404 and r.json()["detail"] == "未找到该照片（不存在或不在您的查看范围内）", (
            user
        )
    r = await api.client.get("/api/attachments/att-nosuchphoto", headers=api.auth("centre1"))
    assert r.status_code == 404 and "未找到该照片" in r.json()["detail"]
    r = await api.client.get(f"/api/attachments/{out['attachment_id']}", headers=api.auth("vendor-acme"))
    assert r.status_code == 403
    reasons = [x["reason"] for x in await _refusals(api)]
    assert reasons == ["out_of_scope", "out_of_scope", "unknown"]


async def test_a_png_with_alpha_is_flattened_to_jpeg(fresh_api):
    api = fresh_api
    r = await _upload(
        api,
        "centre1",
        png_bytes(40, 30),
        alert_id=api.seeded.alerts["fire_s3"],
        name="x.txt",
        ctype="text/plain",
    )
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (40, 30)
    assert await _count(api, "SELECT source_format FROM attachments") == "PNG"


@pytest.mark.parametrize(
    ("case", "status", "words", "reason"),
    [
        ("text named .jpg", 415, "不支持的文件类型", "not_image"),
        ("gif", 415, "不支持的文件类型", "not_image"),
        ("truncated jpeg", 400, "照片文件不完整或已损坏", "broken"),
        ("empty", 400, "未收到照片内容", "empty"),
        ("50 MP png", 413, "照片像素太多", "too_many_pixels"),
        ("11 MB", 413, "照片太大", "too_large"),
    ],
)
async def test_bad_files_are_refused_in_chinese_audited_and_not_stored(
    fresh_api, case, status, words, reason
):
    api = fresh_api
    gas = api.seeded.alerts["gas_s1"]
    if case == "text named .jpg":
        data = "这不是照片，是一段文字。".encode() * 20
    elif case == "gif":
        out = io.BytesIO()
        Image.new("P", (8, 8)).save(out, "GIF")
        data = out.getvalue()
    elif case == "truncated jpeg":
        full = jpeg_with_exif(400, 300)
        data = full[: len(full) // 2]
    elif case == "empty":
        data = b""
    elif case == "50 MP png":
        data = png_bytes(10000, 5000, "1")  # a few KB on the wire, 50 million pixels decoded
        assert len(data) < 1_000_000
    else:
        data = jpeg_with_exif() + b"\0" * (MAX_BYTES + 1024 * 1024)
    r = await _upload(api, "grid-v1", data, alert_id=gas)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert await _count(api, "SELECT count(*) FROM attachments") == 0
    refused = await _refusals(api)
    assert [(x["reason"], x["actor"], x["target"]) for x in refused][-1:] == [
        (reason, "grid_member:grid-v1", gas if case not in ("11 MB",) else "")
    ]
    assert refused[-1]["message"] == r.json()["detail"]


async def test_an_incomplete_body_another_villages_alarm_and_bad_sessions_are_refused(fresh_api, clock):
    api = fresh_api
    gas, fire = api.seeded.alerts["gas_s1"], api.seeded.alerts["fire_s3"]
    photo = jpeg_with_exif()
    # the closing boundary never came: the phone lost its signal (the body ends mid-file)
    b = "----hazmonboundary"
    body = (
        f'--{b}\r\nContent-Disposition: form-data; name="alert_id"\r\n\r\n{gas}\r\n--{b}\r\n'
        f'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + photo[:300]
    r = await api.client.post(
        "/api/attachments",
        content=body,
        headers={**api.auth("grid-v1"), "Content-Type": f"multipart/form-data; boundary={b}"},
    )
    assert r.status_code == 400 and r.json()["detail"] == "上传不完整：照片未传完，请重新上传"
    r = await api.client.post(
        "/api/attachments", content=photo, headers={**api.auth("grid-v1"), "Content-Type": "image/jpeg"}
    )
    assert r.status_code == 415 and r.json()["detail"] == "请以表单方式上传照片"
    # 河西村's alarm for 东门社区's grid member: refused as not theirs, audited twice (the alert's
    # own out-of-scope row and the upload's)
    r = await _upload(api, "grid-v1", photo, alert_id=fire)
    assert r.status_code == 403 and r.json()["detail"] == "无权上传：该报警不在您负责的村（社区）"
    r = await _upload(api, "town-t1", photo, alert_id=fire)
    assert r.status_code == 404 and "未找到该报警" in r.json()["detail"]
    r = await _upload(api, "grid-v1", photo)
    assert r.status_code == 422 and "报警或隐患" in r.json()["detail"]
    r = await _upload(api, "grid-v1", photo, alert_id="bad id;drop")
    assert r.status_code == 422
    # a forged token, then a session that has expired
    r = await api.client.post(
        "/api/attachments",
        files={"file": ("a.jpg", photo, "image/jpeg")},
        data={"alert_id": gas},
        headers={"Authorization": "Bearer forged-token-123"},
    )
    assert r.status_code == 401 and r.json()["detail"] == "会话已过期，请重新登录"
    async with api.pool.acquire() as conn:
        short = (await sessions_for(conn, ["grid-v1"], now=NOW, ttl_s=60))["grid-v1"][0]
    clock.now = NOW + timedelta(minutes=5)
    r = await api.client.post(
        "/api/attachments",
        files={"file": ("a.jpg", photo, "image/jpeg")},
        data={"alert_id": gas},
        headers={"Authorization": f"Bearer {short}"},
    )
    assert r.status_code == 401 and r.json()["detail"] == "会话已过期，请重新登录"
    r = await api.client.post(
        "/api/attachments",
        files={"file": ("a.jpg", photo, "image/jpeg")},
        data={"alert_id": gas},
        headers=api.auth("vendor-acme"),
    )
    assert r.status_code == 403
    assert await _count(api, "SELECT count(*) FROM attachments") == 0
    refused = await _refusals(api)
    assert [x["reason"] for x in refused] == [
        "incomplete",
        "not_multipart",
        "out_of_scope",
        "out_of_scope",
        "no_owner",
        "bad_id",
        "session",
        "session",
        "role",
    ]
    assert refused[6]["actor"] == "anonymous" and refused[6]["message"] == "会话已过期，请重新登录"
    assert (
        await _count(
            api,
            "SELECT count(*) FROM console_audit WHERE action = 'attachment.refused' AND target = $1",
            fire,
        )
        == 2
    )


async def test_feedback_takes_attachment_ids_of_its_own_alert_only(fresh_api):
    api = fresh_api
    gas, elev = api.seeded.alerts["gas_s1"], api.seeded.alerts["elev_s2"]
    mine = (await _upload(api, "grid-v1", jpeg_with_exif(), alert_id=gas)).json()["attachment_id"]
    other = (await _upload(api, "grid-v1", jpeg_with_exif(), alert_id=elev)).json()["attachment_id"]
    async with api.pool.acquire() as conn:
        await lifecycle.verify(conn, gas, actor="centre:centre1", now=NOW, verdict="real", reason="现场核实")
        await lifecycle.dispatch(conn, gas, actor="centre:centre1", now=NOW, units=["东门社区"])
        assert await check_attachments(conn, [mine, mine], alert_id=gas) == [mine]
        with pytest.raises(AttachmentRefused) as exc:
            await check_attachments(conn, [mine, other], alert_id=gas)
        assert exc.value.status_code == 422 and exc.value.detail == "第2张照片不属于该报警，请在本页重新上传"
        with pytest.raises(AttachmentRefused) as exc:
            await check_attachments(conn, ["att-unknown"], hazard_id="HZ-S1")
        assert exc.value.detail == "第1张照片不存在，请重新上传" and exc.value.reason == "unknown"
    url = f"/api/alerts/{gas}/feedback"
    r = await api.client.post(
        url, json={"note": "关阀通风", "attachment_ids": [other]}, headers=api.auth("grid-v1")
    )
    assert r.status_code == 422 and "不属于该报警" in r.json()["detail"]
    r = await api.client.post(
        url, json={"note": "关阀通风", "attachment_ids": ["att-gone"]}, headers=api.auth("grid-v1")
    )
    assert r.status_code == 422 and r.json()["detail"] == "第1张照片不存在，请重新上传"
    page = (await api.client.get(f"/api/alerts/{gas}", headers=api.auth("centre1"))).json()
    assert page["phase"] == "dispatched"  # nothing applied by the refused ones
    r = await api.client.post(
        url, json={"note": "关阀通风，浓度已降", "attachment_ids": [mine]}, headers=api.auth("grid-v1")
    )
    assert r.status_code == 200, r.text
    page = (await api.client.get(f"/api/alerts/{gas}", headers=api.auth("centre1"))).json()
    fb = [t for t in page["transitions"] if t["action"] == "feedback" and t["outcome"] == "applied"]
    assert page["phase"] == "feedback" and fb[0]["photo_ref"] == mine
    assert [x["reason"] for x in await _refusals(api)] == ["other_owner", "unknown"]


async def test_checkin_stores_the_position_when_granted_and_says_so_when_not(fresh_api):
    api = fresh_api
    gas, elev, fire = (api.seeded.alerts[k] for k in ("gas_s1", "elev_s2", "fire_s3"))
    async with api.pool.acquire() as conn:
        await lifecycle.verify(conn, gas, actor="centre:centre1", now=NOW, verdict="real", reason="核实")
        await lifecycle.dispatch(conn, gas, actor="centre:centre1", now=NOW, units=["东门社区"])
    r = await api.client.post(
        f"/api/alerts/{gas}/checkin",
        json={"lat": 30.2001, "lon": 120.1002, "accuracy_m": 12.5},
        headers=api.auth("grid-v1"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["handling"] is True and r.json()["message"] == "已签到（已定位，精度约12米）"
    r = await api.client.post(f"/api/alerts/{elev}/checkin", json={}, headers=api.auth("grid-v1"))
    assert r.status_code == 200 and r.json()["message"] == "已签到（未获取定位（未授权或无信号））"
    r = await api.client.post(
        f"/api/alerts/{fire}/checkin", json={"lat": 1, "lon": 2, "accuracy_m": 3}, headers=api.auth("grid-v1")
    )
    assert r.status_code == 403 and r.json()["detail"] == "无权查看：该报警不在您负责的村（社区）"
    r = await api.client.post(
        f"/api/alerts/{gas}/checkin", json={"lat": 91, "lon": 2}, headers=api.auth("grid-v1")
    )
    assert r.status_code == 422
    async with api.pool.acquire() as conn:
        rows = await conn.fetch("SELECT alert_id, kind, lat, lon, accuracy_m FROM field_checkins ORDER BY id")
        phase = await conn.fetchval("SELECT phase FROM alerts WHERE id = $1", gas)
    assert [tuple(r) for r in rows] == [
        (gas, "checkin", 30.2001, 120.1002, 12.5),
        (elev, "checkin", None, None, None),
    ]
    assert phase == "handling"
    listed = (await api.client.get(f"/api/alerts/{gas}/checkins", headers=api.auth("biz-s1"))).json()
    assert listed["items"][0]["accuracy_m"] == 12.5 and listed["items"][0]["kind_zh"] == "到场签到"


async def test_a_maintainer_records_its_arrival_with_its_position(fresh_api):
    api = fresh_api
    aid = api.seeded.alerts["elev_s2"]
    async with api.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO lift_arrivals (alert_id, device_id, maintainer_id, started_at, due_at)"
            " VALUES ($1, 'E1', 'M1', $2, $3)",
            aid,
            NOW - timedelta(minutes=20),
            NOW + timedelta(minutes=10),
        )
    r = await api.client.post(
        f"/api/alerts/{aid}/arrival",
        json={"lat": 30.21, "lon": 120.12, "accuracy_m": 8},
        headers=api.auth("maint-m1"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["checkin"]["accuracy_m"] == 8 and r.json()["applied"] is True
    r = await api.client.post(f"/api/alerts/{aid}/arrival", json={}, headers=api.auth("maint-m1"))
    assert r.status_code == 409  # once: and no second position stored
    assert await _count(api, "SELECT count(*) FROM field_checkins WHERE kind = 'arrival'") == 1


def test_an_upload_cut_off_half_way_leaves_no_row_and_an_audit_row(fresh_api):
    api = fresh_api
    gas = api.seeded.alerts["gas_s1"]
    token = api.tokens["grid-v1"][0]
    srv = ConsoleServer(api.dsn).start()
    try:
        b = "----cut"
        head = (
            f'--{b}\r\nContent-Disposition: form-data; name="alert_id"\r\n\r\n{gas}\r\n--{b}\r\n'
            f'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        ).encode()
        photo = jpeg_with_exif(800, 600)
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(
                (
                    f"POST /api/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: multipart/form-data; boundary={b}\r\n"
                    f"Content-Length: {len(head) + len(photo) + 100}\r\n\r\n"
                ).encode()
                + head
                + photo[: len(photo) // 2]
            )
            time.sleep(0.5)
        deadline = time.monotonic() + 10

        async def look() -> tuple[int, list]:
            conn = await asyncpg.connect(api.dsn)
            try:
                n = await conn.fetchval("SELECT count(*) FROM attachments")
                rows = await conn.fetch(
                    "SELECT detail->>'reason' AS r FROM console_audit WHERE action = 'attachment.refused'"
                )
                return n, [r["r"] for r in rows]
            finally:
                await conn.close()

        while True:
            with concurrent.futures.ThreadPoolExecutor(1) as ex:
                n, reasons = ex.submit(lambda: asyncio.run(look())).result(timeout=30)
            if reasons or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert n == 0 and reasons == ["interrupted"]
    finally:
        srv.stop()


async def test_a_hazard_photo_goes_to_who_may_see_the_hazard(fresh_api):
    """整改 evidence (the hazard ledger's photos): 城关镇 uploads to its 老王饭店 hazard; 新河街道 and a
    维保单位 (no hazards to read) neither upload nor read it."""
    api = fresh_api
    r = await _upload(api, "town-t1", jpeg_with_exif(), hazard_id="HZ-S1")
    assert r.status_code == 201, r.text
    att = r.json()["attachment_id"]
    assert (await api.client.get(f"/api/attachments/{att}", headers=api.auth("grid-v1"))).status_code == 200
    for user in ("town-t2", "maint-m1"):
        r = await api.client.get(f"/api/attachments/{att}", headers=api.auth(user))
        assert r.status_code == 404, user
        r = await _upload(api, user, jpeg_with_exif(), hazard_id="HZ-S1")
        assert r.status_code == 404 and r.json()["detail"] == "未找到该隐患（不存在或不在您的查看范围内）", user
    gas = api.seeded.alerts["gas_s1"]
    r = await _upload(api, "centre1", jpeg_with_exif(), hazard_id="HZ-S1", alert_id=gas)
    assert r.status_code == 422 and r.json()["detail"] == "请指明照片所属的报警或隐患（二选一）"
    async with api.pool.acquire() as conn:
        assert await check_attachments(conn, [att], hazard_id="HZ-S1") == [att]
        with pytest.raises(AttachmentRefused):
            await check_attachments(conn, [att], alert_id=gas)
        assert await conn.fetchval("SELECT count(*) FROM attachments") == 1
