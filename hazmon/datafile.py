"""Problems in the project's data files, said one way: ``file: path.to[3].key: problem``.

``routes.yaml`` (:mod:`alerting.config`), ``detectors.yaml`` (:mod:`detectors.config`) and the
registry's CSV rows (:mod:`hazmon.registry`) are validated by pydantic models. An operator fixes
the file, not the Python, so :func:`problems` turns a ``ValidationError`` into ``(path,
problem)`` pairs: the path to the key as written in the file (``route.routes[1].matchers[0]``,
list positions from 0) and pydantic's wording replaced where it speaks of Python types
(``Extra inputs are not permitted`` → ``unknown key (expected one of …)``, ``Input should be a
valid dictionary`` → ``must be a mapping``). Every problem is reported, so all mistakes are fixed
in one round.

A validator says *where* a problem is in one of two ways:

* a validator of a container (a list, a mapping, a model) calls :func:`refuse` with paths
  relative to the value it checks — a ladder validator finding its second step out of order
  refuses ``((1, "after"), "…")``, reported as ``escalation.red[1].after``;
* a model validator may start its message with one of the model's field names
  (``"lat: required when lon is given"``); given the ``model``, that name becomes part of the path.

Environment variables (:mod:`hazmon.settings`) are named differently (``HAZMON_KAFKA__PORT``)
and keep their own formatter.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = ["Loc", "Problem", "problems", "format_problems", "format_errors", "refuse", "join_path"]

#: a location below a value: keys and list positions
Loc = tuple[str | int, ...]
#: ``(path, problem)``: ``("route.routes[1].receiver", "unknown receiver 'nobody'")``
Problem = tuple[str, str]

# pydantic's words for what a data file calls by other names
_WORDS = {
    "missing": "required",
    "extra_forbidden": "unknown key",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
}
# a validator's own message, without pydantic's prefix
_PREFIXES = ("Value error, ", "Assertion failed, ")
# steps of pydantic's own in a location (validator wrappers, union members), not keys of the file
_INTERNAL = re.compile(r"^(?:function-[a-z-]+\[.*\]|lax-.*|json-.*|\[key\]|str|int|float|date)$")


def refuse(found: Iterable[tuple[Loc | str | int, str]]) -> None:
    """Raise every problem a validator found, each at its path below the value being checked;
    nothing if ``found`` is empty. pydantic merges them with the other problems of the file."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError("value_error", "{problem}", {"problem": problem}),
            loc=at if isinstance(at, tuple) else (at,),
            input=None,
        )
        for at, problem in found
    ]
    if details:
        raise ValidationError.from_exception_data("problems", details)


def join_path(at: str, path: str) -> str:
    """``route.routes[1]`` + ``matchers[0]`` → ``route.routes[1].matchers[0]``."""
    if not at or not path:
        return at or path
    return at + path if path.startswith("[") else f"{at}.{path}"


def _path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _INTERNAL.match(part):
            out = join_path(out, part)
    return out


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, …]`` and ``X | None`` → ``X``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _keys(model: type[BaseModel]) -> dict[str, str]:
    """The keys a model reads (aliases), each with its field name; deprecated fields left out."""
    return {(f.alias or name): name for name, f in model.model_fields.items() if not f.deprecated}


def _model_at(model: type[BaseModel] | None, loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields are the keys at ``loc``, if the annotations say."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if _is_model(tp):
            fields = {(f.alias or name): f for name, f in tp.model_fields.items()}
            if part in fields:
                tp = fields[part].annotation
            elif not (isinstance(part, str) and _INTERNAL.match(part)):
                return None
            continue
        origin, args = get_origin(tp), get_args(tp)
        if origin in (dict, Mapping) and len(args) == 2 and part != "[key]":
            tp = args[1]
        elif origin in (list, tuple, Sequence) and args and isinstance(part, int):
            tp = args[0]
        elif not (isinstance(part, str) and _INTERNAL.match(part)):
            return None
    tp = _unwrap(tp)
    return tp if _is_model(tp) else None


def problems(exc: ValidationError, *, model: type[BaseModel] | None = None, at: str = "") -> list[Problem]:
    """Every problem of ``exc`` as ``(path, problem)``, paths prefixed with ``at``. Given the
    ``model`` that was validated, an unknown key lists the keys expected there."""
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc, kind = list(err["loc"]), err["type"]
        msg = _WORDS.get(kind, err["msg"])
        for prefix in _PREFIXES:
            msg = msg.removeprefix(prefix)
        if kind == "extra_forbidden":
            where = _model_at(model, loc[:-1])
            if where is not None:
                msg += f" (expected one of {', '.join(sorted(_keys(where)))})"
        elif kind == "value_error" and ": " in msg:
            where = _model_at(model, loc)
            head, rest = msg.split(": ", 1)
            if where is not None and head in _keys(where):
                loc, msg = [*loc, head], rest  # a model validator naming its field
        out.append((join_path(at, _path(loc)), msg))
    return out


def format_problems(file: str, found: Iterable[Problem]) -> str:
    """``file: path: problem; file: path: problem`` (``file: problem`` for the file itself)."""
    return "; ".join(f"{file}: {path}: {problem}" if path else f"{file}: {problem}"
                     for path, problem in found)


def format_errors(exc: ValidationError, file: str, *, model: type[BaseModel] | None = None) -> str:
    """One line naming every problem of ``exc`` in ``file``."""
    return format_problems(file, problems(exc, model=model))
