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


#: tables alerting owns (deploy/sql): the console and the KPIs read them through alerting/queries*.py
#: and alerting writes them through alerting/store/ only
ALERTING_TABLES = (
    "alerts", "alert_transitions", "alert_groups", "alert_ack_grants", "notifications",
    "notification_attempts", "notices", "notice_units", "key_periods", "hazards", "hazard_transitions",
    "silences", "silence_audit", "broadcasts", "broadcast_audit", "work_orders", "work_order_transitions",
)
_SQL_ON = r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(?:" + "|".join(ALERTING_TABLES) + r")\b"


def test_the_console_has_no_sql_of_alerting_s_tables() -> None:
    """Issue 16: one home for alerting's SQL. A console route that needs an alert, an order or a
    period calls alerting/queries*.py or alerting/store/ (its own tables — console_*, attachments,
    field_checkins — and the registry's stay its own)."""
    import re

    found = {
        f"{p.relative_to(ROOT)}:{n}": line.strip()
        for p in _modules(("console",))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(_SQL_ON, line)
    }
    assert not found, found


def test_alerting_writes_its_tables_only_in_its_store() -> None:
    """INSERT / UPDATE / DELETE of alerting's tables only in alerting/store/ (docstrings aside)."""
    import re

    write = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:" + "|".join(ALERTING_TABLES) + r")\b")
    found = {}
    for p in _modules(("alerting",)):
        if "store" in p.relative_to(ROOT).parts:
            continue
        tree = ast.parse(p.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                    and write.search(node.value)):
                found[f"{p.relative_to(ROOT)}:{node.lineno}"] = node.value[:80]
    assert not found, found
