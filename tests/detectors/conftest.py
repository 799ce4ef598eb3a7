"""Fixtures for the detector tests (helpers live in det_kafka.py and det_scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmon.settings import KafkaSettings, PostgresSettings, Settings
from hazmon.topics import Topics


@pytest.fixture
def det_settings(kafka_bootstrap: str, topics: Topics, pg_dsn: str, run_dir: Path) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topics.prefix),
        postgres=PostgresSettings(dsn=pg_dsn),
        run_dir=run_dir,
        detectors_file=Path("/nonexistent/detectors.yaml"),  # built-in defaults
    )

