"""User management (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from console.auth import access
from console.routes._common import Conn, CurrentPrincipal, not_found
from console.scope import Role
from console.users import NewUser, UserError, create_user

__all__ = ["router"]

router = APIRouter(prefix="/api/users", tags=["users"])
UsernamePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{2,31}$")]


class UserBody(BaseModel):
    username: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{2,31}$")]
    password: Annotated[str, Field(min_length=10, max_length=256)]
    role: Role
    display_name: Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    department_id: Annotated[str | None, Field(max_length=64)] = None
    township_id: Annotated[str | None, Field(max_length=64)] = None
    site_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=200)] = []
    vendor_id: Annotated[str | None, Field(max_length=64)] = None
    village_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=50)] = []
    maintainer_id: Annotated[str | None, Field(max_length=64)] = None
    phone: Annotated[str | None, Field(max_length=20, pattern=r"^[0-9+()\- ]*$")] = None


@router.get("", summary="用户列表", **access(Role.ADMIN))
async def list_users(conn: Conn) -> list[dict]:
    rows = await conn.fetch(
        """SELECT username, display_name, role, department_id, township_id, site_ids, vendor_id, village_ids,
                  maintainer_id, phone, source, active, created_at
           FROM console_users ORDER BY username"""
    )
    return [dict(r) for r in rows]


@router.post("", status_code=201, summary="新建用户", **access(Role.ADMIN))
async def add_user(body: UserBody, conn: Conn, principal: CurrentPrincipal) -> dict:
    try:
        async with conn.transaction():
            await create_user(conn, NewUser(**body.model_dump()), actor=principal.actor)
    except UserError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"username": body.username, "role": body.role.value}


@router.delete("/{username}", summary="停用用户 (sessions end at once)", **access(Role.ADMIN))
async def deactivate_user(username: UsernamePath, conn: Conn, principal: CurrentPrincipal) -> dict:
    if username == principal.username:
        raise HTTPException(400, "an admin cannot deactivate their own account")
    async with conn.transaction():
        done = await conn.fetchval(
            "UPDATE console_users SET active = false WHERE username = $1 RETURNING username", username
        )
        if not done:
            raise not_found("user", username)
        await conn.execute("DELETE FROM console_sessions WHERE username = $1", username)
        await conn.execute(
            "INSERT INTO console_audit (actor, action, target) VALUES ($1, 'user.deactivate', $2)",
            principal.actor, username,
        )
    return {"username": username, "active": False}
