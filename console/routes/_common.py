"""Shared pieces of the route modules: the DB connection (borrowed with the pool deadline), the
caller's scope, paging, ids, and the conditions the lists filter with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from pydantic import AwareDatetime, BaseModel

from console.auth import authenticate
from console.pool import acquire
from console.scope import Params, Principal, Scope, build_scope

__all__ = [
    "ID_PATTERN",
    "IdPath",
    "IdFilter",
    "DomainFilter",
    "Conn",
    "CurrentScope",
    "CurrentPrincipal",
    "Paging",
    "page_params",
    "page_of",
    "fetch_page",
    "in_range",
    "equal",
    "in_township",
    "not_found",
    "check_range",
    "TEXT_FILTER",
    "record",
]

#: ids of sites, devices, alerts, silences … : printable, no spaces or control characters
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=128, description="id (A-Z a-z 0-9 . _ : -)")]
#: free-text filters: no control characters (PostgreSQL refuses NUL in text)
TEXT_FILTER = r"^[^\x00-\x1f\x7f]*$"
#: an optional id in the query string (?site_id=…)
IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=128)]
#: an optional domain in the query string (gas, fire, elevator …)
DomainFilter = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{1,31}$")]


async def _conn(request: Request) -> AsyncIterator[Any]:
    # with a deadline: a pool held by something else answers 503 in words, never hangs (console.pool)
    async with acquire(request.app) as conn:
        yield conn


Conn = Annotated[Any, Depends(_conn)]
CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def _scope(principal: CurrentPrincipal, conn: Conn) -> Scope:
    return await build_scope(conn, principal)


CurrentScope = Annotated[Scope, Depends(_scope)]


class Paging(BaseModel):
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def page_params(
    page: Annotated[int, Query(ge=1, le=100_000, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
) -> Paging:
    return Paging(page=page, page_size=page_size)


PageParams = Annotated[Paging, Depends(page_params)]
__all__.append("PageParams")


def page_of(items: list[dict[str, Any]], total: int, paging: Paging) -> dict[str, Any]:
    return {"items": items, "total": total, "page": paging.page, "page_size": paging.page_size}


async def fetch_page(conn: Any, p: Params, paging: Paging, *, columns: str, source: str, order_by: str,
                     with_: str = "") -> tuple[int, list[Any]]:
    """How many rows ``source`` (a FROM … WHERE … clause, its parameters in ``p``) holds, and
    the page of them in ``order_by``; ``with_`` is a WITH clause both statements start with."""
    total = await conn.fetchval(f"{with_} SELECT count(*) FROM {source}", *p.values)
    rows = await conn.fetch(
        f"""{with_} SELECT {columns} FROM {source} ORDER BY {order_by}
            LIMIT {p(paging.page_size)} OFFSET {p(paging.offset)}""",
        *p.values,
    )
    return total, rows


def not_found(kind: str, ident: str) -> HTTPException:
    """Unknown and out-of-scope look the same: a user learns nothing about others' ids."""
    return HTTPException(404, f"{kind} '{ident}' not found")


_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def check_range(since: datetime | None, until: datetime | None) -> None:
    """422 for times outside 1970..2200 (calendar arithmetic must not overflow), 400 for an
    empty or inverted range."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and not _EARLIEST <= value <= _LATEST:
            raise HTTPException(422, f"{name}: {value.isoformat()} is outside the supported range 1970..2200")
    if since is not None and until is not None and since >= until:
        raise HTTPException(400, f"since ({since.isoformat()}) must be before until ({until.isoformat()})")


def equal(p: Params, *pairs: tuple[str, str | None]) -> list[str]:
    """The conditions ``column = value`` for the pairs whose value is given."""
    return [f"{column} = {p(value)}" for column, value in pairs if value]


def in_township(p: Params, site_col: str, township_id: str | None) -> list[str]:
    """The condition that the site in ``site_col`` is in ``township_id``, when one is given."""
    if not township_id:
        return []
    return [f"{site_col} IN (SELECT id FROM sites WHERE township_id = {p(township_id)})"]


def in_range(p: Params, column: str, since: datetime | None, until: datetime | None) -> list[str]:
    """The conditions ``since <= column < until``, for the bounds given."""
    where = []
    if since:
        where.append(f"{column} >= {p(since)}")
    if until:
        where.append(f"{column} < {p(until)}")
    return where


Since = Annotated[AwareDatetime | None, Query(description="from (inclusive), ISO 8601 with timezone")]
Until = Annotated[AwareDatetime | None, Query(description="to (exclusive), ISO 8601 with timezone")]
__all__ += ["Since", "Until"]


def record(row: Any) -> dict[str, Any]:
    return dict(row) if row is not None else {}
