"""Prometheus metrics: every process serves its registry on ``metrics_port`` (0 = off).

Metric objects are defined by the module that updates them; this module only serves them.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

__all__ = ["serve_metrics"]

log = logging.getLogger(__name__)


def serve_metrics(port: int, addr: str = "0.0.0.0") -> None:
    if port:
        start_http_server(port, addr=addr)
        log.info("metrics serving port=%d", port)
