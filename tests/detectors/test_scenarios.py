"""Every labelled scenario yields exactly its expected events (pure engine, no services)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from det_scenarios import all_paths, episodes, key_of, load, run_engine

PATHS = all_paths()


def test_every_domain_has_scenarios() -> None:
    domains = {p.parent.name for p in PATHS}
    assert {"gas", "elevator", "fire", "device"} <= domains


@pytest.mark.parametrize("path", PATHS, ids=[f"{p.parent.name}/{p.stem}" for p in PATHS])
def test_scenario(path: Path) -> None:
    sc = load(path)
    _, events, dead = run_engine(sc)
    eps = episodes(events)
    got = sorted((key_of(e) for e in eps.values()), key=repr)
    want = sorted((key_of(e) for e in sc.expect), key=repr)
    assert got == want, f"{sc.name}\n got: {got}\nwant: {want}"
    for rec in eps.values():  # one announcement per episode, at most one resolution
        assert rec["firing"] == 1 and rec["resolved"] <= 1, rec
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert sorted(d.reason.value for d in dead) == sorted(doc.get("expect_deadletters") or [])


@pytest.mark.parametrize("path", PATHS, ids=[f"{p.parent.name}/{p.stem}" for p in PATHS])
def test_scenario_independent_of_batching(path: Path) -> None:
    """Micro-batch boundaries must not change decisions (replays regroup messages)."""
    sc = load(path)
    _, one, _ = run_engine(sc)
    sc.batch = 1
    _, single, _ = run_engine(sc)
    sc.batch = 10_000
    _, whole, _ = run_engine(sc)
    assert episodes(one) == episodes(single) == episodes(whole)
