"""The end-to-end harness fixture: one whole pipeline (mosquitto → 2 bridges → Tansu on S3 →
detector → private PostgreSQL → alerting → SMS simulator) shared by the e2e tests of a session.

Each test works on its own devices/time range and reconciles only what it published, so the
pipeline can be shared; a test that leaves a component down does not poison the next one
(:meth:`PipelineProcesses.ensure_running` at the start of every test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.harness import PipelineProcesses


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineProcesses]:
    run_dir: Path = tmp_path_factory.mktemp("e2e")
    p = PipelineProcesses(run_dir)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def live_pipeline(pipeline: PipelineProcesses) -> PipelineProcesses:
    started = pipeline.ensure_running()
    if started:
        print(f"restarted before the test: {', '.join(started)}")
    return pipeline
