"""Tools around the product, not part of it: what stands in for the outside world.

| module | what it holds |
|---|---|
| :mod:`sim.devices` | the device simulator: registered devices publishing over MQTT in their vendor's format |
| :mod:`sim.sample` | the deterministic sample district (``hazmon registry sample``) |
| :mod:`sim.gateway` | the SMS gateway simulator (``hazmon sms-sim``) |
| :mod:`sim.demo`, :mod:`sim.demo_state` | ``hazmon demo``: the whole pipeline on an embedded stack |
| :mod:`sim.harness` | the whole pipeline as owned processes (end-to-end tests, bench/bench_pipeline.py) |
| :mod:`sim.cli` | ``hazmon simulate``, ``hazmon sms-sim``, ``hazmon registry sample`` |

This package may import every stage; no product package (``hazmon``, ``ingest``, ``detectors``,
``alerting``, ``console``) imports it (an import-linter contract in pyproject.toml).
"""
