"""Which PostgreSQL errors are the record's fault and which are the database's (issue 17).

Every sink (the detectors' storage writer, alerting's event store) asks :func:`classify`:

* ``"data"`` — the database refused *this record*: SQLSTATE class 21 (cardinality: one upsert
  naming a key twice — records of the batch collide, bisection separates them), 22 (data
  exception: U+0000 in text, a number out of range, bad jsonb), 23 (a constraint: CHECK, NOT
  NULL, a foreign key, a unique key the sink does not handle), 54 (a program limit: an index row
  too large, nesting too deep), and the client-side equivalents (asyncpg cannot encode the value: out of int64 range,
  a lone surrogate). The sink isolates the record, dead-letters it with :func:`refusal_detail`
  and goes on;
* ``"retry"`` — the database is unavailable: connection errors, SQLSTATE classes 08
  (connection), 40 (serialization failure, deadlock), 53 (insufficient resources: disk full,
  out of memory), 57 (operator intervention: shutdown, crash recovery), 58 (system error: I/O),
  XX (internal). Retried with backoff; nothing is committed meanwhile;
* ``"bug"`` — anything else (42: a statement or a table that is wrong, 25: transaction state,
  …): the same for every record, so dead-lettering would empty the stream into the dead-letter
  table. Retried with backoff and logged as an error, like an outage.
"""

from __future__ import annotations

from typing import Literal

import asyncpg

__all__ = ["Kind", "classify", "refusal_detail", "DATA_CLASSES", "RETRY_CLASSES"]

Kind = Literal["data", "retry", "bug"]

DATA_CLASSES = frozenset({"21", "22", "23", "54"})
RETRY_CLASSES = frozenset({"08", "40", "53", "57", "58", "XX"})


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, asyncpg.PostgresError):
        cls = (exc.sqlstate or "")[:2]
        if cls in DATA_CLASSES:
            return "data"
        if cls in RETRY_CLASSES:
            return "retry"
        return "bug"
    if isinstance(exc, asyncpg.InterfaceError | OSError | ConnectionError | TimeoutError):
        return "retry"
    # asyncpg encodes parameters and COPY rows client-side: a value it cannot encode is the record's
    if isinstance(exc, UnicodeError | OverflowError | ValueError):
        return "data"
    return "bug"


def refusal_detail(exc: BaseException) -> str:
    """What the database said, for the dead letter: ``SQLSTATE 23514 (table.constraint): message``."""
    if isinstance(exc, asyncpg.PostgresError):
        where = ".".join(x for x in (getattr(exc, "table_name", None), getattr(exc, "constraint_name", None)
                                     or getattr(exc, "column_name", None)) if x)
        msg = str(getattr(exc, "message", "") or exc)
        return f"PostgreSQL refused the record: SQLSTATE {exc.sqlstate}{f' ({where})' if where else ''}: {msg}"[:2000]
    return f"PostgreSQL driver refused the record: {type(exc).__name__}: {exc}"[:2000]
