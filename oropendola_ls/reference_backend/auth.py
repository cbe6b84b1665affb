"""Who is calling: Frappe's session cookie and API-key rules, login and logout.

Mirrors Frappe v15 (protocol.md §2.1-2.3, §5): a ``sid`` cookie resumes its session and slides its
expiry; a dead ``sid`` turns the request into Guest with ``session_expired: 1`` and expired
cookies; ``Authorization: token key:secret`` (or ``Basic base64(key:secret)``) names a user, and
any two-part ``Authorization`` header that leaves the caller a Guest is a 401. Secrets, sids and
passwords are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from oropendola_ls.reference_backend import frappe
from oropendola_ls.reference_backend.context import CallContext
from oropendola_ls.reference_backend.frappe import GUEST
from oropendola_ls.reference_backend.store import Store, User


def set_login_cookies(ctx: CallContext, user: User, sid: str) -> None:
    """The cookies Frappe sets when a session starts or resumes (``LoginManager.set_user_info``)."""
    ctx.cookies.set_cookie("sid", sid, httponly=True, max_age=ctx.config.session_expiry)
    ctx.cookies.set_cookie("system_user", "yes")
    ctx.cookies.set_cookie("full_name", user.full_name)
    ctx.cookies.set_cookie("user_id", user.email)
    ctx.cookies.set_cookie("user_image", "")


def clear_cookies(ctx: CallContext) -> None:
    ctx.cookies.delete_cookies()


def resume_session(ctx: CallContext) -> None:
    """Resolve the ``sid`` cookie: the session user, or Guest with ``session_expired: 1``."""
    sid = ctx.cookies_in.get("sid")
    if not sid or sid == GUEST:
        return
    session = ctx.store.resume_session(sid, ctx.config.session_expiry)
    user = ctx.store.get_user(session.user) if session else None
    if session is None or user is None:
        ctx.response["session_expired"] = 1
        clear_cookies(ctx)
        return
    ctx.user = user.email
    ctx.sid = sid
    set_login_cookies(ctx, user, sid)


def _api_credentials(header: str) -> tuple[str, str] | None:
    """``(key, secret)`` from ``token k:s`` or ``Basic base64(k:s)``; None if neither shape."""
    kind, _, value = header.partition(" ")
    try:
        if kind.lower() == "token":
            key, secret = value.split(":")
        elif kind.lower() == "basic":
            key, secret = base64.b64decode(value, validate=True).decode("utf-8").split(":")
        else:
            return None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return key, secret


def validate_auth(ctx: CallContext) -> None:
    """Apply ``Authorization`` like Frappe's ``validate_auth``; raise 401 when it fails.

    An unknown key is refused at once; a right pair sets the user unless a session already
    did; a header of two words that leaves the caller a Guest (a wrong secret, ``Bearer``,
    anything) is refused too.
    """
    parts = ctx.headers.get("Authorization", "").split(" ")
    if len(parts) != 2:
        return
    credentials = _api_credentials(" ".join(parts))
    if credentials is not None:
        key, secret = credentials
        if not ctx.store.api_key_exists(key):
            raise frappe.AuthenticationError()
        email = ctx.store.user_for_api_credentials(key, secret)
        if email is not None and ctx.is_guest:
            ctx.user = email
    if ctx.is_guest:
        raise frappe.AuthenticationError()


async def login(ctx: CallContext) -> None:
    """``/api/method/login``: check ``usr``/``pwd``, start a session, set the cookies."""

    def fail(message: str) -> frappe.AuthenticationError:
        ctx.response["message"] = message
        return frappe.AuthenticationError()

    usr, pwd = ctx.form.get("usr"), ctx.form.get("pwd")
    if not (usr and pwd):
        raise fail("Incomplete login details")
    email, password = str(usr).strip().lower(), str(pwd)
    if not await asyncio.to_thread(ctx.store.check_password, email, password):
        raise fail("Invalid login credentials")
    user = ctx.store.get_user(email)
    if user is None or not user.enabled:
        raise fail("User disabled or missing")
    session = ctx.store.create_session(user.email, ctx.config.session_expiry)
    ctx.user, ctx.sid = user.email, session.sid
    set_login_cookies(ctx, user, session.sid)
    ctx.response["message"] = "Logged In"
    ctx.response["home_page"] = "/app"
    ctx.response["full_name"] = user.full_name


def logout(ctx: CallContext) -> None:
    """``/api/method/logout``: end the cookie session (if any) and expire the login cookies."""
    if ctx.sid:
        ctx.store.delete_session(ctx.sid)
    ctx.sid = None
    ctx.user = GUEST
    clear_cookies(ctx)


def user_for_socket(store: Store, cookie_sid: str | None, authorization: str | None,
                    session_expiry: float) -> str | None:
    """The user a Socket.IO handshake authenticates as, or None (see realtime.py)."""
    if cookie_sid:
        session = store.resume_session(cookie_sid, session_expiry)
        return session.user if session else None
    if authorization:
        credentials = _api_credentials(authorization.strip())
        if credentials is not None:
            return store.user_for_api_credentials(*credentials)
    return None
