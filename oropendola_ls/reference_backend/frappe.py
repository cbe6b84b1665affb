"""Frappe's wire conventions: the exception classes, their HTTP statuses and the JSON envelopes.

Success is ``{"message": value}`` (``{}`` when the value is None) plus whatever top-level keys the
request added (``session_expired``, ``home_page``, ...). An error is
``{"exc_type": "<Class>", "_server_messages": "<JSON list of JSON strings>"}`` with the
exception's HTTP status; ``_server_messages`` is left out when the exception carries no message
(Frappe raises ``AuthenticationError`` bare, for example). See protocol.md §1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

GUEST = "Guest"


class FrappeException(Exception):
    """An error answered as Frappe answers it: ``http_status`` and a server message."""

    http_status: ClassVar[int] = 500

    def __init__(
        self, message: str | None = None, *, title: str | None = None, indicator: str = "red"
    ) -> None:
        super().__init__(message or "")
        self.message = message
        self.title = title
        self.indicator = indicator

    @property
    def exc_type(self) -> str:
        return type(self).__name__

    def server_message(self) -> dict[str, Any] | None:
        """The ``frappe.throw`` message dict, or None for a bare exception."""
        if not self.message:
            return None
        out: dict[str, Any] = {"message": self.message}
        if self.title:
            out["title"] = self.title
        out["indicator"] = self.indicator
        out["raise_exception"] = 1
        return out


class ValidationError(FrappeException):
    http_status = 417


class AuthenticationError(FrappeException):
    http_status = 401


class SessionExpired(FrappeException):
    http_status = 401


class PermissionError(FrappeException):  # Frappe's name; shadows the builtin here only
    http_status = 403


class DoesNotExistError(ValidationError):
    http_status = 404


class DuplicateEntryError(FrappeException):
    http_status = 409


class TooManyRequestsError(FrappeException):
    http_status = 429


class CSRFTokenError(FrappeException):
    http_status = 400


class SessionStopped(FrappeException):
    http_status = 503


class NotImplementedByBackend(ValidationError):
    """A known method this backend does not implement yet (answered like ``frappe.throw``)."""

    @property
    def exc_type(self) -> str:
        return "ValidationError"


def server_messages(messages: list[dict[str, Any]]) -> str:
    """Encode messages as Frappe's ``_server_messages``: a JSON list of JSON strings."""
    return json.dumps([json.dumps(m, ensure_ascii=False) for m in messages], ensure_ascii=False)


def parse_server_messages(value: str) -> list[dict[str, Any]]:
    """Decode ``_server_messages`` (handy for tests and clients)."""
    return [json.loads(item) for item in json.loads(value)]


def success_body(message: object, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{**extra, "message": message}``; without ``message`` when it is None."""
    body = dict(extra or {})
    if message is not None:
        body["message"] = message
    return body


def error_body(exc: FrappeException, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of ``exc``, keeping keys the request had already set (login's message)."""
    body = dict(extra or {})
    msg = exc.server_message()
    if msg is not None:
        body["_server_messages"] = server_messages([msg])
    body["exc_type"] = exc.exc_type
    return body


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
