"""Every exception the product defines is under :class:`hazmon.errors.HazmonError` (issue 16),
so the CLI prints one line for it, the console answers it as a 4xx, and a caller can tell an
expected failure from a bug by one ``except``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from hazmon.errors import HazmonError

#: the product's packages (tools and tests may raise what they like)
PACKAGES = ("hazmon", "ingest", "detectors", "alerting", "console")

#: exception classes allowed outside the hierarchy, each with the reason (none today)
ALLOWED: dict[str, str] = {}


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        names.extend(info.name for info in pkgutil.walk_packages(root.__path__, f"{package}."))
    return sorted(names)


def _exceptions(module_name: str) -> list[type[BaseException]]:
    module = importlib.import_module(module_name)
    return [
        obj
        for _name, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == module_name
    ]


MODULES = _modules()


def test_the_walk_finds_the_product() -> None:
    """The sweep really looks: every package and a known exception of each stage."""
    assert {"ingest.validation", "detectors.decode", "console.auth", "alerting.errors"} <= set(MODULES)
    found = {f"{cls.__module__}.{cls.__qualname__}" for name in MODULES for cls in _exceptions(name)}
    assert {
        "ingest.validation.SampleRejected",
        "detectors.decode.DecodeError",
        "console.login_throttle.LoginRefused",
        "console.board.StreamLimitError",
    } <= found


@pytest.mark.parametrize("module_name", MODULES)
def test_every_exception_derives_from_hazmon_error(module_name: str) -> None:
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _exceptions(module_name)
        if not issubclass(cls, HazmonError) and f"{cls.__module__}.{cls.__qualname__}" not in ALLOWED
    ]
    assert not outside, f"not under hazmon.errors.HazmonError: {outside}"


def test_every_allowance_still_names_a_class() -> None:
    found = {f"{cls.__module__}.{cls.__qualname__}" for name in MODULES for cls in _exceptions(name)}
    assert set(ALLOWED) <= found, f"stale allowances: {sorted(set(ALLOWED) - found)}"
