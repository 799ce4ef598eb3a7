"""``hazmon risk grade [--rules FILE] [--show N]`` — grade every site now (企业风险分级 红橙黄蓝,
alerting/risk.py), print how many sites have each grade, the changes and the highest graded with
their reasons; ``hazmon risk check [FILE]`` — validate data/risk_rules.yaml only. A rules file that
fails validation is one line (``file: path: problem``), exit 2, nothing graded."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from alerting.risk_rules import DEFAULT_RULES, GRADE_NAME_ZH, GRADE_ZH, GRADES, load_rules
from hazmon.cli import run_async
from hazmon.errors import ConfigError
from hazmon.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    r = sub.add_parser("risk", help="企业风险分级 红橙黄蓝 (grades per site from data/risk_rules.yaml)")
    rsub = r.add_subparsers(dest="risk_command", metavar="ACTION")
    rsub.required = True
    g = rsub.add_parser("grade", help="grade every site now and store the grades (changes are recorded)")
    g.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="the rules file (data/risk_rules.yaml)")
    g.add_argument("--show", type=int, default=10, help="print the N highest-scored sites (default 10)")
    g.set_defaults(handler=_grade)
    c = rsub.add_parser("check", help="validate the rules file")
    c.add_argument("file", nargs="?", type=Path, default=DEFAULT_RULES)
    c.set_defaults(handler=_check)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    rules, digest = load_rules(args.file)
    print(f"{args.file}: 有效（{len(rules.factors)} 项因素，统计窗口 {rules.window_days} 天，版本 {digest}）")
    return 0


def _grade(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.risk import grade_all

    rules, digest = load_rules(args.rules)  # refused before anything is read or written

    async def go() -> int:
        try:
            conn = await asyncpg.connect(settings.postgres.dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(f"HAZMON_POSTGRES__DSN: cannot connect: {exc}") from None
        try:
            rep = await grade_all(conn, rules, digest, now=datetime.now(UTC), actor="cli:hazmon risk grade")
            counts = "，".join(f"{GRADE_ZH[g]}（{GRADE_NAME_ZH[g]}）{rep.by_grade[g]} 家" for g in GRADES)
            moved = [c for c in rep.changes if c[2] is not None]
            first = rep.changed - len(moved)
            print(f"已评定 {rep.sites} 家场所：{counts}；等级变化 {len(moved)} 家"
                  + (f"，首次评定 {first} 家" if first else ""))
            for _, name, old, new in moved[:50]:
                print(f"  {name}：{GRADE_ZH[old or '']} → {GRADE_ZH[new]}")
            if len(moved) > 50:
                print(f"  …另有 {len(moved) - 50} 家")
            rows = await conn.fetch(
                """SELECT s.name, r.grade, r.score, r.reasons
                   FROM risk_grades r JOIN sites s ON s.id = r.site_id
                   ORDER BY r.score DESC, s.name LIMIT $1""", max(args.show, 0))
            for row in rows:
                reasons = "；".join(json.loads(row["reasons"]))
                print(f"{GRADE_ZH[row['grade']]} {row['score']:>3} 分  {row['name']}：{reasons}")
        finally:
            await conn.close()
        return 0

    return run_async(go())
