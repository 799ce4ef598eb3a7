"""GET /api/map over the sample district: the sites and the 辖区边界 (registry boundaries.geojson),
scoped as the sites are — the centre sees every township and village, a township its own."""

from __future__ import annotations

import httpx
import pytest
from map_district import PASSWORD, seed_sample

from console.app import create_app
from hazmon.settings import PostgresSettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _get(c: httpx.AsyncClient, username: str, path: str) -> httpx.Response:
    r = await c.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return await c.get(path, headers={"Authorization": f"Bearer {r.json()['token']}"})


async def test_the_map_gives_the_boundaries_scoped(pg_dsn: str) -> None:
    users = await seed_sample(pg_dsn)
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
            centre = (await _get(c, users["centre"], "/api/map")).json()
            town = (await _get(c, users["township"], "/api/map")).json()
            one = (await _get(c, users["centre"], "/api/map?township_id=T02")).json()
            biz = (await _get(c, users["business"], "/api/map")).json()
    b = centre["boundaries"]
    assert b["type"] == "FeatureCollection"
    levels = [f["properties"]["level"] for f in b["features"]]
    assert levels == ["township"] * 4 + ["village"] * 12  # townships first: the page draws them under
    first = b["features"][0]
    assert first["properties"] == {"level": "township", "id": "T01", "name": "临江街道", "township_id": "T01",
                                   "township_name": "临江街道"}
    assert first["geometry"]["type"] == "Polygon"
    ring = first["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) > 10
    village = b["features"][4]["properties"]
    assert village["level"] == "village" and village["name"] == "江滨社区"
    assert village["township_name"] == "临江街道"
    assert len(centre["sites"]) == 240 and sum(s["state"] != "normal" for s in centre["sites"]) >= 10
    # a township user: its own township and villages, as its sites
    own = {s["township_id"] for s in town["sites"]}
    assert len(own) == 1
    assert {f["properties"]["township_id"] for f in town["boundaries"]["features"]} == own
    assert len(town["boundaries"]["features"]) == 4
    assert {f["properties"]["township_id"] for f in one["boundaries"]["features"]} == {"T02"}
    # a business: its site and its site's township
    assert len(biz["sites"]) == 1
    assert [f["properties"]["id"] for f in biz["boundaries"]["features"]
            if f["properties"]["level"] == "township"] == [biz["sites"][0]["township_id"]]


async def test_a_district_without_boundaries_gives_an_empty_collection(api) -> None:  # noqa: ANN001
    r = await api.client.get("/api/map", headers=api.auth("centre1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["boundaries"] == {"type": "FeatureCollection", "features": []}
    assert body["sites"]  # the sites are drawn as before, from their coordinates
