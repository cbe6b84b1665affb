"""Strict reading of custom request params: wrong or missing fields give -32602 naming the field."""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar, Union

import attrs
from pygls.exceptions import JsonRpcInvalidParams

T = TypeVar("T")


def wire_name(field: attrs.Attribute[Any]) -> str:
    head, *rest = field.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _allowed(annotation: Any) -> tuple[type, ...]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return tuple(t for arg in typing.get_args(annotation) for t in _allowed(arg))
    origin = typing.get_origin(annotation) or annotation
    return (type(None),) if annotation is None else (origin,)


_TYPE_WORDS = {str: "a string", int: "a number", float: "a number", bool: "a boolean",
               dict: "an object", list: "a list", type(None): "null"}


def parse_params(method: str, raw: Any, cls: type[T]) -> T:
    """Build ``cls`` (an attrs class with simple field types) from JSON params, strictly."""
    if raw is None or raw == []:
        raw = {}  # Lua clients (Neovim) encode an empty table as []
    if not isinstance(raw, dict):
        raise JsonRpcInvalidParams(f"{method}: params must be an object")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in attrs.fields(cls):  # type: ignore[arg-type]
        key = wire_name(field)
        if key not in raw:
            if field.default is attrs.NOTHING:
                raise JsonRpcInvalidParams(f"{method}: missing required field '{key}'")
            continue
        value = raw[key]
        allowed = _allowed(hints[field.name])
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            expected = " or ".join(dict.fromkeys(_TYPE_WORDS.get(t, t.__name__) for t in allowed))
            raise JsonRpcInvalidParams(f"{method}: field '{key}' must be {expected}")
        values[field.name] = value
    return cls(**values)
