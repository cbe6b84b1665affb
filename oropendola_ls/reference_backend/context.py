"""Per-request state, the reference backend's ``frappe.local``.

A `CallContext` carries the caller (``user`` is ``"Guest"`` or an email), the merged arguments
(``form``, Frappe's ``form_dict``), uploaded files, the extra top-level response keys, an optional
HTTP status override and the cookies to set or expire when the response is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web

from oropendola_ls.reference_backend.chat_engines import ChatEngine, OfflineEngine
from oropendola_ls.reference_backend.frappe import GUEST
from oropendola_ls.reference_backend.store import Store

DEFAULT_STREAM_INTERVAL = 0.01
"""Seconds between two ``ai_progress`` text deltas of a chat answer."""
MAX_STREAM_INTERVAL = 10.0
HOLD_TIMEOUT = 60.0
"""The longest a chat answer waits for a hold to be released before it streams anyway."""

DEFAULT_AUTH_POLL_INTERVAL = 2.0
"""Seconds between polls that ``initiate_auth`` asks for (the app's ``poll_interval``)."""
DEFAULT_AUTH_REQUEST_LIFETIME = 300.0
"""Seconds a browser sign-in request lives (the app's five minutes)."""

LOGIN_COOKIES = ("sid", "system_user", "full_name", "user_id", "user_image", "user_lang")
"""The cookies Frappe sets at login and expires at logout or on a dead session."""


class Emitter(Protocol):
    """What handlers may use to push Socket.IO events (the realtime server)."""

    async def emit_to_user(self, email: str, event: str, data: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Settings shared by every request of one running backend."""

    session_expiry: float
    profiles: tuple[str, ...]
    auth_poll_interval: float = DEFAULT_AUTH_POLL_INTERVAL
    auth_request_lifetime: float = DEFAULT_AUTH_REQUEST_LIFETIME


def check_auth_timing(poll_interval: object, lifetime: object) -> tuple[float, float]:
    """The browser sign-in's poll interval and request lifetime, in seconds, checked.

    `ValueError` unless 0 < poll interval ≤ 60 and 0 < lifetime ≤ 86400.
    """
    checked = []
    for name, value, high in (("the auth poll interval", poll_interval, 60.0),
                              ("the auth request lifetime", lifetime, 86400.0)):
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or not 0 < value <= high):
            raise ValueError(f"{name} must be a number of seconds above 0 and at most "
                             f"{high:g}, not {value!r}")
        checked.append(float(value))
    return checked[0], checked[1]


def check_stream_interval(interval: object) -> float:
    """``interval`` as seconds between text deltas; `ValueError` unless 0 ≤ interval ≤ 10."""
    if (isinstance(interval, bool) or not isinstance(interval, int | float)
            or not math.isfinite(interval) or not 0 <= interval <= MAX_STREAM_INTERVAL):
        raise ValueError(f"the stream interval must be a number of seconds from 0 to "
                         f"{MAX_STREAM_INTERVAL:g}, not {interval!r}")
    return float(interval)


class ChatPacing:
    """How fast chat answers stream their ``ai_progress`` events; changed while running."""

    def __init__(self, interval: float = DEFAULT_STREAM_INTERVAL) -> None:
        self.interval = check_stream_interval(interval)
        self.waiting = 0
        """Answers now waiting for the hold to be released."""
        self._released = asyncio.Event()
        self._released.set()

    @property
    def held(self) -> bool:
        return not self._released.is_set()

    def hold(self, hold: bool) -> int:
        """Hold or release answers; returns how many were waiting (those a release frees)."""
        waiting = self.waiting
        if hold:
            self._released.clear()
        else:
            self._released.set()
        return waiting

    async def wait_while_held(self) -> None:
        """Return once released, or after `HOLD_TIMEOUT` seconds."""
        if not self.held:
            return
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HOLD_TIMEOUT):
                    await self._released.wait()
        finally:
            self.waiting -= 1


CHAT_FAILURES: Mapping[int, Mapping[str, Any]] = {
    429: {"status": 429, "error": "Quota exceeded",
          "message": "Daily quota exhausted. Quota will reset tomorrow.", "budget_remaining": 0},
    500: {"status": 500, "error": "Agent mode error",
          "message": "The reference backend was told to fail (control action agent/fail)"},
    503: {"status": 503, "error": "No available models",
          "message": "No model is available for your plan right now. Try again later."},
}
"""The published app's in-band chat errors that control action ``agent/fail`` can set."""


class ChatFailure:
    """The in-band error every chat answer gives instead of an answer, until cleared."""

    def __init__(self) -> None:
        self.status: int | None = None

    def set(self, status: int | None) -> int | None:
        """Fail with ``status`` (a key of `CHAT_FAILURES`), or stop failing with None.

        `ValueError` for anything else (the value may come straight from a JSON body).
        """
        if status is not None and (isinstance(status, bool) or status not in CHAT_FAILURES):
            known = ", ".join(map(str, CHAT_FAILURES))
            raise ValueError(f"status must be one of {known} or null, not {status!r}")
        self.status = status
        return self.status

    def answer(self) -> dict[str, Any] | None:
        """The error to answer now, or None to answer normally."""
        return None if self.status is None else dict(CHAT_FAILURES[self.status])


@dataclass(frozen=True, slots=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class _Cookie:
    value: str
    httponly: bool
    max_age: int | None


@dataclass(slots=True)
class CookieManager:
    """Cookies to write on the response: set ones, then deletions (a deletion wins)."""

    secure: bool = False
    to_set: dict[str, _Cookie] = field(default_factory=dict)
    to_delete: set[str] = field(default_factory=set)

    def set_cookie(
        self, name: str, value: str, *, httponly: bool = False, max_age: float | None = None
    ) -> None:
        self.to_delete.discard(name)
        self.to_set[name] = _Cookie(
            quote(value), httponly, None if max_age is None else max(0, math.ceil(max_age))
        )

    def delete_cookies(self, names: tuple[str, ...] = LOGIN_COOKIES) -> None:
        for name in names:
            self.to_set.pop(name, None)
            self.to_delete.add(name)

    def flush(self, response: web.StreamResponse) -> None:
        """Add the ``Set-Cookie`` headers, formatted as Werkzeug (Frappe's server) writes them.

        Written by hand because aiohttp's cookie jar quotes an empty value as ``""``.
        """
        for name, cookie in self.to_set.items():
            attrs = [f"{name}={cookie.value}"]
            if cookie.max_age is not None:
                expires = formatdate(time.time() + cookie.max_age, usegmt=True)
                attrs += [f"Expires={expires}", f"Max-Age={cookie.max_age}"]
            attrs += self._flags(httponly=cookie.httponly)
            response.headers.add("Set-Cookie", "; ".join(attrs))
        for name in sorted(self.to_delete):
            attrs = [f"{name}=", f"Expires={formatdate(0, usegmt=True)}", "Max-Age=0"]
            response.headers.add("Set-Cookie", "; ".join(attrs + self._flags(httponly=False)))

    def _flags(self, *, httponly: bool) -> list[str]:
        flags = ["Secure"] if self.secure else []
        if httponly:
            flags.append("HttpOnly")
        return [*flags, "Path=/", "SameSite=Lax"]


@dataclass(slots=True)
class CallContext:
    store: Store
    config: ServerConfig
    method: str
    headers: Mapping[str, str]
    form: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    cookies_in: Mapping[str, str] = field(default_factory=dict)
    user: str = GUEST
    sid: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    http_status: int | None = None
    cookies: CookieManager = field(default_factory=CookieManager)
    realtime: Emitter | None = None
    pacing: ChatPacing = field(default_factory=ChatPacing)
    engine: ChatEngine = field(default_factory=OfflineEngine)
    """What answers chat requests (chat_engines/): the offline engine unless a model is set."""
    failure: ChatFailure = field(default_factory=ChatFailure)
    """Set by control action ``agent/fail``: chat answers the published in-band error."""
    base_url: str = ""
    """``scheme://host[:port]`` the request came in on (Frappe's ``get_url()``)."""
    http_method: str = "POST"
    client_connected: Callable[[], bool] = lambda: True
    """False once the caller has gone away (the answer is then no longer streamed)."""

    @property
    def is_guest(self) -> bool:
        return self.user == GUEST


Handler = Callable[[CallContext], Awaitable[object]]
"""A whitelisted method: gets the request, returns the value that becomes ``message``."""
