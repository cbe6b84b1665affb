"""The aiohttp application: ``/api/method/{method}`` dispatched the way Frappe v15 does it.

Per request (protocol.md §1): build ``form_dict`` (a JSON body, else query string plus form
fields), resume the ``sid`` session, apply ``Authorization``, find the method (417 "Failed to get
method" if unknown), refuse a Guest on a method that is not ``allow_guest`` (403), run it and
answer ``{"message": ...}`` or the error envelope. Every answer is JSON, and every path outside
``/socket.io`` answers errors as JSON too, except the browser sign-in's HTML pages
(vscode_auth.py: ``complete_auth`` and the ``/vscode-login`` pages).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from oropendola_ls.reference_backend import auth, control, frappe, vscode_auth
from oropendola_ls.reference_backend.chat_engines import ChatEngine, OfflineEngine
from oropendola_ls.reference_backend.context import (
    CallContext,
    ChatFailure,
    ChatPacing,
    ServerConfig,
    UploadedFile,
)
from oropendola_ls.reference_backend.event_stream import EventStream
from oropendola_ls.reference_backend.methods import Method, method_not_found, not_whitelisted
from oropendola_ls.reference_backend.realtime import Realtime
from oropendola_ls.reference_backend.store import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024  # Frappe's default max_file_size
NO_CACHE = "no-store,no-cache,must-revalidate,max-age=0"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True, slots=True)
class BackendState:
    store: Store
    config: ServerConfig
    methods: Mapping[str, Method]
    realtime: Realtime
    pacing: ChatPacing = field(default_factory=ChatPacing)
    engine: ChatEngine = field(default_factory=OfflineEngine)
    failure: ChatFailure = field(default_factory=ChatFailure)


STATE: web.AppKey[BackendState] = web.AppKey("reference_backend", BackendState)


def _is_json(content_type: str) -> bool:
    """Werkzeug's ``is_json``: ``application/json`` or ``application/*+json``."""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_arguments(
    request: web.Request,
) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Frappe's ``make_form_dict``: the JSON body, or the query string updated by form fields.

    A JSON list becomes ``{"data": [...]}``; any other JSON value is refused. Uploaded files are
    kept apart (Frappe's ``request.files``).
    """
    files: dict[str, UploadedFile] = {}
    content_type = request.content_type if request.body_exists else ""
    if _is_json(content_type):
        raw = await request.read()
        if raw.strip():
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise frappe.ValidationError(f"Invalid JSON in the request body: {exc}") from None
            if isinstance(value, dict):
                value.pop("_", None)
                return value, files
            if isinstance(value, list):
                return {"data": value}, files
            raise frappe.ValidationError("Invalid request arguments")
    args: dict[str, Any] = {key: request.query.get(key) for key in request.query}
    if content_type in _FORM_TYPES:
        post = await request.post()
        for key in post:
            value = post.get(key)
            if isinstance(value, web.FileField):
                files.setdefault(
                    key,
                    UploadedFile(key, value.filename, value.content_type, value.file.read()),
                )
            else:
                args[key] = value
    args.pop("_", None)
    return args, files


def _respond(ctx: CallContext, status: int, body: Mapping[str, Any]) -> web.Response:
    response = web.Response(
        body=frappe.encode(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": NO_CACHE},
    )
    ctx.cookies.flush(response)
    return response


def _connection_check(request: web.BaseRequest) -> Callable[[], bool]:
    """Whether the caller is still there: aiohttp does not cancel a handler when it leaves."""
    return lambda: request.transport is not None and not request.transport.is_closing()


async def handle_method(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    cmd = request.match_info["method"]
    ctx = CallContext(
        store=state.store,
        config=state.config,
        method=cmd,
        headers=request.headers,
        cookies_in=request.cookies,
        realtime=state.realtime,
        pacing=state.pacing,
        engine=state.engine,
        failure=state.failure,
        client_connected=_connection_check(request),
        base_url=f"{request.scheme}://{request.host}",
        http_method=request.method,
    )
    ctx.cookies.secure = request.secure
    if request.method == "OPTIONS":  # a CORS preflight: Frappe answers it empty
        return _respond(ctx, 200, {})
    try:
        ctx.form, ctx.files = await read_arguments(request)
        method = state.methods.get(cmd)
        if method is None or method.resumes_session:
            auth.resume_session(ctx)
        auth.validate_auth(ctx)
        if method is None:
            raise method_not_found(cmd)
        if ctx.is_guest and not method.allow_guest:
            raise not_whitelisted(cmd)
        if request.method not in ("GET", "HEAD", "POST"):
            raise frappe.PermissionError("Not permitted")
        result = await method.handler(ctx)
    except frappe.FrappeException as exc:
        if type(exc) is frappe.AuthenticationError:
            auth.clear_cookies(ctx)  # Frappe expires the login cookies after a 401
        return _respond(ctx, exc.http_status, frappe.error_body(exc, ctx.response))
    except Exception as exc:
        log.exception("%s failed", cmd)
        return _respond(ctx, 500, {**ctx.response, "exc_type": type(exc).__name__})
    if isinstance(result, EventStream):  # chat.stream: Server-Sent Events, not an envelope
        return await result.respond(request, ctx)
    if isinstance(result, vscode_auth.Page):  # complete_auth: a page or a redirect
        page = result.response()
        ctx.cookies.flush(page)
        return page
    return _respond(ctx, ctx.http_status or 200, frappe.success_body(result, ctx.response))


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer aiohttp's own errors (404, 413, ...) as Frappe-style JSON, except for Socket.IO."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/socket.io") or exc.status < 400:
            raise
        message = {"message": exc.reason, "indicator": "red", "raise_exception": 1}
        body = {
            "exc_type": type(exc).__name__,
            "_server_messages": frappe.server_messages([message]),
        }
        return web.Response(
            body=frappe.encode(body),
            status=exc.status,
            content_type="application/json",
            headers={"Cache-Control": NO_CACHE},
        )


class AccessLogger(AbstractAccessLogger):
    """One line per request without the query string (it may hold ``pwd`` or ``api_key``)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


def create_app(store: Store, config: ServerConfig, methods: Mapping[str, Method],
               realtime: Realtime, *, pacing: ChatPacing | None = None,
               control_endpoint: control.Control | None = None,
               engine: ChatEngine | None = None,
               failure: ChatFailure | None = None) -> web.Application:
    """The backend's routes; ``control_endpoint`` also serves ``/_reference/control/...``.

    ``engine`` answers chat requests (default: the offline engine); ``failure`` makes them
    fail on demand (control action ``agent/fail``). The browser sign-in pages are served when
    the published app's names are (profile ``oropendola_ai``).
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[json_errors, realtime.gate])
    app[STATE] = BackendState(store, config, methods, realtime, pacing or ChatPacing(),
                              engine or OfflineEngine(), failure or ChatFailure())
    app.router.add_route("*", "/api/method/{method:.+}", handle_method)
    if vscode_auth.COMPLETE_AUTH in methods:
        vscode_auth.add_pages(app, store)
    if control_endpoint is not None:
        control.enable(app, control_endpoint)
    realtime.attach(app)
    return app
