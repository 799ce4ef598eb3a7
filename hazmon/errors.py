"""The project's exception hierarchy: every error hazmon raises on purpose derives from
:class:`HazmonError`, so the CLI can print one clear line and exit non-zero instead of a
traceback, and callers can tell expected failures from bugs."""

from __future__ import annotations

__all__ = [
    "HazmonError",
    "ConfigError",
    "RegistryError",
    "RowError",
    "MigrationError",
    "StackError",
    "AdapterError",
]


class HazmonError(Exception):
    """Base of every deliberate hazmon error."""


class ConfigError(HazmonError):
    """A setting or a configuration file is invalid; the message names the key/path."""


class RowError(HazmonError):
    """One bad row of a data file: ``file:line: field: problem``."""

    def __init__(self, file: str, line: int, field: str, problem: str) -> None:
        self.file, self.line, self.field, self.problem = file, line, field, problem
        super().__init__(f"{file}:{line}: {field}: {problem}")


class RegistryError(HazmonError):
    """A registry import was refused; ``errors`` lists every bad row (nothing was loaded)."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        head = "; ".join(str(e) for e in errors[:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"{len(errors)} bad row(s), nothing loaded: {head}{more}")


class MigrationError(HazmonError):
    """A schema migration failed or the database is at an unknown version."""


class StackError(HazmonError):
    """An embedded service could not be started or reached (the message names its log)."""


class AdapterError(HazmonError):
    """A vendor payload could not be understood; carries the dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")
