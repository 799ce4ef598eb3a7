"""The layout rules of issue 16 that no linter checks: small modules in the spine and the stages,
and one meaning per class name across the product (a reader who sees ``Route`` knows which)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPPED = ("hazmon", "ingest", "detectors", "alerting")
PRODUCT = (*CAPPED, "console")
MAX_LINES = 450


def _modules(packages: tuple[str, ...]) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def test_no_module_of_the_spine_or_a_stage_is_over_450_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules(CAPPED) if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split by concern: {long}"


def test_one_meaning_per_class_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for p in _modules(PRODUCT):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(str(p.relative_to(ROOT)))
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert not twice, f"class names defined in more than one module: {twice}"


def test_test_modules_have_unique_basenames() -> None:
    """tests/ has no __init__.py files: two test modules of one basename cannot both be collected
    in one run (pytest: "import file mismatch"), which a run of one directory does not show."""
    where: dict[str, list[str]] = defaultdict(list)
    for p in sorted((ROOT / "tests").rglob("*.py")):
        if p.name != "conftest.py":
            where[p.name].append(str(p.relative_to(ROOT)))
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert not twice, twice
