"""Threshold overrides reach the sites they are written for.

* ``site_classes`` keys are the registry's ``sites.site_class`` values: the shipped
  ``data/detectors.yaml`` names only classes the sample district uses (its 养老院 are
  ``elderly_home``; an ``elderly_care`` block never applied), and a key no site uses is reported
  with file:line and key path — logged by the detector at start, refused by ``--check-config``.
* ``gas.power_loss`` (在线全时段): never below the offline alarm it replaces (routes.yaml inhibits
  a site's device.offline under a power loss): yellow, orange at 医院/养老 like device.offline.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from alerting.config import load_config as load_routes
from alerting.inhibit import Candidate, inhibitor
from detectors.config import DEFAULT_SEVERITY, DetectorConfig, load_config
from detectors.engine import Engine, Message
from detectors.state import DeviceMeta
from detectors.warmup import registry_meta
from hazmon.contracts import DeviceEvent, Severity
from hazmon.registry import import_registry

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "detectors.yaml"
T0 = datetime(2026, 6, 1, tzinfo=UTC)
_RANK = {Severity.BLUE: 0, Severity.YELLOW: 1, Severity.ORANGE: 2, Severity.RED: 3}

OLD_FILE = """version: 1
site_classes:
  hospital:
    severity: {device.offline: orange}
  elderly_care:
    severity: {device.offline: orange}
"""


def _sample_site_classes() -> set[str]:
    with (ROOT / "data" / "sample" / "sites.csv").open(encoding="utf-8") as fh:
        return {r["site_class"] for r in csv.DictReader(fh)}


def test_shipped_overrides_name_the_sample_districts_site_classes() -> None:
    cfg = load_config(SHIPPED)
    assert "elderly_home" in _sample_site_classes()
    assert cfg.unused_site_classes(_sample_site_classes()) == []
    # the 养老院 block applies: offline and faults one colour higher, shields reviewed after 8 h
    home = cfg.params("elderly_home", "")
    assert cfg.severity(home, "device.offline") is Severity.ORANGE
    assert cfg.severity(home, "fire.fault") is Severity.ORANGE
    assert home.fire.max_shield_s == 28800
    assert cfg.severity(cfg.params("restaurant", ""), "device.offline") is Severity.YELLOW


def test_a_key_no_site_uses_is_reported_with_file_line_and_key_path(tmp_path: Path) -> None:
    path = tmp_path / "detectors.yaml"
    path.write_text(OLD_FILE, encoding="utf-8")
    cfg = load_config(path)
    [problem] = cfg.unused_site_classes(_sample_site_classes())
    assert problem.startswith(f"{path}:5: site_classes.elderly_care: no site in the registry has site_class "
                              "'elderly_care', so these overrides never apply; did you mean 'elderly_home'?")
    assert "elderly_home" in problem.split("site classes in use: ")[1]
    # without a registry to compare with there is nothing to say; a dict config names no line
    assert cfg.unused_site_classes([]) == [] == cfg.unused_site_classes(["", ""])
    [p2] = DetectorConfig({"site_classes": {"hopsital": {}}}, source="x.yaml").unused_site_classes(["hospital"])
    assert p2.startswith("x.yaml: site_classes.hopsital: ") and "did you mean 'hospital'?" in p2


def test_power_loss_is_never_below_the_offline_alarm_it_replaces() -> None:
    assert DEFAULT_SEVERITY["gas.power_loss"] is Severity.YELLOW
    assert _RANK[DEFAULT_SEVERITY["gas.power_loss"]] >= _RANK[DEFAULT_SEVERITY["device.offline"]]
    # the inhibit rule that makes it so: a power loss mutes the site's offline alarms
    routes = load_routes(ROOT / "data" / "routes.yaml")
    offline = {"kind": "device.offline", "site_id": "S1", "domain": "gas"}
    power = {"kind": "gas.power_loss", "site_id": "S1", "domain": "gas"}
    assert inhibitor("o", offline, [Candidate("p", power)], routes.inhibit_rules) == ("power-loss", "p")
    cfg = load_config(SHIPPED)
    for cls in ("", "restaurant", "hospital", "elderly_home"):
        params = cfg.params(cls, "")
        assert _RANK[cfg.severity(params, "gas.power_loss")] >= _RANK[cfg.severity(params, "device.offline")], cls
    # through the engine: a restaurant's and a 养老院's protection device report power loss
    metas = {
        "gas-r": DeviceMeta(site_id="S00001", domain="gas", model="AG-GD200", site_class="restaurant"),
        "gas-e": DeviceMeta(site_id="S00009", domain="gas", model="AG-GD200", site_class="elderly_home"),
    }
    engine = Engine(cfg, metas.get, clock=lambda: T0)
    msgs = [Message(DeviceEvent(device_id=d, site_id=m.site_id, domain="gas", vendor="acme-gas", code="power_loss",
                                ts=T0, received_at=T0).model_dump_json().encode(), f"e:0:{i}")
            for i, (d, m) in enumerate(metas.items())]
    out = engine.process(device_events=msgs)
    sev = {e.device_id: e.severity for e in out.events if e.kind == "gas.power_loss"}
    assert sev == {"gas-r": Severity.YELLOW, "gas-e": Severity.ORANGE}


@pytest.mark.asyncio(loop_scope="session")
async def test_detector_warns_once_and_check_config_refuses(
    pg_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    await import_registry(pg_dsn, ROOT / "data" / "sample")
    old = tmp_path / "detectors.yaml"
    old.write_text(OLD_FILE, encoding="utf-8")
    cfg = load_config(old)
    conn = await asyncpg.connect(pg_dsn)
    try:
        with caplog.at_level(logging.WARNING, logger="detectors.warmup"):
            await registry_meta(conn, config=cfg)
            await registry_meta(conn, strict=True, config=cfg)  # the reload a minute later: said once
    finally:
        await conn.close()
    said = [r.getMessage() for r in caplog.records if "site_classes.elderly_care" in r.getMessage()]
    assert len(said) == 1 and f"{old}:5: site_classes.elderly_care" in said[0]

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn, "HAZMON_DETECTORS_FILE": str(path)}
        return subprocess.run([sys.executable, "-m", "hazmon.cli", "detect", "--check-config"], cwd=ROOT,
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    bad, good = await asyncio.gather(asyncio.to_thread(check, old), asyncio.to_thread(check, SHIPPED))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"{old}:5: site_classes.elderly_care: no site in the registry" in bad.stderr
    assert "thresholds refused: 1 site_classes key(s) match no site in the registry" in bad.stderr
    assert good.returncode == 0 and "thresholds ok" in good.stdout, good.stdout + good.stderr
