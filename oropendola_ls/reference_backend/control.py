"""The control endpoint of the reference backend, for tests and benches.

Off unless the backend starts with ``control=True`` (``oropendola-ls backend --control``); then
``POST /_reference/control/<action>`` takes a JSON object (an empty body is ``{}``) and answers
one. Only loopback peers may use it (403 otherwise); a bad body or an unknown action is a 400.

=================  =========================================  ====================================
action             body                                       answer
=================  =========================================  ====================================
realtime/drop      ``{"how"?: "server"|"transport"}``         ``{"dropped": n}``
realtime/stop      ``{}``                                     ``{"running": false, "dropped": n}``
realtime/start     ``{}``                                     ``{"running": true}``
realtime/status    ``{}``                                     ``{"running", "clients",
                                                              "namespaces": {ns: n}}``
emit               ``{"user", "event", "data", "count"?,      ``{"sent": n, "seconds": s}``
                   "rate"?}``
chat/pace          ``{"interval": seconds}``                  ``{"interval": seconds}``
chat/hold          ``{"hold": bool}``                         ``{"hold": bool, "waiting": n}``
agent/fail         ``{"status": 429|500|503|null}``           ``{"status": 429|500|503|null}``
http/throttle      ``{"count", "retry_after"?, "methods"?}``  ``{"count", "retry_after"}``
http/delay         ``{"seconds", "methods"?}``                ``{"seconds", "methods"}``
http/requests      ``{"clear"?: bool}``                       ``{"requests": [...],
                                                              "max_in_flight": n}``
=================  =========================================  ====================================

``agent/fail`` makes every chat answer (``agent`` and the seed's ``send_message``) the published
app's in-band error of that status (``{"status": 429, "error": "Quota exceeded", ...}``,
``{"status": 503, "error": "No available models", ...}``) until ``{"status": null}`` clears it.

``http/throttle`` answers the next ``count`` API requests (``/api/...``; only those calling one
of ``methods`` when given) with Frappe's 429: ``{"exc_type": "RateLimitExceededError",
"_server_messages": ...}`` and, unless ``retry_after`` is null, ``Retry-After: <seconds>``.
``http/delay`` holds every later API request (or those calling ``methods``) ``seconds`` before
answering it (0 stops). ``http/requests`` lists the API requests seen since the last ``clear``
(at most `MAX_LOGGED_REQUESTS`): ``{"method", "start", "end", "status"}`` with ``start``/``end``
on the backend's monotonic clock in seconds, and the most requests that were ever in flight at
once.

`Control` holds the operations, so in-process users (`RunningBackend`) run the same code.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from oropendola_ls.reference_backend.context import (
    ChatFailure,
    ChatPacing,
    check_stream_interval,
)
from oropendola_ls.reference_backend.realtime import DropHow, Realtime

CONTROL_PATH = "/_reference/control/"
MAX_EMIT_COUNT = 1_000_000
MAX_THROTTLE_COUNT = 1_000_000
MAX_DELAY = 3600.0
MAX_LOGGED_REQUESTS = 10_000
API_PREFIX = "/api/"
METHOD_PREFIX = "/api/method/"
RATE_LIMIT_TEXT = ("You hit the rate limit because of too many requests. "
                   "Please try after sometime.")
"""Frappe's message for ``RateLimitExceededError`` (``frappe.rate_limiter``)."""
BURST_SLICE = 64
"""Without a rate, events are queued this many at a time between writes to the sockets."""
PLACEHOLDERS = ("{seq}", "{sent_ns}")
"""Replaced in every string of an emitted ``data``: the 0-based sequence number, and
``time.time_ns()`` taken just before that emit."""


class ControlError(ValueError):
    """A control request that is refused with 400."""


@dataclass(slots=True)
class HttpFaults:
    """Faults injected into API answers (``http/throttle``, ``http/delay``), and their log."""

    throttle_left: int = 0
    retry_after: float | None = None
    throttle_methods: frozenset[str] | None = None
    delay: float = 0.0
    delay_methods: frozenset[str] | None = None
    requests: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_LOGGED_REQUESTS))
    in_flight: int = 0
    max_in_flight: int = 0

    def should_throttle(self, method: str) -> bool:
        """Whether this request is one of the throttled ones (and count it)."""
        if self.throttle_left <= 0 or not _matches(self.throttle_methods, method):
            return False
        self.throttle_left -= 1
        return True

    def delay_for(self, method: str) -> float:
        return self.delay if self.delay and _matches(self.delay_methods, method) else 0.0


def _matches(methods: frozenset[str] | None, method: str) -> bool:
    return methods is None or method in methods


def _method_names(methods: Any) -> frozenset[str] | None:
    if methods is None:
        return None
    if not isinstance(methods, list) or not methods \
            or not all(isinstance(m, str) and m for m in methods):
        raise ControlError("methods must be a non-empty list of method names (or null: all)")
    return frozenset(methods)


def _seconds_value(value: Any, what: str, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not 0 <= value <= MAX_DELAY:
        allowed = " or null" if nullable else ""
        raise ControlError(f"{what} must be a number of seconds from 0 to {MAX_DELAY:g}"
                           f"{allowed}, not {value!r}")
    return float(value)


class Control:
    """What the control endpoint can do to a running backend."""

    def __init__(self, realtime: Realtime, pacing: ChatPacing,
                 failure: ChatFailure | None = None, http: HttpFaults | None = None) -> None:
        self._realtime = realtime
        self._pacing = pacing
        self._failure = failure or ChatFailure()
        self.http = http or HttpFaults()

    async def drop_realtime(self, how: DropHow = "server") -> dict[str, Any]:
        """Disconnect every Socket.IO client: ``server`` says goodbye, ``transport`` cuts."""
        if how not in ("server", "transport"):
            raise ControlError(f'how must be "server" or "transport", not {how!r}')
        return {"dropped": await self._realtime.drop(how)}

    async def stop_realtime(self) -> dict[str, Any]:
        """Cut every connection and answer ``/socket.io`` with 503 until `start_realtime`."""
        return {"running": False, "dropped": await self._realtime.stop()}

    async def start_realtime(self) -> dict[str, Any]:
        self._realtime.start()
        return {"running": True}

    async def realtime_status(self) -> dict[str, Any]:
        return self._realtime.status()

    async def emit(self, user: str, event: str, data: Any, count: int = 1,
                   rate: float = 0) -> dict[str, Any]:
        """Emit ``event`` to room ``user:<user>`` ``count`` times, ``rate`` per second (0: at once).

        Strings in ``data`` get `PLACEHOLDERS` filled in. Each emit is due at start + seq / rate,
        so a late one does not delay the rest.
        """
        if not isinstance(user, str) or not user.strip():
            raise ControlError("user must be the email address of a user")
        if not isinstance(event, str) or not event:
            raise ControlError("event must be a non-empty event name")
        if isinstance(count, bool) or not isinstance(count, int) \
                or not 1 <= count <= MAX_EMIT_COUNT:
            raise ControlError(f"count must be an integer from 1 to {MAX_EMIT_COUNT}, "
                               f"not {count!r}")
        if isinstance(rate, bool) or not isinstance(rate, int | float) \
                or not math.isfinite(rate) or rate < 0:
            raise ControlError(f"rate must be a number of events per second ≥ 0, not {rate!r}")
        templated = any(mark in text for text in _strings(data) for mark in PLACEHOLDERS)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for seq in range(count):
            if rate:
                await asyncio.sleep(max(0.0, started + seq / rate - loop.time()))
            elif seq % BURST_SLICE == 0:
                await asyncio.sleep(0)  # let the sockets write what is queued
            payload = _fill(data, str(seq), str(time.time_ns())) if templated else data
            await self._realtime.emit_to_user(user, event, payload)
        return {"sent": count, "seconds": loop.time() - started}

    async def pace_chat(self, interval: float) -> dict[str, Any]:
        """Wait ``interval`` seconds between the text deltas of later chat answers."""
        try:
            self._pacing.interval = check_stream_interval(interval)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        return {"interval": self._pacing.interval}

    async def hold_chat(self, hold: bool) -> dict[str, Any]:
        """Hold chat answers after ``thinking``, or release every held one."""
        if not isinstance(hold, bool):
            raise ControlError(f"hold must be true or false, not {hold!r}")
        waiting = self._pacing.hold(hold)
        return {"hold": hold, "waiting": waiting}

    async def fail_agent(self, status: int | None) -> dict[str, Any]:
        """Answer chat with the published in-band error ``status`` (None: answer normally)."""
        try:
            return {"status": self._failure.set(status)}
        except ValueError as exc:
            raise ControlError(str(exc)) from None


    async def throttle_http(self, count: int, retry_after: float | None = 1,
                            methods: list[str] | None = None) -> dict[str, Any]:
        """Answer the next ``count`` API requests (calling ``methods``) with 429."""
        if isinstance(count, bool) or not isinstance(count, int) \
                or not 0 <= count <= MAX_THROTTLE_COUNT:
            raise ControlError(f"count must be an integer from 0 to {MAX_THROTTLE_COUNT}, "
                               f"not {count!r}")
        wait = _seconds_value(retry_after, "retry_after", nullable=True)
        self.http.throttle_methods = _method_names(methods)
        self.http.throttle_left, self.http.retry_after = count, wait
        return {"count": count, "retry_after": wait}

    async def delay_http(self, seconds: float, methods: list[str] | None = None
                         ) -> dict[str, Any]:
        """Hold later API requests (calling ``methods``) ``seconds`` before answering."""
        delay = _seconds_value(seconds, "seconds")
        assert delay is not None
        self.http.delay_methods = _method_names(methods)
        self.http.delay = delay
        return {"seconds": delay, "methods": sorted(self.http.delay_methods or ()) or None}

    async def http_requests(self, clear: bool = False) -> dict[str, Any]:
        """The API requests seen (since the last ``clear``), oldest first."""
        if not isinstance(clear, bool):
            raise ControlError(f"clear must be true or false, not {clear!r}")
        answer = {"requests": list(self.http.requests),
                  "max_in_flight": self.http.max_in_flight}
        if clear:
            self.http.requests.clear()
            self.http.max_in_flight = self.http.in_flight
        return answer


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _fill(value: Any, seq: str, sent_ns: str) -> Any:
    if isinstance(value, str):
        return value.replace("{seq}", seq).replace("{sent_ns}", sent_ns)
    if isinstance(value, dict):
        return {key: _fill(item, seq, sent_ns) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, seq, sent_ns) for item in value]
    return value


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Action:
    run: Callable[..., Awaitable[dict[str, Any]]]
    """An unbound `Control` method; the body's fields are its keyword arguments."""
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()


ACTIONS: Mapping[str, _Action] = {
    "realtime/drop": _Action(Control.drop_realtime, optional=frozenset({"how"})),
    "realtime/stop": _Action(Control.stop_realtime),
    "realtime/start": _Action(Control.start_realtime),
    "realtime/status": _Action(Control.realtime_status),
    "emit": _Action(Control.emit, required=frozenset({"user", "event", "data"}),
                    optional=frozenset({"count", "rate"})),
    "chat/pace": _Action(Control.pace_chat, required=frozenset({"interval"})),
    "chat/hold": _Action(Control.hold_chat, required=frozenset({"hold"})),
    "agent/fail": _Action(Control.fail_agent, required=frozenset({"status"})),
    "http/throttle": _Action(Control.throttle_http, required=frozenset({"count"}),
                             optional=frozenset({"retry_after", "methods"})),
    "http/delay": _Action(Control.delay_http, required=frozenset({"seconds"}),
                          optional=frozenset({"methods"})),
    "http/requests": _Action(Control.http_requests, optional=frozenset({"clear"})),
}

CONTROL: web.AppKey[Control] = web.AppKey("reference_control", Control)


def enable(app: web.Application, control: Control) -> None:
    """Serve ``POST /_reference/control/<action>`` on ``app``, and apply the HTTP faults.

    Call before the app is frozen (it adds a middleware)."""
    app[CONTROL] = control
    app.router.add_post(CONTROL_PATH + "{action:.+}", handle_control)
    app.middlewares.append(http_faults)


@web.middleware
async def http_faults(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Log API requests; throttle or delay them as the control endpoint was told."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    faults = request.app[CONTROL].http
    method = request.path[len(METHOD_PREFIX):] if request.path.startswith(METHOD_PREFIX) \
        else request.path
    entry: dict[str, Any] = {"method": method, "start": time.monotonic(), "end": None,
                             "status": None}
    faults.requests.append(entry)
    faults.in_flight += 1
    faults.max_in_flight = max(faults.max_in_flight, faults.in_flight)
    try:
        delay = faults.delay_for(method)
        if delay:
            await asyncio.sleep(delay)
        if faults.should_throttle(method):
            response: web.StreamResponse = _too_many_requests(faults.retry_after)
        else:
            response = await handler(request)
        entry["status"] = response.status
        return response
    finally:
        faults.in_flight -= 1
        entry["end"] = time.monotonic()


def _too_many_requests(retry_after: float | None) -> web.Response:
    """Frappe's answer to a rate-limited call (``RateLimitExceededError``, HTTP 429)."""
    message = {"message": RATE_LIMIT_TEXT, "title": "Too Many Requests", "indicator": "red",
               "raise_exception": 1}
    body = {"exc_type": "RateLimitExceededError",
            "_server_messages": json.dumps([json.dumps(message)])}
    headers = {"Cache-Control": "no-store,no-cache,must-revalidate,max-age=0"}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    return web.json_response(body, status=429, headers=headers)


def _is_loopback_peer(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _answer(status: int, body: Mapping[str, Any]) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


async def _read_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ControlError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body


def _check_fields(action: str, spec: _Action, body: Mapping[str, Any]) -> None:
    unknown = sorted(body.keys() - spec.required - spec.optional)
    missing = sorted(spec.required - body.keys())
    if unknown or missing:
        expected = ", ".join(sorted(spec.required) + [f"{o}?" for o in sorted(spec.optional)])
        problem = (f"unknown field(s) {', '.join(unknown)}" if unknown
                   else f"missing field(s) {', '.join(missing)}")
        raise ControlError(f"{action}: {problem}; it takes {{{expected}}}")


async def handle_control(request: web.Request) -> web.Response:
    if not _is_loopback_peer(request.remote):
        return _answer(403, {"error": "the control endpoint only answers loopback clients"})
    name = request.match_info["action"]
    spec = ACTIONS.get(name)
    if spec is None:
        return _answer(400, {"error": f"unknown control action {name!r}; "
                                      f"use one of {', '.join(ACTIONS)}"})
    try:
        body = await _read_body(request)
        _check_fields(name, spec, body)
        result = await spec.run(request.app[CONTROL], **body)
    except ControlError as exc:
        return _answer(400, {"error": str(exc)})
    return _answer(200, result)
