"""The published app's browser sign-in (``vscode_auth``) and the tokens it hands out.

protocol.md §5.1 item 1 and §2.12: the editor calls ``initiate_auth`` and opens the
``login_url`` it gets (``<base>/vscode-login?auth_request=<id>``) in a browser; the user signs in
there; the editor polls ``check_auth_status`` until it answers ``completed`` with an access and
a refresh token (64 hex characters each). The access token then authenticates
``get_my_profile``, ``get_subscription_status`` and ``logout`` (header ``X-Access-Token``) and is
the ``api_key`` of ``vscode_extension.agent``; ``refresh_token`` replaces it in place; ``logout``
revokes both.

Where the reference differs from the app, on purpose:

- the sign-in page is this backend's own small form (the app sends a Guest to its ``/login``
  page). It posts ``auth_request_id``, ``usr`` and ``pwd`` to ``complete_auth``, which also
  completes the request for a browser that already holds a session cookie, but only on a POST
  (SameSite=Lax keeps other sites' posts cookie-less), never on a GET;
- tokens are stored as SHA-256 hashes only, so they are made by the first poll that finds the
  request completed and handed out that once; later polls answer ``status: "used"``.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web

from oropendola_ls.reference_backend.arguments import text_arg
from oropendola_ls.reference_backend.context import CallContext
from oropendola_ls.reference_backend.store import Store

VSCODE_AUTH = "oropendola_ai.oropendola_ai.api.vscode_auth"
COMPLETE_AUTH = f"{VSCODE_AUTH}.complete_auth"
LOGIN_PAGE = "/vscode-login"
SUCCESS_PAGE = "/vscode-auth-success"
ERROR_PAGE = "/vscode-auth-error"
TOKEN_EXPIRES_IN = 2592000
"""The 30 days the app advertises for an access token (and, like the app, does not enforce)."""
ACCESS_TOKEN_HEADER = "X-Access-Token"  # noqa: S105 - a header name, not a secret
MAX_ID_LENGTH = 200

_INVALID_REQUEST = {"success": False, "error": "Invalid authentication request ID"}


def _seconds(value: float) -> int | float:
    """Seconds as the app writes them (``300``, ``2``), keeping a fraction if there is one."""
    return int(value) if float(value).is_integer() else value


def _request_id(ctx: CallContext, *names: str) -> str | None:
    value = text_arg(ctx, *names)
    return value.strip() if value and len(value) <= MAX_ID_LENGTH else None


# -- who a token names ---------------------------------------------------------------------------


def access_token(ctx: CallContext) -> str | None:
    """The ``X-Access-Token`` header, if the request sent a non-empty one."""
    token = ctx.headers.get(ACCESS_TOKEN_HEADER, "").strip()
    return token or None


def user_for_ai_key(store: Store, api_key: str) -> str | None:
    """The user an ``api_key`` argument names: a live access token (the app swaps it for the
    user's key, protocol.md §2.4) or the user's own API key."""
    return store.user_for_access_token(api_key) or store.user_for_api_key(api_key)


# -- the methods ---------------------------------------------------------------------------------


async def initiate_auth(ctx: CallContext) -> object:
    """``initiate_auth`` (Guest): a Pending request and the page that completes it."""
    request = ctx.store.create_auth_request(ctx.config.auth_request_lifetime)
    login_url = f"{ctx.base_url}{LOGIN_PAGE}?{urlencode({'auth_request': request.id})}"
    return {
        "success": True,
        "auth_request_id": request.id,
        "login_url": login_url,
        "expires_in": _seconds(ctx.config.auth_request_lifetime),
        "poll_interval": _seconds(ctx.config.auth_poll_interval),
    }


async def check_auth_status(ctx: CallContext) -> object:
    """``check_auth_status`` (Guest): pending, completed (with the tokens, once), expired, ...

    Every answer is HTTP 200; ``success: false`` marks the ones that will never complete.
    """
    request_id = _request_id(ctx, "auth_request_id")
    if request_id is None:
        return dict(_INVALID_REQUEST)
    poll = ctx.store.poll_auth_request(request_id)
    if poll.state == "invalid":
        return dict(_INVALID_REQUEST)
    if poll.state == "pending":
        return {"success": True, "status": "pending",
                "message": "Waiting for user to complete login"}
    if poll.state == "expired":
        return {"success": False, "status": "expired",
                "error": "Authentication request expired. Please try again."}
    if poll.state == "revoked":
        return {"success": False, "status": "revoked", "error": "Authentication revoked"}
    user = ctx.store.get_user(poll.user) if poll.user else None
    if poll.state == "used" or user is None:
        return {"success": False, "status": "used",
                "error": "Authentication already completed: its tokens were handed out to an "
                         "earlier poll. Please sign in again."}
    return {
        "success": True,
        "status": "completed",
        "access_token": poll.access_token,
        "refresh_token": poll.refresh_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_EXPIRES_IN,
        "user": {"email": user.email, "full_name": user.full_name, "user_image": ""},
    }


async def refresh_token(ctx: CallContext) -> object:
    """``refresh_token`` (Guest): a new access token for a live refresh token; the old one
    stops working. The refresh token stays the same."""
    token = text_arg(ctx, "refresh_token")
    refreshed = ctx.store.refresh_access_token(token.strip()) if token else None
    if refreshed is None:
        return {"success": False, "error": "Invalid refresh token"}
    _user, access = refreshed
    return {"success": True, "access_token": access, "token_type": "Bearer",
            "expires_in": TOKEN_EXPIRES_IN}


async def logout(ctx: CallContext) -> object:
    """``logout`` (Guest too): revoke the ``X-Access-Token``'s request, so both its tokens."""
    token = access_token(ctx)
    if token is not None:
        ctx.store.revoke_access_token(token)
    return {"success": True, "message": "Successfully logged out"}


async def complete_auth(ctx: CallContext) -> object:
    """``complete_auth``, the sign-in page's form target: a page or a redirect, never JSON.

    With ``usr`` and ``pwd``: right ones complete the request and redirect to the success page;
    wrong ones show the form again (401). Without them, a POST from a browser with a session
    completes it as that user; anything else is sent to the sign-in page.
    """
    request_id = _request_id(ctx, "auth_request_id", "auth_request")
    if request_id is None:
        return Page.redirect(_error_url("invalid"))
    request = ctx.store.get_auth_request(request_id)
    if request is None:
        return Page.redirect(_error_url("invalid"))
    if request.is_expired():
        return Page.redirect(_error_url("expired"))
    if request.status != "Pending":
        return Page.redirect(_error_url("used"))
    if not _same_origin(ctx):
        return Page.redirect(_error_url("origin"))
    usr = text_arg(ctx, "usr", "email")
    pwd = ctx.form.get("pwd", ctx.form.get("password"))
    if usr is None and not pwd:
        if ctx.is_guest or ctx.http_method != "POST":
            return Page.redirect(f"{LOGIN_PAGE}?{urlencode({'auth_request': request_id})}")
        email = ctx.user
    else:
        email = (usr or "").strip().lower()
        problem = await _check_credentials(ctx.store, email, pwd)
        if problem is not None:
            return Page(login_form(request_id, error=problem, email=email), status=401)
    outcome = ctx.store.complete_auth_request(request_id, email)
    if outcome != "completed":
        return Page.redirect(_error_url(outcome))
    user = ctx.store.get_user(email)
    name = user.full_name if user is not None else email
    return Page.redirect(f"{SUCCESS_PAGE}?{urlencode({'name': name, 'email': email})}")


async def _check_credentials(store: Store, email: str, password: object) -> str | None:
    """None if ``email``/``password`` sign in, else what to tell the user (Frappe's words)."""
    if not email or not isinstance(password, str) or not password:
        return "Incomplete login details"
    if not await asyncio.to_thread(store.check_password, email, password):
        return "Invalid login credentials"
    user = store.get_user(email)
    if user is None or not user.enabled:
        return "User disabled or missing"
    return None


def _same_origin(ctx: CallContext) -> bool:
    """False when a browser says the form came from another site (``Origin`` header)."""
    origin = ctx.headers.get("Origin")
    if not origin or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == urlsplit(ctx.base_url).netloc.lower()


def _error_url(kind: str) -> str:
    return f"{ERROR_PAGE}?{urlencode({'type': kind})}"


# -- pages ---------------------------------------------------------------------------------------

_PAGE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""The page's URL holds the request id: no referrer, no framing, nothing loaded from elsewhere."""

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2129;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:10px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem;
width:min(24rem,90vw)}
h1{font-size:1.3rem;margin:0 0 1rem}p{line-height:1.45}label{display:block;margin:.8rem 0 .3rem}
input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem;
border:1px solid #c3c8d0;border-radius:6px;font-size:1rem}
button{margin-top:1.2rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#2f6fde;
color:#fff;font-size:1rem;cursor:pointer}button.secondary{background:#e8ebf0;color:#1d2129}
.error{background:#fdecea;color:#a4251c;padding:.6rem .8rem;border-radius:6px}
.note{color:#5b6270;font-size:.9rem}
"""


@dataclass(frozen=True, slots=True)
class Page:
    """What a handler returns to answer with an HTML page or a redirect instead of JSON."""

    html: str
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def redirect(cls, location: str) -> Page:
        return cls(_document("Redirecting", f'<p><a href="{html.escape(location)}">'
                             "Continue</a></p>"), 303, {"Location": location})

    def response(self) -> web.Response:
        return web.Response(text=self.html, status=self.status, content_type="text/html",
                            charset="utf-8", headers={**_PAGE_HEADERS, **self.headers})


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)} · Oropendola</title><style>{_STYLE}</style></head>"
            f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>\n")


def login_form(request_id: str, *, error: str | None = None, email: str = "",
               session_user: str | None = None) -> str:
    """The sign-in form for request ``request_id``; it posts to ``complete_auth``."""
    action = f"/api/method/{quote(COMPLETE_AUTH)}"
    rid = html.escape(request_id)
    parts = ['<p>Your editor asks to sign in to this Oropendola backend. Continue only if you '
             'started this sign-in.</p>']
    if error:
        parts.append(f'<p class="error" role="alert">{html.escape(error)}</p>')
    if session_user:
        parts.append(
            f'<form method="post" action="{action}">'
            f'<input type="hidden" name="auth_request_id" value="{rid}">'
            f'<button type="submit">Continue as {html.escape(session_user)}</button></form>'
            '<p class="note">Or sign in as someone else:</p>')
    parts.append(
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="auth_request_id" value="{rid}">'
        '<label for="usr">Email</label>'
        f'<input id="usr" name="usr" type="email" autocomplete="username" required '
        f'value="{html.escape(email)}"{"" if email else " autofocus"}>'
        '<label for="pwd">Password</label>'
        f'<input id="pwd" name="pwd" type="password" autocomplete="current-password" required'
        f'{" autofocus" if email else ""}>'
        f'<button type="submit"{" class=secondary" if session_user else ""}>Sign in</button>'
        "</form>")
    return _document("Sign in to Oropendola", "".join(parts))


_ERRORS: Mapping[str, tuple[int, str, str]] = {
    "invalid": (404, "Unknown sign-in request",
                "This sign-in link is not valid. Start the sign-in again from your editor."),
    "expired": (410, "Sign-in request expired",
                "This sign-in request has expired. Start the sign-in again from your editor."),
    "used": (409, "Sign-in request already used",
             "This sign-in request was already completed. If that was not you, sign out in "
             "your editor and start again."),
    "origin": (403, "Sign-in refused",
               "The sign-in form was sent from another site. Open the link your editor gave "
               "you and sign in there."),
}


def error_page(kind: str) -> Page:
    status, title, text = _ERRORS.get(kind, _ERRORS["invalid"])
    return Page(_document(title, f"<p>{html.escape(text)}</p>"), status)


# -- routes outside /api/method ------------------------------------------------------------------


def _session_user(store: Store, request: web.Request) -> str | None:
    sid = request.cookies.get("sid")
    session = store.get_session(sid) if sid else None
    return session.user if session else None


def add_pages(app: web.Application, store: Store) -> None:
    """Serve the sign-in page, the success page and the error page on ``app``."""

    async def login_page(request: web.Request) -> web.StreamResponse:
        request_id = request.query.get("auth_request", "").strip()
        found = store.get_auth_request(request_id) if 0 < len(request_id) <= MAX_ID_LENGTH \
            else None
        if found is None:
            return error_page("invalid").response()
        if found.is_expired():
            return error_page("expired").response()
        if found.status != "Pending":
            return error_page("used").response()
        return Page(login_form(found.id, session_user=_session_user(store, request))).response()

    async def success_page(request: web.Request) -> web.StreamResponse:
        name = request.query.get("name") or request.query.get("email") or "you"
        email = request.query.get("email", "")
        who = html.escape(name) + (f" ({html.escape(email)})" if email and email != name else "")
        body = (f"<p>Signed in as {who}.</p><p>You can close this tab and go back to your "
                "editor: it picks the sign-in up by itself.</p>")
        return Page(_document("Signed in", body)).response()

    async def auth_error_page(request: web.Request) -> web.StreamResponse:
        return error_page(request.query.get("type", "invalid")).response()

    app.router.add_get(LOGIN_PAGE, login_page)
    app.router.add_get(SUCCESS_PAGE, success_page)
    app.router.add_get(ERROR_PAGE, auth_error_page)
