"""Alerting's exceptions, under :class:`hazmon.errors.HazmonError`.

Refused state changes (closing an alert someone already closed) are *not* exceptions: they
are recorded in the audit table and returned as ``applied=False`` so both attempts stay on
record. Exceptions are for what never reached the state machine: an unknown id, bad input.
"""

from __future__ import annotations

from hazmon.errors import ConfigError, HazmonError

__all__ = ["AlertingError", "NotFound", "InvalidAction", "RouteConfigError", "ProviderError"]


class AlertingError(HazmonError):
    """Base of alerting errors."""


class NotFound(AlertingError):
    """No alert / hazard / silence with that id (API: 404)."""


class InvalidAction(AlertingError):
    """Input that can never be valid: a close without a reason, a silence without expiry,
    a malformed matcher (API: 422). Nothing was recorded."""


class RouteConfigError(ConfigError):
    """routes.yaml is invalid. ``problems`` lists every ``(path, problem)``; the message reads
    ``file: path: problem`` for each, so all mistakes are fixed in one round."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file, self.problems = file, problems
        super().__init__("; ".join(f"{file}: {path}: {problem}" for path, problem in problems))


class ProviderError(AlertingError):
    """An SMS/webhook provider refused or failed a request.

    ``retryable`` says whether the outbox should try again later (5xx, 429, timeouts,
    provider flow control) or give up (bad number, signature refused, template missing).
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, retry_after_s: float | None = None) -> None:
        self.retryable, self.status, self.retry_after_s = retryable, status, retry_after_s
        super().__init__(message)
