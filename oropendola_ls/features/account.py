"""Sign-in, status and the user's backend data: ``oropendola/signIn`` and friends.

Thin handlers: read params strictly, call `Account`, turn backend errors into LSP errors whose
message says what to do.

The browser sign-in (``oropendola/signIn`` ``{method: "browser"}``, command
``oropendola.signIn``) shows the sign-in page three ways, so every editor can open it:
``window/showDocument`` with ``external: true`` where the client supports it, and always a
``$/progress`` report and a ``window/showMessage`` carrying the URL (Helix, terminals).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from oropendola_ls.account import with_details
from oropendola_ls.backend.errors import BackendError
from oropendola_ls.features.params import parse_params
from oropendola_ls.features.progress import WorkDone
from oropendola_ls.server import OropendolaServer, ServerNotReadyError

if TYPE_CHECKING:
    from oropendola_ls.account import Account
    from oropendola_ls.backend.client import BrowserSignIn

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

SIGN_IN = "oropendola/signIn"
SIGN_OUT = "oropendola/signOut"
STATUS = "oropendola/status"
USER_INFO = "oropendola/userInfo"
SUBSCRIPTION = "oropendola/subscription"
SETTINGS = "oropendola/settings"

CMD_SIGN_IN = "oropendola.signIn"
CMD_SIGN_OUT = "oropendola.signOut"
CMD_RECONNECT = "oropendola.reconnect"

BROWSER = "browser"


@attrs.define
class SignInParams:
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    method: str | None = None
    work_done_token: int | str | None = None


@attrs.define
class EmptyParams:
    pass


@attrs.define
class SettingsParams:
    update: dict[str, Any] | None = None


def backend_errors(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Report backend failures as LSP ``RequestFailed`` errors with an actionable message."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except BackendError as exc:
            log.info("%s: %s", handler.__name__, exc.message)
            raise JsonRpcException(
                code=types.LSPErrorCodes.RequestFailed, message=exc.message,
                data={"kind": exc.kind},
            ) from exc
        except ServerNotReadyError as exc:
            raise JsonRpcException(
                code=types.LSPErrorCodes.RequestFailed, message=str(exc), data={"kind": "not_ready"}
            ) from exc

    return wrapper


def register(server: OropendolaServer) -> None:
    server.feature(SIGN_IN)(sign_in)
    server.feature(SIGN_OUT)(sign_out)
    server.feature(STATUS)(status)
    server.feature(USER_INFO)(user_info)
    server.feature(SUBSCRIPTION)(subscription)
    server.feature(SETTINGS)(user_settings)
    server.command(CMD_SIGN_IN)(sign_in_command)
    server.command(CMD_SIGN_OUT)(sign_out_command)
    server.command(CMD_RECONNECT)(reconnect_command)


@backend_errors
async def sign_in(ls: OropendolaServer, params: Any) -> dict[str, Any]:
    p = parse_params(SIGN_IN, params, SignInParams)
    if p.method is not None:
        if p.method != BROWSER:
            raise JsonRpcInvalidParams(f"{SIGN_IN}: 'method' must be \"browser\" (or leave it "
                                       "out and give username and password, or apiKey and "
                                       "apiSecret)")
        return await _browser_sign_in(ls, p.work_done_token)
    account = await ls.get_account()
    if p.username is not None and p.password is not None:
        if not p.username.strip() or not p.password:
            raise JsonRpcInvalidParams(f"{SIGN_IN}: 'username' and 'password' must not be empty")
        result = await account.sign_in_password(p.username.strip(), p.password)
    elif p.api_key is not None and p.api_secret is not None:
        if not p.api_key.strip() or not p.api_secret:
            raise JsonRpcInvalidParams(f"{SIGN_IN}: 'apiKey' and 'apiSecret' must not be empty")
        result = await account.sign_in_api_key(p.api_key.strip(), p.api_secret)
    else:
        raise JsonRpcInvalidParams(
            f"{SIGN_IN}: give either 'username' and 'password', or 'apiKey' and 'apiSecret'"
        )
    log.info("signed in as %s", result.user)
    if ls.realtime_feature is not None:
        await ls.realtime_feature.restart()
    return {"user": result.user, **({"fullName": result.full_name} if result.full_name else {})}


@backend_errors
async def sign_in_command(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
    """``oropendola.signIn`` ``[{method?: "browser"}]``: the browser sign-in, for editors that
    send no custom requests. ``$/cancelRequest`` on the executeCommand request stops it."""
    ls.protocol.bind_to_request()
    options = args[0] if args else {}
    method = options.get("method", BROWSER) if isinstance(options, Mapping) else None
    if method != BROWSER:
        raise JsonRpcInvalidParams(f"{CMD_SIGN_IN}: the argument must be {{method: \"browser\"}}"
                                   " or nothing")
    return await _browser_sign_in(ls, None)


async def _browser_sign_in(ls: OropendolaServer, token: int | str | None) -> dict[str, Any]:
    account = await ls.get_account()
    progress = WorkDone(ls, "Oropendola sign-in", token=token, cancellable=True,
                        message="Starting the browser sign-in…")
    unwatch = progress.on_cancel(asyncio.current_task())

    def show(request: BrowserSignIn) -> None:
        url = request.login_url
        progress.report(f"Open {url} in your browser to sign in")
        ls.tell(f"Oropendola: to sign in, open {url} in your browser. Waiting for you there…")
        if ls.client_support.show_document:
            ls.run_task(_open_externally(ls, url), "show-sign-in-page")

    outcome = "Cancelled"
    try:
        result = await account.sign_in_browser(show)
        outcome = f"Signed in as {result.user}"
    except BackendError as exc:
        outcome = f"Failed: {exc.message}"
        raise
    finally:
        unwatch()
        progress.end(outcome)
        await progress.ready()
    log.info("signed in as %s with the browser", result.user)
    ls.tell(f"Signed in to Oropendola as {result.user}.")
    if ls.realtime_feature is not None:
        await ls.realtime_feature.restart()
    return {"user": result.user, **({"fullName": result.full_name} if result.full_name else {})}


async def _open_externally(ls: OropendolaServer, url: str) -> None:
    try:
        shown = await ls.window_show_document_async(
            types.ShowDocumentParams(uri=url, external=True))
    except Exception as exc:  # the URL is in the message and the progress report anyway
        log.info("window/showDocument for the sign-in page failed: %s", exc)
        return
    if not shown.success:
        log.info("the editor did not open the sign-in page; its URL was shown in a message")


@backend_errors
async def sign_out(ls: OropendolaServer, params: Any) -> None:
    parse_params(SIGN_OUT, params, EmptyParams)
    await _sign_out(ls)


@backend_errors
async def status(ls: OropendolaServer, params: Any) -> dict[str, Any]:
    parse_params(STATUS, params, EmptyParams)
    account = await ls.get_account()
    await account.recheck_primary()
    details = await account.details()
    return with_details(_status(ls, account), details)


def _an_object(name: str, value: Any) -> dict[str, Any]:
    """The backend's answer, passed on as is, but only when it is a JSON object."""
    if not isinstance(value, dict):
        from oropendola_ls.backend.errors import BadResponseError

        raise BadResponseError(f"The backend's answer to {name} is not an object but "
                               f"{type(value).__name__} {str(value)[:40]!r}: check serverUrl")
    return value


@backend_errors
async def user_info(ls: OropendolaServer, params: Any) -> Any:
    parse_params(USER_INFO, params, EmptyParams)
    return _an_object("user.get_info", await (await ls.get_account()).call("user.get_info"))


@backend_errors
async def subscription(ls: OropendolaServer, params: Any) -> Any:
    parse_params(SUBSCRIPTION, params, EmptyParams)
    return _an_object("subscription.check",
                      await (await ls.get_account()).call("subscription.check"))


@backend_errors
async def user_settings(ls: OropendolaServer, params: Any) -> Any:
    p = parse_params(SETTINGS, params, SettingsParams)
    account = await ls.get_account()
    if p.update is not None:
        await account.call("user.update_settings", p.update)
    return _an_object("user.get_settings", await account.call("user.get_settings"))


@backend_errors
async def sign_out_command(ls: OropendolaServer, *args: Any) -> None:
    await _sign_out(ls)


@backend_errors
async def reconnect_command(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
    """Manual retry: check the primary URL now, and connect the realtime channel again with its
    attempt counter reset (a session the realtime server refused is checked over HTTP first)."""
    account = await ls.get_account()
    await account.recheck_primary()
    if ls.realtime_feature is not None and ls.realtime_feature.manager is not None:
        await ls.realtime_feature.retry()
    else:
        await account.verify()
    return _status(ls, account)


async def _sign_out(ls: OropendolaServer) -> None:
    account = await ls.get_account()
    await account.sign_out()
    ls.tell("Signed out of Oropendola.")


def _status(ls: OropendolaServer, account: Account) -> dict[str, Any]:
    result = account.status()
    if ls.realtime is not None:
        result["connection"] = ls.realtime.status()
    else:
        result["connection"] = {
            "state": "disconnected",
            "reconnectAttempts": 0,
            "maxAttempts": ls.settings.max_reconnect_attempts,
        }
    return result
