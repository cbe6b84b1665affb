"""Reading a handler's arguments the way Frappe's whitelisted functions receive them.

Form and query values arrive as strings, JSON bodies as any JSON value: these helpers give each
argument one type and raise `frappe.ValidationError` (417) with a message naming it.
"""

from __future__ import annotations

import json

from oropendola_ls.reference_backend import frappe
from oropendola_ls.reference_backend.context import CallContext
from oropendola_ls.reference_backend.store import User


def text_arg(ctx: CallContext, *names: str) -> str | None:
    """The first non-empty argument among ``names``, as text."""
    for name in names:
        value = ctx.form.get(name)
        if value is None or value == "":
            continue
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return None


def int_arg(ctx: CallContext, name: str, default: int, low: int, high: int) -> int:
    value = ctx.form.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise frappe.ValidationError(f"{name} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise frappe.ValidationError(f"{name} must be between {low} and {high}, not {number}")
    return number


def maybe_json(value: object) -> object:
    """Form and query values are strings: decode one that holds a JSON object or list."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def bool_value(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise frappe.ValidationError(f"{what} must be true or false, not {value!r}")


def current_user(ctx: CallContext, email: str | None = None) -> User:
    user = ctx.store.get_user(email or ctx.user)
    if user is None:  # the account went away mid-request
        raise frappe.AuthenticationError()
    return user
