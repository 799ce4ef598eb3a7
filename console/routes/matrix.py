"""责任矩阵: domain → department(s) + responsible leader (三管三必须). View and edit; every edit
is written to ``registry_audit`` with the rule before and after, in the same transaction.

The view also lists 触达检查 (``reach``): every township (属地 of sites) and every department a
rule names that no channel, or only a voice call, reaches — the same findings the registry
import warns about (:func:`hazmon.registry.reach_findings`), in Chinese."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from console.actors import actor_words, user_names
from console.auth import access
from console.routes._common import ID_PATTERN, Conn, CurrentPrincipal, CurrentScope, IdPath, not_found
from console.scope import Role
from console.words import DOMAIN_ZH
from hazmon.registry import reach_findings

__all__ = ["router"]

router = APIRouter(prefix="/api/matrix", tags=["matrix"])
READERS = (Role.CENTRE, Role.ADMIN, Role.DEPARTMENT, Role.TOWNSHIP)
EDITORS = (Role.CENTRE, Role.ADMIN)
Ident = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Text = Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")]


def _rule(r: Any, scope: Any = None) -> dict:
    d = dict(r)
    if scope is not None and "leader_phone" in d:
        d["leader_phone"] = scope.phone(d["leader_phone"])
    # the rule as a sentence (console/words.py): 燃气（餐饮）→ 区住建局（三管三必须）
    where = f"（{'、'.join(d['industries'])}）" if d.get("industries") else ""
    deps = "、".join(d.get("department_names") or ()) or "未配置部门"
    domain = d.get("domain_zh") or DOMAIN_ZH.get(d.get("domain") or "", "行业")
    d["rule_zh"] = f"{domain}{where} → {deps}（三管三必须）"
    return d


def _audit_words(a: Any, sentences: dict[str, str], users: dict[str, str]) -> dict:
    """A change of the matrix, who and which rule in words (the ids stay in the JSON)."""
    detail = json.loads(a["detail"]) if isinstance(a["detail"], str) else a["detail"]
    rule_id = str((detail or {}).get("rule_id") or "")
    return {**dict(a), "detail": detail, "actor_zh": actor_words(a["actor"], {}, users),
            "rule_zh": sentences.get(rule_id, "已删除的规则" if rule_id else "")}


def _roles_words(roles: str, rules: dict[str, str]) -> str:
    """触达检查's roles name matrix rules by id (矩阵规则 R-gas): by their sentence instead."""
    def words(m: re.Match[str]) -> str:
        return f"矩阵规则「{rules.get(m[1], '已删除的规则').removesuffix('（三管三必须）')}」"

    return re.sub(r"矩阵规则 ([A-Za-z0-9._:-]+)", words, roles)


_SELECT = """SELECT m.id, m.domain, dm.name_zh AS domain_zh, m.department_ids,
                    (SELECT array_agg(d.name ORDER BY array_position(m.department_ids, d.id)) FROM departments d \
WHERE d.id = ANY(m.department_ids))
                        AS department_names,
                    m.leader_id, l.name AS leader_name, l.title AS leader_title, l.phone AS leader_phone,
                    m.committee, m.note, m.industries
             FROM matrix_rules m LEFT JOIN domains dm ON dm.name = m.domain LEFT JOIN leaders l ON l.id = m.leader_id"""


_UNIT_CHANNELS = "id, name, duty_phone, duty_mobile, robot, robot_url"
_CHANNEL_ZH = {"sms": "短信", "voice": "语音呼叫", "wecom": "企业微信群机器人", "dingtalk": "钉钉群机器人"}


async def reach(conn: Any) -> list[dict]:
    """触达检查: the duty rooms only a voice call (or nothing) reaches, and the roles they play."""
    sql = {"townships": f"SELECT {_UNIT_CHANNELS} FROM townships",
           "departments": f"SELECT {_UNIT_CHANNELS} FROM departments",
           "matrix_rules": "SELECT id, department_ids FROM matrix_rules",
           "sites": "SELECT id, township_id FROM sites",
           "maintainers": "SELECT id, name, duty_phone, duty_mobile FROM maintainers",  # 电梯维保单位
           "devices": "SELECT id, maintainer_id FROM devices WHERE maintainer_id IS NOT NULL"}
    tables = {t: {r["id"]: dict(r) for r in await conn.fetch(q)} for t, q in sql.items()}
    kinds = {"townships": "镇街", "departments": "部门", "maintainers": "维保单位"}
    return [{"unit_kind": kinds.get(f.table, "部门"), "id": f.key, "name": f.name,
             "roles": f.roles_zh, "problem": f.why_zh,
             "channels": [_CHANNEL_ZH.get(c, c) for c in f.channels]} for f in reach_findings(tables)]


@router.get("", summary="责任矩阵", **access(*READERS))
async def list_rules(conn: Conn, scope: CurrentScope) -> dict:
    rows = await conn.fetch(f"{_SELECT} ORDER BY m.domain, m.id")
    audit = await conn.fetch(
        "SELECT at, actor, action, detail FROM registry_audit WHERE action LIKE 'matrix.%' ORDER BY id DESC LIMIT 50"
    )
    found = await reach(conn)
    users = await user_names(conn, [a["actor"] for a in audit])
    rules = [_rule(r, scope) for r in rows]
    sentences = {r["id"]: r["rule_zh"] for r in rules}
    for f in found:
        f["roles"] = _roles_words(str(f["roles"]), sentences)
    return {
        "rules": rules,
        "reach": found,
        "reach_count": len(found),
        "audit": [_audit_words(a, sentences, users) for a in audit],
    }


class RuleBody(BaseModel):
    domain: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
    department_ids: Annotated[list[Ident], Field(min_length=1, max_length=10)]
    leader_id: Ident | None = None
    committee: Text = ""
    note: Text = ""
    industries: Annotated[list[Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[^\x00]*$")]],
                          Field(max_length=30)] = []
    reason: Annotated[Text, Field(min_length=1, description="why the matrix changes (recorded)")]


async def _check_refs(conn: Any, body: RuleBody) -> None:
    if not await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", body.domain):
        raise HTTPException(422, f"领域不存在：{body.domain}")
    found = {r["id"] for r in await conn.fetch("SELECT id FROM departments WHERE id = ANY($1::text[])",
                                                body.department_ids)}
    missing = [d for d in body.department_ids if d not in found]
    if missing:
        raise HTTPException(422, f"监管部门不存在：{'、'.join(missing)}")
    if body.leader_id and not await conn.fetchval("SELECT 1 FROM leaders WHERE id = $1", body.leader_id):
        raise HTTPException(422, f"责任领导不存在：{body.leader_id}")


@router.get("/options", summary="编辑规则的可选项（领域、部门、领导）", **access(*EDITORS))
async def options(conn: Conn) -> dict:
    q = {"domains": "SELECT name, name_zh FROM domains ORDER BY name", "departments": "SELECT id, name FROM"
         " departments ORDER BY id", "leaders": "SELECT id, name, title FROM leaders ORDER BY id"}
    return {k: [dict(r) for r in await conn.fetch(sql)] for k, sql in q.items()}


@router.put("/{rule_id}", summary="新增或修改一条规则 (audited)", **access(*EDITORS))
async def put_rule(rule_id: IdPath, body: RuleBody, conn: Conn, principal: CurrentPrincipal,
                   scope: CurrentScope) -> dict:
    await _check_refs(conn, body)
    async with conn.transaction():
        before = await conn.fetchrow("SELECT * FROM matrix_rules WHERE id = $1 FOR UPDATE", rule_id)
        await conn.execute(
            """INSERT INTO matrix_rules (id, domain, department_ids, leader_id, committee, note, industries)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (id) DO UPDATE SET domain = EXCLUDED.domain, department_ids = EXCLUDED.department_ids,
                   leader_id = EXCLUDED.leader_id, committee = EXCLUDED.committee, note = EXCLUDED.note,
                   industries = EXCLUDED.industries""",
            rule_id, body.domain, body.department_ids, body.leader_id, body.committee, body.note, body.industries,
        )
        after = await conn.fetchrow("SELECT * FROM matrix_rules WHERE id = $1", rule_id)
        await conn.execute(
            "INSERT INTO registry_audit (actor, action, detail) VALUES ($1, $2, $3::jsonb)",
            principal.actor, "matrix.update" if before else "matrix.create",
            json.dumps({"rule_id": rule_id, "reason": body.reason, "before": dict(before) if before else None,
                        "after": dict(after)}, ensure_ascii=False, default=list),
        )
    row = await conn.fetchrow(f"{_SELECT} WHERE m.id = $1", rule_id)
    return _rule(row, scope)


class DeleteBody(BaseModel):
    reason: Annotated[Text, Field(min_length=1)]


@router.post("/{rule_id}/delete", summary="删除一条规则 (audited; reason required)", **access(*EDITORS))
async def delete_rule(rule_id: IdPath, body: DeleteBody, conn: Conn, principal: CurrentPrincipal) -> dict:
    async with conn.transaction():
        before = await conn.fetchrow("DELETE FROM matrix_rules WHERE id = $1 RETURNING *", rule_id)
        if before is None:
            raise not_found("matrix rule", rule_id)
        await conn.execute(
            "INSERT INTO registry_audit (actor, action, detail) VALUES ($1, 'matrix.delete', $2::jsonb)",
            principal.actor,
            json.dumps({"rule_id": rule_id, "reason": body.reason, "before": dict(before)}, ensure_ascii=False,
                       default=list),
        )
    return {"deleted": rule_id}
