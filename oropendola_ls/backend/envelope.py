"""Reading Frappe's answers: envelopes, error texts, in-band failures, cookies, Retry-After.

Pure functions over response data (protocol.md §1 and §7 item 4); `client` decides what to do
with what they find.
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only annotations: the LSP features read envelopes before any request
    import httpx

MAX_MESSAGE_LENGTH = 500
METHOD_MISSING_MARK = "Failed to get method"
FRAPPE_EXTRA_KEYS = frozenset(
    {
        "_server_messages", "_debug_messages", "_error_message", "session_expired", "home_page",
        "full_name", "redirect_to", "exc_type", "exception", "exc",
    }
)
"""Keys Frappe adds beside ``message``; they are not part of a method's return value."""


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 1] + "…"


def plain_text(text: str) -> str:
    """Frappe messages are HTML fragments: drop the tags, unescape entities."""
    return clip(html.unescape(re.sub(r"<[^>]*>", " ", text)))


def server_messages(raw: object) -> list[str]:
    """Decode ``_server_messages``: a JSON string of a list of JSON strings with ``message``."""
    if isinstance(raw, str):
        text = raw
        try:
            raw = json.loads(text)
        except ValueError:
            return [plain_text(text)] if text.strip() else []
    if not isinstance(raw, list):
        return []
    out: list[str] = []
    for item in raw:
        if isinstance(item, str):
            with contextlib.suppress(ValueError):
                item = json.loads(item)
        message = item.get("message") if isinstance(item, dict) else item
        if isinstance(message, str) and message.strip():
            out.append(plain_text(message))
    return out


def text_of(value: object) -> str:
    """A human message from a string or from an ``{error|message|detail}`` object."""
    if isinstance(value, str):
        return plain_text(value)
    if isinstance(value, dict):
        parts: list[str] = []
        for key in ("error", "message", "detail"):
            text = text_of(value.get(key)) if key in value else ""
            if text and text not in parts:
                parts.append(text)
        return ": ".join(parts)
    return ""


def error_text(body: Mapping[str, Any]) -> str:
    """The message of a Frappe error envelope, best source first."""
    messages = server_messages(body.get("_server_messages"))
    if messages:
        return clip("; ".join(messages))
    text = text_of(body.get("message"))
    if text:
        return text
    exception = body.get("exception")
    if isinstance(exception, str) and exception.strip():
        return plain_text(exception.split(": ", 1)[-1])
    exc_type = body.get("exc_type")
    return exc_type if isinstance(exc_type, str) else ""


def in_band_status(value: Mapping[str, Any]) -> int | None:
    status = value.get("status")
    if isinstance(status, bool):
        return None
    if isinstance(status, int):
        return status
    if isinstance(status, str) and status.strip().isdigit():
        return int(status)
    return None


def in_band_failure(value: object) -> tuple[int | None, str] | None:
    """``(status, text)`` when an unwrapped ``message`` reports a failure at HTTP 200."""
    if not isinstance(value, dict):
        return None
    status = in_band_status(value)
    success = value.get("success", True)
    failed = (
        success is False
        or (isinstance(success, str) and success.lower() == "false")
        or (status is not None and status >= 400)
        or bool(value.get("error"))
    )
    if not failed:
        return None
    return status, text_of(value) or "the backend reported a failure"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is not one (HTML, truncated, empty)."""
    try:
        body = json.loads(response.content)
    except ValueError:  # also UnicodeDecodeError
        return None
    return body if isinstance(body, dict) else None


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """``name → value`` of each Set-Cookie header (the last one wins)."""
    out: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, sep, value = header.split(";", 1)[0].partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip().strip('"')
    return out
